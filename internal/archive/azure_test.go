package archive_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

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

// TestAzureShardsWriteOneArchive is TestShardsWriteOneArchive on an archive
// in a container of Azurite: four shards, each its own writer, sync into
// it at once, coordinating through lock objects and journal records
// created only if absent (Azure's If-None-Match: *). The points are then
// counted by a plain read of every object under metrics/ (no manifest),
// each (run, key, step) once.
func TestAzureShardsWriteOneArchive(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	az := testenv.SharedAzurite(t)
	loc := az.Location(az.CreateContainer(t, "shards"), "archive")
	shardsWriteOneArchive(t, loc, plainMetricsCount)
}

// plainMetricsCount returns the number of metric rows in the Parquet
// objects under the archive's metrics/ folder, read as a user listing the
// folder would (every object, no manifest), failing if any (run, key,
// step) is seen twice.
func plainMetricsCount(t *testing.T, loc string) int {
	t.Helper()
	st, err := archive.OpenStore(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type point struct {
		run, key string
		step     int64
	}
	seen := map[point]bool{}
	rows := 0
	err = st.Walk(archive.TableMetrics, func(p string, _ int64) error {
		data, err := st.ReadFile(p)
		if err != nil {
			return err
		}
		got, err := parquet.Read[archive.MetricRow](bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		for _, r := range got {
			k := point{r.Run, r.Key, r.Step}
			if seen[k] {
				t.Errorf("%s: point %v seen twice", p, k)
			}
			seen[k] = true
		}
		rows += len(got)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}
