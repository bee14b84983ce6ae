package archive_test

import (
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// TestAzureRoundTrip writes the canonical dataset into an archive in a
// container of Azurite (Azure's storage emulator on 127.0.0.1), reads it
// back whole, checks it, prunes it and reads it again.
func TestAzureRoundTrip(t *testing.T) {
	az := testenv.SharedAzurite(t)
	loc := az.Location(az.CreateContainer(t, "archive"), "backups/nightly")
	d := dataset.Canonical()
	write(t, loc, d)
	expectEqual(t, loc, d)
	rep, err := archive.Check(loc)
	if err != nil || len(rep.Notes) > 0 || rep.Snapshot != 1 {
		t.Fatalf("check: %v %+v", err, rep)
	}
	d.Runs[0].Run.Notes = "changed"
	write(t, loc, d)
	if _, err := archive.Prune(loc, 1); err != nil {
		t.Fatal(err)
	}
	if rep, err := archive.Check(loc); err != nil || len(rep.Notes) > 0 {
		t.Fatalf("check after prune: %v %+v", err, rep)
	}
	expectEqual(t, loc, d)
}

// TestAzureCrashSafety is TestCrashSafety on an archive in a container of
// Azurite: writers killed at seeded random moments (as few as on S3, for
// the same reason), every run old or new after each kill, a resumed write
// identical to an uninterrupted one.
func TestAzureCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	az := testenv.SharedAzurite(t)
	container := az.CreateContainer(t, "crash")
	defer func(ttl time.Duration) { archive.LockTTL = ttl }(archive.LockTTL)
	archive.LockTTL = time.Second
	crashSafety(t, 3, func(name string) string {
		loc := az.Location(container, name)
		write(t, loc, crashData(0))
		return loc
	}, archive.LockTTL)
}
