package layers

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/runferry/runferry/"

// imports maps each package directory (relative to the module root) to the
// module packages its non-test files import.
func imports(t *testing.T) map[string][]string {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) {
				out[rel] = append(out[rel], strings.TrimPrefix(p, module))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// isAdapter reports whether pkg is a concrete source or sink adapter.
func isAdapter(pkg string) bool {
	for _, base := range []string{"sources/", "sinks/"} {
		if rest, ok := strings.CutPrefix(pkg, base); ok && !strings.Contains(rest, "/") &&
			rest != "all" && rest != "sourcetest" && rest != "sinktest" {
			return true
		}
	}
	return false
}

func TestDependencyDirection(t *testing.T) {
	all := imports(t)
	if len(all) < 10 {
		t.Fatalf("found only %d packages: the walk is broken", len(all))
	}
	for pkg, deps := range all {
		for _, dep := range deps {
			var why string
			switch {
			case pkg == "schema" && dep != "schema":
				why = "schema depends on nothing"
			case strings.HasPrefix(pkg, "internal/transfer") && isAdapter(dep):
				why = "the engine never imports a concrete adapter"
			case isAdapter(pkg) && (strings.HasPrefix(dep, "internal/transfer") || strings.HasPrefix(dep, "internal/state") ||
				strings.HasPrefix(dep, "internal/check") || strings.HasPrefix(dep, "cmd")):
				why = "adapters never import the engine, the ledger or the command"
			case isAdapter(pkg) && isAdapter(dep) && !(pkg == "sinks/memory" && dep == "sources/memory") &&
				!(strings.HasPrefix(pkg, "sinks/") && strings.HasPrefix(dep, "sources/") && pkg[len("sinks/"):] == dep[len("sources/"):]):
				why = "an adapter imports only its own paired reader"
			case (dep == "sources/all" || dep == "sinks/all") && !strings.HasPrefix(pkg, "cmd/"):
				why = "only the command knows every adapter"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, why)
			}
		}
	}
}
