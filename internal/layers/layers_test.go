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
			rest != "all" && rest != "sourcetest" && rest != "sinktest" && rest != "dataset" {
			return true
		}
	}
	return false
}

// floor is a package's place in the layering, from the bottom: schema (0),
// the clients and formats under internal/ (1), transform (2), the
// contracts and adapters under sources/ and sinks/ (3), the engine (4),
// the lists of every adapter (5) and the command (6). Every import runs to
// the same floor or below. Packages that only serve tests or tools have no
// floor (-1) and are checked by the rules in TestDependencyDirection alone.
func floor(pkg string) int {
	switch {
	case pkg == "schema" || strings.HasPrefix(pkg, "schema/"):
		return 0
	case testSupport[pkg] || strings.HasPrefix(pkg, "bench/"):
		return -1
	case strings.HasPrefix(pkg, "internal/"):
		return 1
	case pkg == "transform":
		return 2
	case pkg == "sources/all" || pkg == "sinks/all":
		return 5
	case pkg == "sources" || pkg == "sinks" || strings.HasPrefix(pkg, "sources/") || strings.HasPrefix(pkg, "sinks/"):
		return 3
	case strings.HasPrefix(pkg, "engine/"):
		return 4
	case strings.HasPrefix(pkg, "cmd/"):
		return 6
	}
	return -1
}

// testSupport are packages only tests import: the conformance suites (they
// drive the engine to exercise an adapter) and the test helpers.
var testSupport = map[string]bool{
	"sources/sourcetest": true, "sinks/sinktest": true,
	"internal/testenv": true, "internal/adaptertest": true, "internal/fixturecheck": true, "internal/layers": true,
}

func TestFloors(t *testing.T) {
	all := imports(t)
	for pkg, deps := range all {
		f := floor(pkg)
		if f < 0 {
			continue
		}
		for _, dep := range deps {
			if d := floor(dep); d > f || d < 0 && !testSupport[dep] {
				t.Errorf("%s (floor %d) imports %s (floor %d): imports run downward (cmd, engine, sources/sinks, transform, internal, schema)", pkg, f, dep, d)
			} else if d < 0 {
				t.Errorf("%s imports %s, which only tests may import", pkg, dep)
			}
		}
	}
	for _, p := range []string{"sources/dataset", "internal/archive", "transform", "sources/wandbdir", "engine/transfer", "cmd/runferry"} {
		if _, ok := all[p]; !ok {
			t.Errorf("package %s not found: the floors test is out of date", p)
		}
	}
}

// mlflowStoreReader are the sources that read MLflow's own stores without
// a server: they present them through the MLflow source's mapping
// (mlflow.NewWithBackend), so that a run reads the same from the store as
// from a server serving it.
var mlflowStoreReader = map[string]bool{"sources/mlflowfile": true, "sources/mlflowsql": true}

func TestDependencyDirection(t *testing.T) {
	all := imports(t)
	if len(all) < 10 {
		t.Fatalf("found only %d packages: the walk is broken", len(all))
	}
	for pkg, deps := range all {
		for _, dep := range deps {
			var why string
			switch {
			case (pkg == "schema" || strings.HasPrefix(pkg, "schema/")) && dep != "schema":
				why = "schema depends on nothing"
			case strings.HasPrefix(pkg, "engine/") && isAdapter(dep):
				why = "the engine never imports a concrete adapter"
			case isAdapter(pkg) && (strings.HasPrefix(dep, "engine/") || strings.HasPrefix(dep, "cmd")):
				why = "adapters never import the engine, the ledger or the command"
			case isAdapter(pkg) && isAdapter(dep) && !(pkg == "sinks/memory" && dep == "sources/memory") &&
				!(strings.HasPrefix(pkg, "sinks/") && strings.HasPrefix(dep, "sources/") && pkg[len("sinks/"):] == dep[len("sources/"):]) &&
				!(mlflowStoreReader[pkg] && dep == "sources/mlflow"):
				why = "an adapter imports only its own paired reader"
			case pkg == "internal/mlflowapi" && dep == "internal/mlflowconv":
				why = "the MLflow REST client knows nothing of runferry's storage convention"
			case (dep == "sources/all" || dep == "sinks/all") && !strings.HasPrefix(pkg, "cmd/"):
				why = "only the command knows every adapter"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", pkg, dep, why)
			}
		}
	}
}
