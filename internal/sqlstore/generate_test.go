package sqlstore

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/runferry/runferry/schema"
)

// FuzzYAMLScalar: every string the generator writes into a mapping (a
// table or column name, a query, a status value) reads back unchanged.
func FuzzYAMLScalar(f *testing.F) {
	for _, s := range []string{"runs", "SELECT a, b FROM t WHERE run_id = :run ORDER BY a", "yes", "a: b", "x #y", "", " lead", "tab\there", "new\nline", `q"uote`, "back\\slash", "null", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, '\uFEFF') {
			return // names and values come from the database as text
		}
		var got struct{ K string }
		if err := yaml.Unmarshal([]byte("k: "+yamlScalar(s)+"\n"), &got); err != nil {
			t.Fatalf("%q written as %s: %v", s, yamlScalar(s), err)
		}
		if got.K != s {
			t.Fatalf("%q written as %s reads back as %q", s, yamlScalar(s), got.K)
		}
	})
}

// TestGenerateOtherSchema: a schema unlike the documented example, with
// projects for experiments, a training_runs table whose times are epoch
// seconds, scalars and hyperparameters tables, a status value no word
// places and a table of something else: the generator maps what it can
// tell, says what it cannot (in its notes and in the file), and what it
// writes reads the data through a mapping.
func TestGenerateOtherSchema(t *testing.T) {
	raw := "sqlite:" + filepath.Join(t.TempDir(), "lab.db")
	s := mustOpen(t, raw, ForWriting)
	for _, q := range []string{
		"CREATE TABLE projects (id INTEGER PRIMARY KEY, title TEXT NOT NULL, description TEXT)",
		"CREATE TABLE training_runs (id INTEGER PRIMARY KEY, project_id INTEGER, run_name TEXT, status TEXT, created_at INTEGER, modified_at INTEGER)",
		"CREATE TABLE run_scalars (run_id INTEGER, tag TEXT, step INTEGER, value REAL, wall_time REAL)",
		"CREATE TABLE run_hparams (run_id INTEGER, name TEXT, value TEXT)",
		"CREATE TABLE misc (x TEXT)",
		"INSERT INTO projects VALUES (7, 'vision', 'image models')",
		"INSERT INTO training_runs VALUES (1, 7, 'a', 'completed', 1709294400, 1709294460)",
		"INSERT INTO training_runs VALUES (2, 7, 'b', 'zombie', 1709294500, 1709294500)",
		"INSERT INTO run_scalars VALUES (1, 'loss', 0, 0.5, 1709294401.5)",
		"INSERT INTO run_hparams VALUES (1, 'lr', '0.1')",
	} {
		if _, err := s.DB.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	text, notes, err := s.Generate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"experiments:\n  query: SELECT id, title, description FROM projects\n",
		"runs:\n  query: SELECT id, project_id, run_name, status, created_at, modified_at FROM training_runs WHERE project_id = :experiment\n",
		"    cursor: modified_at\n  time: auto",
		"    completed: FINISHED\n    # zombie: ? (RUNNING, FINISHED, FAILED or KILLED)\n",
		"params:\n  query: SELECT name, value FROM run_hparams WHERE run_id = :run ORDER BY name\n",
		"metrics:\n  query: SELECT tag, value, step, wall_time FROM run_scalars WHERE run_id = :run ORDER BY tag, step\n",
		"# Tables not mapped: misc\n",
		"# NOTE: runs: status \"zombie\": cannot tell",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the generated mapping lacks %q:\n%s", want, text)
		}
	}
	if len(notes) != 1 || !strings.Contains(notes[0], `status "zombie"`) {
		t.Errorf("notes %q, want one on the status zombie", notes)
	}
	m, err := ParseMapping([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	r := NewMapped(s, m)
	exps, err := r.Experiments(context.Background())
	if err != nil || len(exps) != 1 || exps[0].Name != "vision" {
		t.Fatalf("experiments: %v %+v", err, exps)
	}
	_, err = r.Runs(context.Background(), exps[0].Origin)
	if err == nil || !strings.Contains(err.Error(), `status "zombie" is not in the mapping's status vocabulary`) {
		t.Errorf("runs with the unplaced status: %v", err)
	}
	if _, err := s.DB.Exec("UPDATE training_runs SET status = 'completed'"); err != nil {
		t.Fatal(err)
	}
	runs, err := r.Runs(context.Background(), exps[0].Origin)
	if err != nil || len(runs) != 2 || runs[0].Start.Unix() != 1709294400 || len(runs[0].Params) != 1 {
		t.Fatalf("runs: %v %+v", err, runs)
	}
	var got []schema.Metric
	err = r.Metrics(context.Background(), runs[0].Origin, 100, func(p []schema.Metric) error { got = append(got, p...); return nil })
	if err != nil || len(got) != 1 || got[0] != (schema.Metric{Key: "loss", Step: 0, Value: 0.5, Time: 1709294401500}) {
		t.Errorf("metrics: %v %+v", err, got)
	}
}
