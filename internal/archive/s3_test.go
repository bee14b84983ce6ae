package archive_test

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestS3ShardsWriteOneArchive is TestShardsWriteOneArchive on an archive
// in a bucket: four shards, each its own writer, sync into it at once,
// coordinating through lock objects and journal records created with
// If-None-Match. pyarrow reads the metrics straight from the S3 server.
func TestS3ShardsWriteOneArchive(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := s.CreateBucket(t, "shards")
	shardsWriteOneArchive(t, s.Location(bucket, "archive"), func(t *testing.T, _ string) int {
		return s3Count(t, s, bucket+"/archive")
	})
}

// s3Count returns the number of metric rows a user reads from the archive
// at bucketPrefix on the S3 server with pyarrow's S3 file system (the
// dataset of metrics/, as read_parquet('s3://.../metrics/*/*.parquet')
// would), with DuckDB querying that dataset, failing if any (run, key,
// step) is seen twice.
func s3Count(t *testing.T, s *testenv.S3Server, bucketPrefix string) int {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), "-c", `import sys, duckdb, pyarrow.dataset as ds, pyarrow.fs as fs
endpoint, where = sys.argv[1], sys.argv[2]
s3 = fs.S3FileSystem(endpoint_override=endpoint.split("://")[1], scheme="http", region="us-east-1")
metrics = ds.dataset(where + "/metrics", filesystem=s3, format="parquet")
n, d = duckdb.execute("select count(*), count(distinct (run, key, step)) from metrics").fetchone()
print(n, d)`, s.Endpoint, bucketPrefix).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow/duckdb over S3: %v\n%s", err, out)
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
	if got := s3Count(t, s, bucket+"/a"); got != points(want) {
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
