package testenv_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestBuildOnce: calls from several tests at once get one binary, named
// after the package, that every user may run, in a folder every user may
// search.
func TestBuildOnce(t *testing.T) {
	paths := make([]string, 3)
	t.Run("group", func(t *testing.T) {
		for i := range paths {
			t.Run(fmt.Sprint(i), func(t *testing.T) {
				t.Parallel()
				paths[i] = testenv.BuildOnce(t, "../../bench/genwandb")
			})
		}
	})
	if paths[0] != paths[1] || paths[1] != paths[2] || filepath.Base(paths[0]) != "genwandb" {
		t.Fatalf("BuildOnce gave %q", paths)
	}
	for _, p := range []string{paths[0], filepath.Dir(paths[0])} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Fatalf("%s: %v, %v; want mode 0755", p, fi.Mode(), err)
		}
	}
}
