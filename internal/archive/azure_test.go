package archive_test

import (
	"fmt"
	"os/exec"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestAzureShardsWriteOneArchive is TestShardsWriteOneArchive on an
// archive in a container of Azurite: four shards, each its own writer,
// sync into it at once, coordinating through lock objects and journal
// records created with If-None-Match: *. pyarrow's Azure file system reads
// the metrics straight from the emulator.
func TestAzureShardsWriteOneArchive(t *testing.T) {
	az := testenv.SharedAzurite(t)
	container := az.CreateContainer(t, "shards")
	shardsWriteOneArchive(t, az.Location(container, "archive"), func(t *testing.T, _ string) int {
		return azureCount(t, az, container+"/archive")
	})
}

// azureCount returns the number of metric rows a user reads from the
// archive at containerPrefix in Azurite with pyarrow's Azure file system
// (the account and key from the environment SharedAzurite set), with
// DuckDB querying that dataset, failing if any (run, key, step) is seen
// twice.
func azureCount(t *testing.T, az *testenv.AzuriteServer, containerPrefix string) int {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), "-c", `import os, sys, duckdb, pyarrow.dataset as ds, pyarrow.fs as fs
host, where = sys.argv[1], sys.argv[2]
azure = fs.AzureFileSystem(account_name=os.environ["AZURE_STORAGE_ACCOUNT"], account_key=os.environ["AZURE_STORAGE_KEY"],
                           blob_storage_authority=host, dfs_storage_authority=host,
                           blob_storage_scheme="http", dfs_storage_scheme="http")
metrics = ds.dataset(where + "/metrics", filesystem=azure, format="parquet")
n, d = duckdb.execute("select count(*), count(distinct (run, key, step)) from metrics").fetchone()
print(n, d)`, az.Host, containerPrefix).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow/duckdb over Azure: %v\n%s", err, out)
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
