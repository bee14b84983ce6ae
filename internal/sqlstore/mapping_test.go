package sqlstore

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// FuzzParseMapping: any bytes either parse into a mapping that validates,
// or give an error; never a panic. A mapping that parses binds its
// queries for every dialect.
func FuzzParseMapping(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(f), "docs", "examples", "sql-mapping", "mapping.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("experiment: x\nruns: {query: 'SELECT 1 AS id', columns: {id: id}}\nmetrics: {query: 'SELECT :run', columns: {key: a, value: b}}\n"))
	f.Add([]byte("runs: [1, 2]"))
	f.Add([]byte(":"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMapping(b)
		if err != nil {
			return
		}
		for _, n := range m.entries {
			for _, d := range []Dialect{Postgres, MySQL, SQLite} {
				q, k := d.bind(n.e.Query)
				if n.param != "" && (k == 0 || strings.Contains(q, ":"+n.param)) {
					t.Fatalf("%s: bound %q (%d args) still misses or holds :%s", n.name, q, k, n.param)
				}
			}
		}
	})
}

// TestMappingValidate: each mistake a mapping file can hold without a
// database is named with its entry.
func TestMappingValidate(t *testing.T) {
	for _, tt := range []struct{ yaml, want string }{
		{"runs: {query: 'SELECT 1', columns: {id: id}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}", "experiments: give an experiments query, or experiment: NAME"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {name: n}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}", "runs: columns.id is missing"},
		{"experiment: e\nruns: {query: 'SELECT :experiment', columns: {id: i}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}", "runs: query uses :experiment, but takes no parameter"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}, status: {ok: DONE}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}", `runs: status.ok: "DONE" is not RUNNING, FINISHED, FAILED or KILLED`},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}, time: epoch_us}", `metrics: time: "epoch_us" is not epoch_ms, epoch_s or auto`},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}}\nmetric: {query: 'SELECT :run'}", "field metric not found"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}\nlogs: {query: 'SELECT l FROM logs', columns: {line: l}}", "logs: query must use :run"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}\nartifacts: {query: 'SELECT :run', columns: {path: p}}", "artifacts: columns.location is missing (required: path, location)"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i, updated: u}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}", "runs: columns.updated: unknown field"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}\nrich_values: {query: 'SELECT :run', columns: {key: k, step: s}}", "rich_values: columns: map one of value (a JSON document), text or file"},
		{"experiment: e\nruns: {query: 'SELECT 1', columns: {id: i}}\nmetrics: {query: 'SELECT :run', columns: {key: k, value: v}}\nrich_values: {query: 'SELECT 1', columns: {key: k, text: t}}", "rich_values: query must use :run"},
	} {
		_, err := ParseMapping([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s\nerr %v, want %q", tt.yaml, err, tt.want)
		}
	}
}

// FuzzRichValue: any bytes in a rich value's value, file, files and type
// columns either give an error or a value whose JSON is valid and whose
// files are clean relative paths inside the run; never a panic.
func FuzzRichValue(f *testing.F) {
	f.Add([]byte(`{"_type": "image-file", "path": "a.png", "m": [{"_type": "mask", "path": "../x"}]}`), "", "", "")
	f.Add([]byte(`[1, 2.50, "x"]`), "", `["b.bin"]`, "custom")
	f.Add([]byte(nil), "media/x.png", "", "")
	f.Add([]byte(`"text"`), "", `["../../etc"]`, "")
	f.Fuzz(func(t *testing.T, value []byte, file, files, typ string) {
		r := &Mapped{m: &Mapping{Path: "m.yaml"}}
		w := row{entry: "rich_values", vals: map[string]any{"k": "key"},
			cols: map[string]string{"key": "k", "value": "v", "file": "f", "files": "fs", "type": "t"}}
		if value != nil {
			w.vals["v"] = value
		}
		if file != "" {
			w.vals["f"] = file
		}
		if files != "" {
			w.vals["fs"] = files
		}
		if typ != "" {
			w.vals["t"] = typ
		}
		v, err := r.richValue(w, "1")
		if err != nil {
			return
		}
		if !json.Valid([]byte(v.JSON)) || v.Type == "" {
			t.Fatalf("value %+v: JSON not valid or no type", v)
		}
		for _, p := range v.Files {
			if p == "" || path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") || path.Clean(p) != p {
				t.Fatalf("value %+v: file %q is not a clean relative path", v, p)
			}
		}
	})
}
