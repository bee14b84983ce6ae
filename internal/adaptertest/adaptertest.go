// Package adaptertest holds the registry-wide checks every adapter must
// pass, for the tests of sources/all and sinks/all: the adapter's package
// runs its contract's conformance suite, and the README and
// docs/ADAPTERS.md list its scheme.
package adaptertest

import (
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
)

// module is the module path, which package paths start with.
const module = "github.com/runferry/runferry"

// Check asserts, for every factory, that the package defining its Open
// function has a test calling suite (e.g. "sourcetest.Run("), and that
// README.md and docs/ADAPTERS.md name its primary scheme.
func Check[T any](t *testing.T, factories []location.Factory[T], suite string) {
	root := testenv.RepoRoot(t)
	readme := read(t, filepath.Join(root, "README.md"))
	guide := read(t, filepath.Join(root, "docs", "ADAPTERS.md"))
	if len(factories) == 0 {
		t.Fatal("the registry is empty")
	}
	for _, f := range factories {
		fn := runtime.FuncForPC(reflect.ValueOf(f.Open).Pointer()).Name() // module/sources/x.Open or .func1
		pkg := packageOf(fn)
		if !strings.HasPrefix(pkg, module+"/") {
			t.Errorf("%s: Open is %s, outside the module", f.Scheme, fn)
			continue
		}
		dir := filepath.Join(root, filepath.FromSlash(strings.TrimPrefix(pkg, module+"/")))
		tests, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
		found := false
		for _, file := range tests {
			if strings.Contains(read(t, file), suite) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s (%s): no test in %s calls %s: every adapter runs its contract's conformance suite", f.Scheme, pkg, dir, suite)
		}
		for name, doc := range map[string]string{"README.md": readme, "docs/ADAPTERS.md": guide} {
			if !strings.Contains(doc, "`"+f.Scheme+":") && !strings.Contains(doc, "`"+f.Scheme+"://") {
				t.Errorf("%s does not name the scheme %s (want `%s:...` or `%s://...`)", name, f.Scheme, f.Scheme, f.Scheme)
			}
		}
	}
}

// packageOf returns the package path of a function's name as the runtime
// gives it ("module/sources/x.Open", "module/sources/x.Factory.func1").
func packageOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return fn[:slash+1+dot]
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
