package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docQueries returns the DuckDB statements of docs/ARCHIVE.md's sql blocks
// that read a local archive, in order, with "ARCHIVE/" dropped from their
// paths (they are run from inside the archive folder, as current.sql is),
// and how many blocks read object storage instead (not run here: no
// network in tests).
func docQueries(t *testing.T) (queries []string, remote int) {
	t.Helper()
	b, err := os.ReadFile("../../docs/ARCHIVE.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```sql\n(.*?)```").FindAllStringSubmatch(string(b), -1)
	for _, m := range blocks {
		if strings.Contains(m[1], "s3://") {
			remote++
			continue
		}
		var lines []string
		for _, l := range strings.Split(m[1], "\n") {
			if i := strings.Index(l, "--"); i >= 0 {
				l = l[:i]
			}
			lines = append(lines, l)
		}
		for _, q := range strings.Split(strings.Join(lines, "\n"), ";") {
			if q = strings.TrimSpace(q); q != "" {
				queries = append(queries, strings.ReplaceAll(q, "'ARCHIVE/", "'"))
			}
		}
	}
	return queries, remote
}

// archiveDocsScript runs, in each archive folder given, current.sql, then
// every query given (JSON list), and prints per archive each query's row
// count and each view's columns with their DuckDB types.
const archiveDocsScript = `
import json, os, sys, duckdb
queries = json.loads(sys.argv[1])
out = {}
for d in sys.argv[2:]:
    os.chdir(d)
    con = duckdb.connect()
    con.execute(open("current.sql").read())
    rows = []
    for q in queries:
        try:
            rows.append(len(con.execute(q).fetchall()))
        except Exception as e:
            rows.append("%s: %s" % (q, e))
    views = {}
    for (name,) in con.execute("select view_name from duckdb_views() where not internal order by 1").fetchall():
        views[name] = [list(r[:2]) for r in con.execute('describe "%s"' % name).fetchall()]
    out[d] = {"rows": rows, "views": views}
print(json.dumps(out))
`

// TestArchiveDocQueriesRunOnWandbArchive runs every DuckDB query of
// docs/ARCHIVE.md (taken from the document, so the two cannot drift) on an
// archive of the W&B fixtures, which holds no params, inputs, traces or
// model registry, and on an archive of no runs: every one runs on the
// first (no "No files found", no missing view), every one through the
// views runs on the second, the trace and registry queries find no rows,
// the others some, and every table has its view in both archives with the
// same columns and types.
func TestArchiveDocQueriesRunOnWandbArchive(t *testing.T) {
	queries, remote := docQueries(t)
	if remote != 1 || len(queries) < 6 {
		t.Fatalf("docs/ARCHIVE.md: %d local queries, %d object-storage blocks; want at least 6 and exactly 1 (a new block neither local nor the S3 one?)", len(queries), remote)
	}
	dir := t.TempDir()
	wandbArch := filepath.Join(dir, "wandb")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+wandbArch, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	// An archive of no runs: one experiment holding none, from an MLflow
	// file store (a run filter selecting nothing writes no experiment, so
	// it makes no archive at all).
	store := filepath.Join(dir, "mlruns")
	if err := os.MkdirAll(filepath.Join(store, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	meta := "artifact_location: file://" + filepath.Join(store, "1") + "\ncreation_time: 1700000000000\n" +
		"experiment_id: '1'\nlast_update_time: 1700000000000\nlifecycle_stage: active\nname: empty\n"
	if err := os.WriteFile(filepath.Join(store, "1", "meta.yaml"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	emptyArch := filepath.Join(dir, "empty")
	if code, out, errOut := runCLI(t, "copy", "mlflow+file:"+store, "parquet:"+emptyArch, "--no-state"); code != 0 {
		t.Fatalf("copy of no runs: exit %d\n%s\n%s", code, out, errOut)
	}
	qj, _ := json.Marshal(queries)
	type result struct {
		Rows  []any                 `json:"rows"`
		Views map[string][][]string `json:"views"`
	}
	var got map[string]result
	if err := json.Unmarshal(runPy(t, "-c", archiveDocsScript, string(qj), wandbArch, emptyArch), &got); err != nil {
		t.Fatal(err)
	}
	w, e := got[wandbArch], got[emptyArch]
	for i, q := range queries {
		if s, ok := w.Rows[i].(string); ok {
			t.Errorf("W&B archive: %s", s)
		}
		// A glob over a table without files fails, as the document says;
		// the queries through the views must run on any archive.
		if s, ok := e.Rows[i].(string); ok && !strings.Contains(q, "read_parquet(") {
			t.Errorf("archive of no runs: %s", s)
		}
		if n, ok := w.Rows[i].(float64); ok {
			isEmptyTable := strings.Contains(q, "traces") || strings.Contains(q, "model_versions")
			if isEmptyTable && n != 0 || !isEmptyTable && n == 0 {
				t.Errorf("W&B archive: %d rows from %s", int(n), q)
			}
		}
	}
	tables := []string{"experiments", "runs", "params", "tags", "metrics", "rich_values", "logs", "artifacts",
		"artifact_versions", "artifact_entries", "inputs", "registered_models", "model_versions", "traces"}
	for _, tb := range tables {
		wv, ev := w.Views[tb], e.Views[tb]
		if len(wv) == 0 || len(ev) == 0 {
			t.Errorf("view %s: %v in the W&B archive, %v in the archive of no runs", tb, wv, ev)
			continue
		}
		if jw, je := mustJSON(wv), mustJSON(ev); jw != je {
			t.Errorf("view %s: columns %s in the W&B archive, %s in the archive of no runs", tb, jw, je)
		}
	}
	if len(w.Views) != len(tables) || len(e.Views) != len(tables) {
		t.Errorf("views: %d and %d, want %d", len(w.Views), len(e.Views), len(tables))
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
