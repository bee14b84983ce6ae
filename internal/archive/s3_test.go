package archive_test

import (
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestS3Compact is TestCompactMergesDeltas' core on an archive in a
// bucket: runs appended to by three syncs are compacted to one metrics
// file each, read back whole, once per point by pyarrow and DuckDB from
// the S3 server; a prune then keeps one snapshot and the archive checks.
func TestS3Compact(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := s.CreateBucket(t, "compact")
	loc := s.Location(bucket, "a")
	want := growArchive(t, loc, 4, 50, 0, 3)
	rep, err := archive.Compact(loc, false)
	if err != nil || rep.Runs != 4 || rep.FilesBefore != 12 || rep.Points != int64(points(want)) {
		t.Fatalf("compact: %+v, %v", rep, err)
	}
	for o, n := range metricsFiles(t, loc) {
		if n != 1 {
			t.Errorf("run %s holds %d metrics files after compacting, want 1", o, n)
		}
	}
	expectEqual(t, loc, want)
	oneVersionPerRun(t, loc)
	if got := storeCount(t, objectStore(t, "s3"), loc); got != points(want) {
		t.Errorf("pyarrow/DuckDB read %d points, want %d", got, points(want))
	}
	prep, err := archive.Prune(loc, 1)
	if err != nil || len(prep.Kept) != 1 || prep.Files == 0 {
		t.Fatalf("prune: %+v, %v", prep, err)
	}
	if rep, err := archive.Check(loc); err != nil || len(rep.Notes) > 0 {
		t.Fatalf("check after prune: %v %v", err, rep.Notes)
	}
	expectEqual(t, loc, want)
}
