package sqlstore

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

func TestReadableText(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"plain 한국어":         "plain 한국어",
		"a\x00b":            "a\u2400b",
		"bad \xff":          "bad \ufffd",
		"cut caf\xc3":       "cut caf\ufffd",
		"\xfe\xff\x00\x80x": "\ufffd\ufffd\u2400\ufffdx",
	} {
		if got := ReadableText(in); got != want {
			t.Errorf("ReadableText(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeLogs commits a run of origin memory:id holding lines.
func writeLogs(t *testing.T, s *Store, expID int64, id string, lines []string) {
	t.Helper()
	ctx := context.Background()
	run := schema.Run{Origin: schema.Ref{System: "memory", ID: id}, Experiment: schema.Ref{System: "memory", ID: "e"}, Name: id, Status: schema.StatusFinished}
	tx, err := s.BeginRun(ctx, expID, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ll []schema.LogLine
	for i, l := range lines {
		ll = append(ll, schema.LogLine{Time: int64(i), Stream: schema.Stdout, Line: l})
	}
	if err := tx.Logs(ctx, ll); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx, "fp"); err != nil {
		t.Fatal(err)
	}
}

// readLogs returns the lines of the run stored under memory:id.
func readLogs(t *testing.T, s *Store, id string) []string {
	t.Helper()
	rid, err := s.RunID(context.Background(), "memory:"+id)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = s.Logs(context.Background(), rid, 3, func(p []schema.LogLine) error {
		for _, l := range p {
			out = append(out, l.Line)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// exactBytesQuery is docs/SQL.md's query for a run's console lines as
// their exact bytes, per database.
var exactBytesQuery = map[string]string{
	"postgres": "SELECT COALESCE(line_bytes, convert_to(line, 'UTF8')) FROM logs WHERE run_id = $1 ORDER BY seq",
	"mysql":    "SELECT COALESCE(line_bytes, CAST(line AS BINARY)) FROM logs WHERE run_id = ? ORDER BY seq",
	"sqlite":   "SELECT COALESCE(line_bytes, CAST(line AS BLOB)) FROM logs WHERE run_id = ? ORDER BY seq",
}

// lineBytesUpgrade: a database written at version 2 (no line_bytes),
// holding a run with console lines, is read as it is by this runferry,
// then upgraded in place by the next write (on MySQL also when the
// upgrade was cut short after its ALTER TABLE); the old run's lines are
// kept, and a new run's lines holding NUL bytes and bytes that are not
// UTF-8 read back exactly, through the store and through SQL.md's query,
// with the readable form in logs.line.
func lineBytesUpgrade(t *testing.T, raw string) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:2]
	old := mustOpen(t, raw, ForWriting)
	if err := old.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	expID, err := old.PutExperiment(ctx, schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e"})
	if err != nil {
		t.Fatal(err)
	}
	oldLines := []string{"epoch 1", "한국어", ""}
	writeLogs(t, old, expID, "old", oldLines)
	migrations = saved

	if got := readLogs(t, mustOpen(t, raw, ForReading), "old"); !slices.Equal(got, oldLines) {
		t.Fatalf("version 2 read as it is: %q, want %q", got, oldLines)
	}
	w := mustOpen(t, raw, ForWriting)
	migrations = saved[:3] // the upgrade to version 3 (later ones: names_test.go)
	defer func() { migrations = saved }()
	if err := w.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Dialect.Name == "mysql" {
		// MySQL commits the ALTER TABLE by itself: a kill before the
		// version row leaves the column without the row.
		if _, err := w.DB.Exec("DELETE FROM runferry_schema WHERE version = 3"); err != nil {
			t.Fatal(err)
		}
		if err := w.Migrate(ctx); err != nil {
			t.Fatalf("finishing an upgrade cut short: %v", err)
		}
	}
	versions := schemaVersions(t, w)
	if !slices.Equal(versions, []int{1, 2, 3}) {
		t.Fatalf("runferry_schema holds %v, want [1 2 3]", versions)
	}
	newLines := []string{"fine", "bad \x00 nul", "bad \xff latin1", "caf\xc3", "\x00", "한국어"}
	writeLogs(t, w, expID, "new", newLines)
	r := mustOpen(t, raw, ForReading)
	if got := readLogs(t, r, "old"); !slices.Equal(got, oldLines) {
		t.Errorf("old run after the upgrade: %q, want %q", got, oldLines)
	}
	if got := readLogs(t, r, "new"); !slices.Equal(got, newLines) {
		t.Errorf("new run: %q, want %q", got, newLines)
	}
	rid, err := r.RunID(ctx, "memory:new")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := r.DB.Query(exactBytesQuery[r.Dialect.Name], rid)
	if err != nil {
		t.Fatal(err)
	}
	var viaSQL [][]byte
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		viaSQL = append(viaSQL, b)
	}
	rows.Close()
	if !slices.EqualFunc(viaSQL, newLines, func(b []byte, s string) bool { return bytes.Equal(b, []byte(s)) }) {
		t.Errorf("SQL.md's query: %q, want %q", viaSQL, newLines)
	}
	var readable []string
	rows, err = r.DB.Query(r.Dialect.q("SELECT line FROM logs WHERE run_id = ? ORDER BY seq"), rid)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var s string
		rows.Scan(&s)
		readable = append(readable, s)
	}
	rows.Close()
	want := slices.Clone(newLines)
	if r.Dialect.Name != "sqlite" {
		for i, l := range want {
			want[i] = ReadableText(l)
		}
	}
	if !slices.Equal(readable, want) {
		t.Errorf("logs.line: %q, want %q", readable, want)
	}
}

func TestLineBytesUpgradeSQLite(t *testing.T) {
	lineBytesUpgrade(t, "sqlite:"+filepath.Join(t.TempDir(), "runs.db"))
}

func TestLineBytesUpgradePostgres(t *testing.T) {
	lineBytesUpgrade(t, testenv.SharedPostgres(t).CreateDatabase(t, "linebytes"))
}

func TestLineBytesUpgradeMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv(MySQLPasswordEnv, m.Password)
	lineBytesUpgrade(t, m.CreateDatabase(t, "linebytes"))
}
