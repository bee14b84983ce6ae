package archive_test

import (
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// TestObjectStoreRoundTrip writes the canonical dataset into an archive in
// a bucket of each object store (testenv.ObjectStores: versitygw for S3,
// Azurite, fake-gcs-server), reads it back whole and checks it; re-writes
// it unchanged (only the run still RUNNING at the source is written
// again); changes a run, prunes to one snapshot and reads it again.
func TestObjectStoreRoundTrip(t *testing.T) {
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			loc := store.Start(t)(t, "backups/nightly")
			d := dataset.Canonical()
			write(t, loc, d)
			expectEqual(t, loc, d)
			rep, err := archive.Check(loc)
			if err != nil || len(rep.Notes) > 0 || rep.Snapshot != 1 {
				t.Fatalf("check: %v %+v", err, rep)
			}
			rep2 := write(t, loc, d)
			snaps, err := archive.Snapshots(loc)
			if err != nil || len(snaps) != 2 || snaps[1].Written != 1 || rep2.Totals.Committed != 1 {
				t.Errorf("re-write: snapshots %+v, %v, totals %+v", snaps, err, rep2.Totals)
			}
			expectEqual(t, loc, d)
			d.Runs[0].Run.Notes = "changed"
			write(t, loc, d)
			if _, err := archive.Prune(loc, 1); err != nil {
				t.Fatal(err)
			}
			if rep, err := archive.Check(loc); err != nil || len(rep.Notes) > 0 {
				t.Fatalf("check after prune: %v %+v", err, rep)
			}
			expectEqual(t, loc, d)
		})
	}
}

// TestObjectStoreCrashSafety is TestCrashSafety on an archive in a bucket
// of each object store: writers killed at seeded random moments (fewer
// than on a folder: each kill costs a fresh archive and the wait for the
// killed writer's lock objects to expire), every run old or new after each
// kill, a resumed write identical to an uninterrupted one.
func TestObjectStoreCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	defer func(ttl time.Duration) { archive.LockTTL = ttl }(archive.LockTTL)
	archive.LockTTL = time.Second
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			fresh := store.Start(t)
			crashSafety(t, 3, func(name string) string {
				loc := fresh(t, name)
				write(t, loc, crashData(0))
				return loc
			}, archive.LockTTL)
		})
	}
}
