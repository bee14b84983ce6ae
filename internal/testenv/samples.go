package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// Samples returns the path of rel inside the real-world samples, which live
// beside the repository in ../shared/samples (see its README.md). When they
// are missing the test is skipped on a developer's clone and fails under CI
// or RUNFERRY_REQUIRE_REAL=1, so a CI run never passes without them.
func Samples(t testing.TB, rel string) string {
	t.Helper()
	dir := filepath.Join(RepoRoot(t), "..", "shared", "samples", rel)
	if _, err := os.Stat(dir); err != nil {
		Unavailable(t, "the real-world samples in ../shared/samples", err.Error())
	}
	return dir
}
