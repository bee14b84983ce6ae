package archive_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
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
// again); changes a run, reads the older snapshot as it was, prunes to one
// snapshot and reads it again; leaves what an interrupted write would (an
// unreferenced body, a staged file), which check reports and prune
// removes; then changes one byte of a metrics object, which check and a
// read each name.
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
			v1 := d.Clone()
			d.Runs[0].Run.Notes = "changed"
			write(t, loc, d)
			readSnapshot(t, loc, 2, v1) // an older snapshot reads as it was written
			if _, err := archive.Prune(loc, 1); err != nil {
				t.Fatal(err)
			}
			if rep, err := archive.Check(loc); err != nil || len(rep.Notes) > 0 {
				t.Fatalf("check after prune: %v %+v", err, rep)
			}
			expectEqual(t, loc, d)

			st, err := archive.OpenStore(loc)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()

			// What an interrupted write leaves (an artifact body uploaded
			// to its content address before the commit that would
			// reference it, a staged data file) is harmless: check names
			// the body as not referenced and passes; prune removes both.
			body := []byte("a body whose run never committed")
			sum := sha256.Sum256(body)
			h := hex.EncodeToString(sum[:])
			orphan := "blobs/sha256/" + h[:2] + "/" + h
			staged := ".staging/metrics/run/000009-0123456789ab.parquet"
			for _, p := range []string{orphan, staged} {
				if err := st.WriteFile(p, body); err != nil {
					t.Fatal(err)
				}
			}
			if rep, err := archive.Check(loc); err != nil || !strings.Contains(fmt.Sprint(rep.Notes), st.Name(orphan)+": not referenced") {
				t.Fatalf("check: %v, notes %q; want a note naming %s", err, rep.Notes, st.Name(orphan))
			}
			if prep, err := archive.Prune(loc, 1); err != nil || prep.Blobs != 1 {
				t.Fatalf("prune: %+v, %v; want the one unreferenced body removed", prep, err)
			}
			for _, p := range []string{orphan, staged} {
				if _, err := st.Stat(p); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s after prune: %v, want gone", p, err)
				}
			}
			if rep, err := archive.Check(loc); err != nil || len(rep.Notes) > 0 {
				t.Fatalf("check after the second prune: %v %q", err, rep.Notes)
			}

			// Tampering: one byte of a metrics object changed is found by
			// check, which names the object, and by a read of its run.
			metrics := objectsUnder(t, loc, archive.TableMetrics)
			if len(metrics) == 0 {
				t.Fatal("no metrics object")
			}
			body, err = st.ReadFile(metrics[0])
			if err != nil {
				t.Fatal(err)
			}
			body[len(body)/2] ^= 1
			if err := st.WriteFile(metrics[0], body); err != nil {
				t.Fatal(err)
			}
			rep, err = archive.Check(loc)
			if !errors.Is(err, archive.ErrDamaged) || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], st.Name(metrics[0])) {
				t.Fatalf("check of a tampered archive: %v %q; want one problem naming %s", err, rep.Problems, st.Name(metrics[0]))
			}
			if _, err := read(t, loc); err == nil || !strings.Contains(err.Error(), metrics[0]) {
				t.Fatalf("reading a tampered archive: %v; want an error naming %s", err, metrics[0])
			}
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

// TestObjectStoreShardsWriteOneArchive is TestShardsWriteOneArchive on an
// archive in a bucket of each object store: four shards, each its own
// writer, sync into it at once, coordinating through lock objects and
// journal records created only if absent (If-None-Match: * on S3 and
// Azure; ifGenerationMatch=0 on GCS, which fake-gcs-server checks under its
// store's lock, as GCS does). pyarrow's file system for the store reads
// the metrics straight from the server, and DuckDB queries them.
func TestObjectStoreShardsWriteOneArchive(t *testing.T) {
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) {
			loc := store.Start(t)(t, "archive")
			shardsWriteOneArchive(t, loc, func(t *testing.T, _ string) int { return storeCount(t, store, loc) })
		})
	}
}

// objectStore returns the store called name of testenv.ArchiveStores.
func objectStore(t *testing.T, name string) testenv.ArchiveStore {
	t.Helper()
	for _, s := range testenv.ArchiveStores() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no archive store %q", name)
	return testenv.ArchiveStore{}
}

// storeCount returns the number of metric rows a user reads from the
// archive at loc in store with pyarrow's file system for that store (the
// dataset of metrics/, as read_parquet('s3://.../metrics/*/*.parquet')
// would), with DuckDB querying that dataset, failing if any (run, key,
// step) is seen twice.
func storeCount(t *testing.T, store testenv.ArchiveStore, loc string) int {
	t.Helper()
	fsys, where := store.PyArrow(t, loc)
	out, err := exec.Command(testenv.Python(t), "-c", `import os, sys, datetime, duckdb, pyarrow.dataset as ds, pyarrow.fs as fs
metrics = ds.dataset(sys.argv[1] + "/metrics", filesystem=`+fsys+`, format="parquet")
duckdb.execute("set enable_progress_bar = false")  # no progress bar on the output this test parses
n, d = duckdb.execute("select count(*), count(distinct (run, key, step)) from metrics").fetchone()
print(n, d)`, where).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow/duckdb over %s: %v\n%s", store.Name, err, out)
	}
	var rows, distinct int
	if _, err := fmt.Sscan(string(out), &rows, &distinct); err != nil {
		t.Fatalf("pyarrow/duckdb printed %q", out)
	}
	if rows != distinct {
		t.Errorf("%d rows but %d distinct (run, key, step): points seen twice", rows, distinct)
	}
	return rows
}

// TestCreateExclusiveFromLarge: a manifest too large to hold whole is
// created from a reader, in parts (a multipart upload in object storage),
// only if absent: a second create of the same path fails with
// fs.ErrExist and leaves the first's bytes, in a local folder and on
// each object store (If-None-Match on the whole multipart upload).
func TestCreateExclusiveFromLarge(t *testing.T) {
	body := make([]byte, 20<<20+12345) // more than two parts of 8 MiB
	for i := range body {
		body[i] = byte(i*7 + i/4096)
	}
	other := bytes.Repeat([]byte("x"), len(body))
	check := func(t *testing.T, loc string) {
		st, err := archive.OpenStore(loc)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.CreateExclusiveFrom("snapshots/big.json", bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
		err = st.CreateExclusiveFrom("snapshots/big.json", bytes.NewReader(other), int64(len(other)))
		if !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second create: %v, want fs.ErrExist", err)
		}
		if err := st.WriteFileFrom("manifest-big.json", bytes.NewReader(body[:len(body)-1]), int64(len(body)-1)); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string][]byte{"snapshots/big.json": body, "manifest-big.json": body[:len(body)-1]} {
			got, err := st.ReadFile(p)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes (%v), want the %d written", p, len(got), err, len(want))
			}
		}
	}
	t.Run("local", func(t *testing.T) { check(t, t.TempDir()) })
	for _, store := range testenv.ObjectStores() {
		t.Run(store.Name, func(t *testing.T) { check(t, store.Start(t)(t, "big")) })
	}
}
