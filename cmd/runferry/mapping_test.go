package main

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/runferry/runferry/internal/testenv"
)

// exampleDB writes docs/examples/sql-mapping/schema.sql (tables and
// sample rows) to a new SQLite file and returns its path and the
// example's mapping text.
func exampleDB(t *testing.T) (db, mapping string) {
	t.Helper()
	dir := filepath.Join(testenv.RepoRoot(t), "docs", "examples", "sql-mapping")
	schemaSQL, err := os.ReadFile(filepath.Join(dir, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(filepath.Join(dir, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	db = filepath.Join(t.TempDir(), "tracking.db")
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	execSQL(t, conn, string(schemaSQL))
	return db, string(m)
}

// execSQL runs the statements of a script such as schema.sql in conn.
func execSQL(t *testing.T, conn *sql.DB, script string) {
	t.Helper()
	for _, stmt := range strings.Split(script, ";\n") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if l, _, _ = strings.Cut(l, "--"); strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) > 0 {
			if _, err := conn.Exec(strings.Join(lines, "\n")); err != nil {
				t.Fatalf("schema.sql: %v", err)
			}
		}
	}
}

// writeMapping writes a mapping file into a new folder beside a link to
// the example's files/ (its artifacts are found relative to the mapping).
func writeMapping(t *testing.T, text string) string {
	dir := t.TempDir()
	p := filepath.Join(dir, "mapping.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(testenv.RepoRoot(t), "docs", "examples", "sql-mapping", "files"), filepath.Join(dir, "files")); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMappingCheck: `runferry mapping check` passes the documented
// example, and names the entry, the column and the type found for each
// kind of mistake (exit 4); a mapping that cannot work at all is an error
// naming what is missing (exit 1), and so is a location without a
// mapping whose database lacks runferry's schema.
func TestMappingCheck(t *testing.T) {
	db, good := exampleDB(t)
	loc := func(mapping string) string { return "sqlite:" + db + "?mapping=" + writeMapping(t, mapping) }

	code, out, errOut := runCLI(t, "mapping", "check", loc(good))
	if code != 0 || !strings.Contains(out, "no problem found") {
		t.Fatalf("the example: exit %d\n%s%s", code, out, errOut)
	}
	for _, tt := range []struct{ what, from, to, want string }{
		{"a missing column", "value: value, time: logged_at", "value: val, time: logged_at",
			`metrics: columns.value: column "val" is not in the query's result (it returns metric, step, value, logged_at)`},
		{"a text column as the value", "{key: metric, step: step, value: value", "{key: metric, step: step, value: metric",
			`metrics: columns.value: column "metric" has type VARCHAR, a number is required`},
		{"a missing table", "FROM runs", "FROM runz", "runs: the query fails: "},
		{"NULL where a value is required", "SELECT metric, step, value, logged_at", "SELECT metric, step, NULL AS value, logged_at",
			`metrics: column "value" (columns.value): NULL where a value is required`},
		{"a status outside the vocabulary", "    done: FINISHED\n", "",
			`runs: column "state" (columns.status): run 1: status "done" is not in the mapping's status vocabulary`},
		{"a time that is no time", "start: started_at", "start: name",
			`runs: column "name" (columns.start): "baseline" is not a time`},
		{"a missing artifacts column", "location: uri}", "location: url}",
			`artifacts: columns.location: column "url" is not in the query's result (it returns path, uri)`},
		{"a logs table that is not there", "FROM logs WHERE", "FROM log WHERE", "logs: the query fails: "},
		{"an artifact file that is not there", "SELECT path, uri FROM artifacts", "SELECT path, 'files/9/none.bin' AS uri FROM artifacts",
			"artifacts: file model/config.json: missing: files/9/none.bin"},
		{"a missing cursor column", "cursor: updated_at", "cursor: updated",
			`runs: columns.cursor: column "updated" is not in the query's result`},
	} {
		bad := strings.Replace(good, tt.from, tt.to, 1)
		if bad == good {
			t.Fatalf("%s: %q not in the example mapping", tt.what, tt.from)
		}
		code, out, errOut := runCLI(t, "mapping", "check", loc(bad))
		if code != exitDifferences || !strings.Contains(out, tt.want) {
			t.Errorf("%s: exit %d, want %d and a line containing\n  %s\ngot:\n%s%s", tt.what, code, exitDifferences, tt.want, out, errOut)
		}
	}

	bad := strings.Replace(good, "WHERE run_id = :run ORDER BY", "ORDER BY", 1)
	code, _, errOut = runCLI(t, "mapping", "check", loc(bad))
	if code != exitFatal || !strings.Contains(errOut, "metrics: query must use :run") {
		t.Errorf("a metrics query reading every run at once: exit %d, stderr %s", code, errOut)
	}
	bad = strings.Replace(good, "status: state", "stauts: state", 1)
	code, _, errOut = runCLI(t, "mapping", "check", loc(bad))
	if code != exitFatal || !strings.Contains(errOut, "columns.stauts: unknown field") {
		t.Errorf("a misspelt field: exit %d, stderr %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "mapping", "check", "sqlite:"+db)
	if code != exitFatal || !strings.Contains(errOut, "?mapping=FILE") {
		t.Errorf("no mapping: exit %d, stderr %s", code, errOut)
	}
}

// TestCopyThroughMapping: the example database, read through its mapping,
// copies into a Parquet archive (metrics, console logs and the artifact
// file) that check finds equal. Its runs declare a cursor column: a sync
// in which no cursor moved copies nothing, not even the RUNNING run; then
// the running run logs more points and a note (a rich value) and moves its
// cursor, and only it is copied again.
func TestCopyThroughMapping(t *testing.T) {
	db, m := exampleDB(t)
	src := "sqlite:" + db + "?mapping=" + writeMapping(t, m)
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, archive, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 3 runs (7 points") {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "check", src, archive)
	if code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "sync", "--accept-gaps", src, archive, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 0 runs") || !strings.Contains(out, "3 unchanged") {
		t.Fatalf("sync with no cursor moved: exit %d\n%s%s", code, out, errOut)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO metrics VALUES (3, 'loss', 0, 4.0, 1709452800000)",
		"INSERT INTO metrics VALUES (3, 'loss', 1, 3.0, 1709452801000)",
		`INSERT INTO media VALUES (3, 'note', 1, NULL, '"warming up"', 1709452801000)`,
		"UPDATE runs SET updated_at = '2024-03-03 08:00:02' WHERE id = 3",
	} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	code, out, errOut = runCLI(t, "sync", "--accept-gaps", src, archive, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 1 run (2 points") || !strings.Contains(out, "2 unchanged") {
		t.Fatalf("sync after run 3 moved its cursor: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "check", src, archive)
	if code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check after the sync: exit %d\n%s%s", code, out, errOut)
	}
}

// TestMappingGenerate: `runferry mapping generate` writes a mapping for
// the example database that `mapping check` passes; a location that is no
// SQL database is a usage error.
func TestMappingGenerate(t *testing.T) {
	db, _ := exampleDB(t)
	out := filepath.Join(filepath.Dir(writeMapping(t, "")), "generated.yaml") // beside the example's files/
	code, stdout, errOut := runCLI(t, "mapping", "generate", "sqlite:"+db, "-o", out)
	if code != 0 || !strings.Contains(stdout, "wrote "+out) {
		t.Fatalf("generate: exit %d\n%s%s", code, stdout, errOut)
	}
	code, stdout, errOut = runCLI(t, "mapping", "check", "sqlite:"+db+"?mapping="+out)
	if code != 0 || !strings.Contains(stdout, "no problem found") {
		t.Fatalf("check of the generated mapping: exit %d\n%s%s", code, stdout, errOut)
	}
	code, stdout, _ = runCLI(t, "mapping", "generate", "sqlite:"+db)
	if code != 0 || !strings.Contains(stdout, "cursor: updated_at") {
		t.Fatalf("generate to stdout: exit %d\n%s", code, stdout)
	}
	if code, _, errOut := runCLI(t, "mapping", "generate", "parquet:"+t.TempDir()); code != exitUsage || !strings.Contains(errOut, "mapping generate reads postgres://, mysql:// and sqlite:") {
		t.Errorf("a parquet location: exit %d, stderr %s", code, errOut)
	}
}

// TestSyncMappedIntoSQLAppends: a sync from the example database through
// its mapping into runferry's own schema in SQLite, then the running run
// logs two more points and moves its cursor: the next sync appends just
// those two points to the run the database holds (the report says so),
// the other runs are unchanged, check is clean and no point is doubled.
func TestSyncMappedIntoSQLAppends(t *testing.T) {
	db, m := exampleDB(t)
	src := "sqlite:" + db + "?mapping=" + writeMapping(t, m)
	dir := t.TempDir()
	dstFile := filepath.Join(dir, "copy.db")
	dst := "sqlite:" + dstFile
	ledger := filepath.Join(dir, "ledger.db")
	if code, out, errOut := runCLI(t, "sync", "--accept-gaps", src, dst, "--state", ledger); code != 0 {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO metrics VALUES (3, 'loss', 0, 4.0, 1709452800000)",
		"INSERT INTO metrics VALUES (3, 'loss', 1, 3.0, 1709452801000)",
		`INSERT INTO media VALUES (3, 'note', 1, NULL, '"warming up"', 1709452801000)`,
		"UPDATE runs SET updated_at = '2024-03-03 08:00:02' WHERE id = 3",
	} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	conn.Close()
	report := filepath.Join(dir, "report.json")
	if code, out, errOut := runCLI(t, "sync", "--accept-gaps", src, dst, "--state", ledger, "--report", report); code != 0 {
		t.Fatalf("second sync: exit %d\n%s%s", code, out, errOut)
	}
	var rep struct {
		Runs []struct {
			Origin   string `json:"origin"`
			Outcome  string `json:"outcome"`
			Appended bool   `json:"appended"`
			Points   int64  `json:"points"`
		}
		Totals struct{ Appended int }
	}
	b, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v\n%s", err, b)
	}
	appended := 0
	for _, r := range rep.Runs {
		if r.Appended {
			appended++
			if !strings.HasSuffix(r.Origin, "/run/3") || r.Points != 2 {
				t.Errorf("appended %s with %d points, want run 3 with 2", r.Origin, r.Points)
			}
		}
	}
	if appended != 1 || rep.Totals.Appended != 1 {
		t.Fatalf("the second sync appended %d runs (totals %d), want 1:\n%s", appended, rep.Totals.Appended, b)
	}
	if code, out, errOut := runCLI(t, "check", src, dst); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	out, err := sql.Open("sqlite", dstFile)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var points, held int
	if err := out.QueryRow("SELECT (SELECT count(*) FROM metrics), (SELECT points FROM runs WHERE origin LIKE '%/run/3')").Scan(&points, &held); err != nil || points != 9 || held != 2 {
		t.Errorf("the database holds %d points, run 3 counts %d (%v); want 9 and 2", points, held, err)
	}
}

// TestRichValuesThroughMapping: the example's media table (images among
// the run's files, a histogram and a note as JSON) read through its
// mapping from PostgreSQL and from MariaDB copies into a Parquet archive
// with check clean; a rich value changed in the database afterwards is a
// difference check names, so the values are compared, not passed over.
func TestRichValuesThroughMapping(t *testing.T) {
	_, m := exampleDB(t)
	mapping := writeMapping(t, m)
	script, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "docs", "examples", "sql-mapping", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	pg := testenv.SharedPostgres(t).CreateDatabase(t, "cli_mapped_rich")
	maria := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", maria.Password)
	my := maria.CreateDatabase(t, "cli_mapped_rich")
	for _, db := range []struct{ name, loc, driver, dsn string }{
		{"PostgreSQL", pg, "pgx", pg},
		{"MariaDB", my, "mysql", maria.DSN(t, my)},
	} {
		conn, err := sql.Open(db.driver, db.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		execSQL(t, conn, string(script))
		src := db.loc + "&mapping=" + mapping
		if !strings.Contains(db.loc, "?") {
			src = db.loc + "?mapping=" + mapping
		}
		archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
		code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, archive, "--no-state")
		if code != 0 || !strings.Contains(out, "copied 3 runs (7 points") {
			t.Fatalf("%s: copy: exit %d\n%s%s", db.name, code, out, errOut)
		}
		if code, out, errOut := runCLI(t, "check", src, archive); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
			t.Fatalf("%s: check: exit %d\n%s%s", db.name, code, out, errOut)
		}
		if _, err := conn.Exec(`UPDATE media SET data = '"lr warm-up skipped"' WHERE name = 'note'`); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := runCLI(t, "check", src, archive); code != exitDifferences || !strings.Contains(out, "rich values") {
			t.Errorf("%s: check after a note changed: exit %d, want %d naming the rich values\n%s", db.name, code, exitDifferences, out)
		}
	}
}

// TestMappedIntoMLflow: the example database read through its mapping
// copies into a real MLflow server with check clean; there its JSON config
// is flattened into params (model.depth = 18) and its two image-file rich
// values are in MLflow's image layout (the run tagged
// mlflow.loggedImages), as for any other source.
func TestMappedIntoMLflow(t *testing.T) {
	db, m := exampleDB(t)
	src := "sqlite:" + db + "?mapping=" + writeMapping(t, m)
	srv := testenv.SharedMLflow(t)
	prefix := "mapped-" + filepath.Base(t.TempDir()) + "-"
	dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, dst, "--no-state"); code != 0 || !strings.Contains(out, "copied 3 runs (7 points") {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", src, dst); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	var es struct {
		Experiments []struct {
			ID   string `json:"experiment_id"`
			Name string `json:"name"`
		} `json:"experiments"`
	}
	mlflowPost(t, srv.URL+"/api/2.0/mlflow/experiments/search", map[string]any{"max_results": 1000, "filter": "name = '" + prefix + "hand-rolled runs'"}, &es)
	if len(es.Experiments) != 1 {
		t.Fatalf("experiments named %shand-rolled runs: %+v", prefix, es.Experiments)
	}
	var rs struct {
		Runs []struct {
			Info struct {
				RunName string `json:"run_name"`
			} `json:"info"`
			Data struct {
				Params []struct{ Key, Value string } `json:"params"`
				Tags   []struct{ Key, Value string } `json:"tags"`
			} `json:"data"`
		} `json:"runs"`
	}
	mlflowPost(t, srv.URL+"/api/2.0/mlflow/runs/search", map[string]any{"experiment_ids": []string{es.Experiments[0].ID}, "filter": "attributes.run_name = 'baseline'"}, &rs)
	if len(rs.Runs) != 1 {
		t.Fatalf("runs named baseline: %d", len(rs.Runs))
	}
	got := map[string]string{}
	for _, p := range rs.Runs[0].Data.Params {
		got["param "+p.Key] = p.Value
	}
	for _, tg := range rs.Runs[0].Data.Tags {
		got["tag "+tg.Key] = tg.Value
	}
	for k, v := range map[string]string{"param model.depth": "18", "param lr": "0.01", "param batch_size": "32", "tag mlflow.loggedImages": "True"} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (the run holds %v)", k, got[k], v, got)
		}
	}
}
