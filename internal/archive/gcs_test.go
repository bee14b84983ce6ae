package archive_test

import (
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// TestGCSEmulatorHost: without the endpoint option, STORAGE_EMULATOR_HOST
// (the variable Google's client libraries read) names the emulator.
func TestGCSEmulatorHost(t *testing.T) {
	g := testenv.SharedGCS(t)
	bucket := g.CreateBucket(t, "emuhost")
	t.Setenv("STORAGE_EMULATOR_HOST", strings.TrimPrefix(g.Endpoint, "http://"))
	loc := "gs://" + bucket + "/a"
	d := dataset.Canonical()
	write(t, loc, d)
	expectEqual(t, loc, d)
	// The same archive through the endpoint option.
	expectEqual(t, g.Location(bucket, "a"), d)
}

// TestGCSShardsWriteOneArchive is TestShardsWriteOneArchive on an archive
// in a bucket of the GCS emulator: four shards, each its own writer, sync
// into it at once, coordinating through lock objects and journal records
// created with ifGenerationMatch=0 (which fake-gcs-server checks under
// its lock, as GCS does). pyarrow's GCS file system reads the metrics
// straight from the emulator.
func TestGCSShardsWriteOneArchive(t *testing.T) {
	g := testenv.SharedGCS(t)
	bucket := g.CreateBucket(t, "shards")
	shardsWriteOneArchive(t, g.Location(bucket, "archive"), func(t *testing.T, _ string) int {
		return gcsCount(t, g, bucket+"/archive")
	})
}

// gcsCount returns the number of metric rows a user reads from the archive
// at bucketPrefix in the GCS emulator with pyarrow's GCS file system (the
// dataset of metrics/), with DuckDB querying that dataset, failing if any
// (run, key, step) is seen twice.
func gcsCount(t *testing.T, g *testenv.GCSServer, bucketPrefix string) int {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), "-c", `import sys, datetime, duckdb, pyarrow.dataset as ds, pyarrow.fs as fs
endpoint, where = sys.argv[1], sys.argv[2]
gcs = fs.GcsFileSystem(anonymous=True, endpoint_override=endpoint.split("://")[1], scheme="http",
                       retry_time_limit=datetime.timedelta(seconds=10))
metrics = ds.dataset(where + "/metrics", filesystem=gcs, format="parquet")
n, d = duckdb.execute("select count(*), count(distinct (run, key, step)) from metrics").fetchone()
print(n, d)`, g.Endpoint, bucketPrefix).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow/duckdb over GCS: %v\n%s", err, out)
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

// TestGCSBadLocations: a missing bucket, credentials in the location, no
// Google credentials at all, and options that do not apply each fail at
// open with one line naming the location, and create nothing.
func TestGCSBadLocations(t *testing.T) {
	g := testenv.SharedGCS(t)
	bucket := g.CreateBucket(t, "bad")
	ep := url.Values{"endpoint": {g.Endpoint}}.Encode()
	for _, c := range []struct{ name, loc, want string }{
		{"missing bucket", "gs://no-such-bucket-" + bucket + "/a?" + ep, `bucket "no-such-bucket-` + bucket + `" does not exist`},
		{"credentials", "gs://user:secret@" + bucket + "/a?" + ep, "credentials do not belong in the location"},
		{"no ADC", "gs://" + bucket + "/a", "no Google credentials (Application Default Credentials"},
		{"https endpoint, no ADC", "gs://" + bucket + "/a?endpoint=https://storage.example.invalid", "no Google credentials"},
		{"S3 option", "gs://" + bucket + "/a?region=eu&" + ep, "option region applies to s3:// archives only"},
		{"unknown option", "gs://" + bucket + "/a?token=x&" + ep, `unknown option "token"`},
		{"bad endpoint", "gs://" + bucket + "/a?endpoint=ftp://x", `endpoint "ftp://x"`},
		{"no bucket", "gs:///a", "no bucket named"},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, err := archive.OpenStore(c.loc)
			if err == nil {
				st.Close()
				t.Fatalf("opened %s", c.loc)
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || strings.Contains(msg, "\n") || strings.Contains(msg, "secret") {
				t.Fatalf("error %q, want one line containing %q (and no secret)", msg, c.want)
			}
			if !strings.HasPrefix(msg, "gs://") && !strings.HasPrefix(msg, "archive location") {
				t.Errorf("error %q does not start with the location", msg)
			}
		})
	}
	// Nothing was created in the bucket that exists.
	st, err := archive.OpenStore(g.Location(bucket, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if top, err := st.Top(); err != nil || len(top) != 0 {
		t.Errorf("the bucket holds %v, %v; want nothing", top, err)
	}
}
