package testenv

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// ArchiveStore is a kind of place the archive tests keep archives in: the
// local folder, or an object store whose server runs here.
type ArchiveStore struct {
	// Name names the kind, as a subtest: local, s3, azure, gcs.
	Name string
	// Object is false for the local folder.
	Object bool
	// Start starts (or joins) the store's shared server, sets the test's
	// environment for it, logs the server's last lines if the test fails,
	// and returns fresh, which gives a new, empty archive location named
	// name (a folder under t.TempDir(), or a prefix in a new bucket) and
	// sets t's environment for the store (so fresh may be called from a
	// subtest).
	Start func(t testing.TB) (fresh func(t testing.TB, name string) string)
	// PyArrow returns, for an archive location fresh gave, Python code
	// making a pyarrow file system that reaches the store (with
	// pyarrow.fs imported as fs, and os and datetime imported; credentials
	// from the environment Start set) and the archive's path in it, as a
	// user reading the archive with pyarrow or DuckDB would.
	PyArrow func(t testing.TB, location string) (fsys, path string)
}

// archiveServer is what ArchiveStores needs of an object-store server.
type archiveServer interface {
	Env(t testing.TB)
	LogTail(n int) string
	Location(bucket, prefix string) string
}

// objectStore makes the ArchiveStore of an object-store server: shared
// starts (or joins) it, bucket creates a fresh bucket (container) in it,
// pyfs gives the Python making pyarrow's file system for it.
func objectStore[S archiveServer](name, what string, shared func(testing.TB) S, bucket func(S, testing.TB, string) string, pyfs func(S) string) ArchiveStore {
	return ArchiveStore{Name: name, Object: true,
		Start: func(t testing.TB) func(testing.TB, string) string {
			s := shared(t)
			logOnFailure(t, what, s.LogTail)
			return func(t testing.TB, name string) string {
				s.Env(t)
				return s.Location(bucket(s, t, "archive"), name)
			}
		},
		PyArrow: func(t testing.TB, location string) (string, string) {
			u, err := url.Parse(location)
			if err != nil {
				t.Fatalf("testenv: archive location %q: %v", location, err)
			}
			return pyfs(shared(t)), u.Host + strings.TrimSuffix(u.Path, "/")
		}}
}

// ArchiveStores returns every kind of place archives are tested in; the
// conformance suites and the archive's store tests run on each.
func ArchiveStores() []ArchiveStore {
	return []ArchiveStore{
		{Name: "local",
			Start: func(testing.TB) func(testing.TB, string) string {
				return func(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
			},
			PyArrow: func(_ testing.TB, location string) (string, string) { return "fs.LocalFileSystem()", location }},
		objectStore("s3", "S3 server", SharedS3, (*S3Server).CreateBucket, func(s *S3Server) string {
			return fmt.Sprintf("fs.S3FileSystem(endpoint_override=%q, scheme=\"http\", region=%q)", strings.TrimPrefix(s.Endpoint, "http://"), s.Region)
		}),
		objectStore("azure", "Azurite", SharedAzurite, (*AzuriteServer).CreateContainer, func(s *AzuriteServer) string {
			return fmt.Sprintf(`fs.AzureFileSystem(account_name=os.environ["AZURE_STORAGE_ACCOUNT"], account_key=os.environ["AZURE_STORAGE_KEY"], `+
				`blob_storage_authority=%[1]q, dfs_storage_authority=%[1]q, blob_storage_scheme="http", dfs_storage_scheme="http")`, s.Host)
		}),
		objectStore("gcs", "GCS emulator", SharedGCS, (*GCSServer).CreateBucket, func(s *GCSServer) string {
			return fmt.Sprintf(`fs.GcsFileSystem(anonymous=True, endpoint_override=%q, scheme="http", retry_time_limit=datetime.timedelta(seconds=10))`,
				strings.TrimPrefix(s.Endpoint, "http://"))
		}),
	}
}

// ObjectStores returns the object stores of ArchiveStores.
func ObjectStores() []ArchiveStore {
	var out []ArchiveStore
	for _, s := range ArchiveStores() {
		if s.Object {
			out = append(out, s)
		}
	}
	return out
}

func logOnFailure(t testing.TB, what string, tail func(int) string) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s log:\n%s", what, tail(40))
		}
	})
}
