package testenv

import (
	"path/filepath"
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
}

// ArchiveStores returns every kind of place archives are tested in; the
// conformance suites and the archive's store tests run on each.
func ArchiveStores() []ArchiveStore {
	return []ArchiveStore{
		{Name: "local", Start: func(testing.TB) func(testing.TB, string) string {
			return func(t testing.TB, name string) string { return filepath.Join(t.TempDir(), name) }
		}},
		{Name: "s3", Object: true, Start: func(t testing.TB) func(testing.TB, string) string {
			s := SharedS3(t)
			logOnFailure(t, "S3 server", s.LogTail)
			return func(t testing.TB, name string) string {
				s.Env(t)
				return s.Location(s.CreateBucket(t, "archive"), name)
			}
		}},
		{Name: "azure", Object: true, Start: func(t testing.TB) func(testing.TB, string) string {
			s := SharedAzurite(t)
			logOnFailure(t, "Azurite", s.LogTail)
			return func(t testing.TB, name string) string {
				s.Env(t)
				return s.Location(s.CreateContainer(t, "archive"), name)
			}
		}},
		{Name: "gcs", Object: true, Start: func(t testing.TB) func(testing.TB, string) string {
			s := SharedGCS(t)
			logOnFailure(t, "GCS emulator", s.LogTail)
			return func(t testing.TB, name string) string {
				s.Env(t)
				return s.Location(s.CreateBucket(t, "archive"), name)
			}
		}},
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
