package sqldb_test

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/sourcetest"
	"github.com/runferry/runferry/sources/sqldb"
)

// example returns the path of a file of docs/examples/sql-mapping.
func example(t testing.TB, name string) string {
	return filepath.Join(testenv.RepoRoot(t), "docs", "examples", "sql-mapping", name)
}

// loadExample runs the example's schema.sql (tables and sample rows) in db.
func loadExample(t testing.TB, db *sql.DB) {
	t.Helper()
	b, err := os.ReadFile(example(t, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range strings.Split(string(b), ";\n") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if l, _, _ = strings.Cut(l, "--"); strings.TrimSpace(l) != "" {
				lines = append(lines, l)
			}
		}
		if len(lines) == 0 {
			continue
		}
		if _, err := db.Exec(strings.Join(lines, "\n")); err != nil {
			t.Fatalf("schema.sql: %v\n%s", err, stmt)
		}
	}
}

// exampleWant is what the example's sample rows hold, read through its
// mapping from the database named instance.
func exampleWant(t testing.TB, instance string) *dataset.Dataset {
	read := func(name string) []byte {
		b, err := os.ReadFile(example(t, filepath.Join("files", "1", name)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	exp := schema.Ref{System: "mytracker", ID: instance + "/exp/"}
	run := func(id string) schema.Ref { return schema.Ref{System: "mytracker", ID: instance + "/run/" + id} }
	at := func(s string) time.Time { t, _ := time.Parse(time.DateTime, s); return t }
	m := func(key string, step int64, v float64, ms int64) schema.Metric {
		return schema.Metric{Key: key, Step: step, Value: v, Time: ms}
	}
	return &dataset.Dataset{
		Experiments: []schema.Experiment{{Origin: exp, Name: "hand-rolled runs"}},
		Runs: []*dataset.RunData{
			{Run: schema.Run{Origin: run("1"), Experiment: exp, Name: "baseline", Status: schema.StatusFinished,
				Start: at("2024-03-01 12:00:00"), End: at("2024-03-01 13:30:00"),
				Params: []schema.Param{{Key: "batch_size", Value: "32"}, {Key: "lr", Value: "0.01"}},
				Config: json.RawMessage(`{"lr": 0.01, "model": {"depth": 18}}`)},
				Metrics: []schema.Metric{m("loss", 0, 2.5, 1709294400000), m("loss", 1, 1.25, 1709294401000), m("loss", 2, 0.625, 1709294402000),
					m("val/acc", 0, 0.5, 1709294400500), m("val/acc", 2, 0.75, 1709294402500)},
				Logs: []schema.LogLine{{Time: 1709294400000, Stream: schema.Stdout, Line: "epoch 0: loss 2.5"},
					{Time: 1709294401000, Stream: schema.Stderr, Line: "warning: lr schedule ends early"},
					{Time: 1709294402000, Stream: schema.Stdout, Line: "done"}},
				RichValues: []schema.RichValue{
					{Key: "samples", Step: 0, Time: 1709294400000, Type: "image-file", JSON: `{"_type":"image-file","path":"media/samples_0.png"}`, Files: []string{"media/samples_0.png"}},
					{Key: "weights", Step: 0, Time: 1709294400000, Type: "histogram", JSON: `{"_type":"histogram","bins":[0,0.5,1],"values":[3,5]}`},
					{Key: "note", Step: 1, Time: 1709294401000, Type: "string", JSON: `"lr warm-up done"`},
					{Key: "samples", Step: 2, Time: 1709294402000, Type: "image-file", JSON: `{"_type":"image-file","path":"media/samples_2.png"}`, Files: []string{"media/samples_2.png"}}},
				Files: []dataset.File{{Path: "media/samples_0.png", Content: read("samples_0.png")}, {Path: "media/samples_2.png", Content: read("samples_2.png")},
					{Path: "model/config.json", Content: read("config.json")}}},
			{Run: schema.Run{Origin: run("2"), Experiment: exp, Name: "bigger lr", Status: schema.StatusFailed,
				Start: at("2024-03-02 09:00:00"), End: at("2024-03-02 09:05:00"),
				Params: []schema.Param{{Key: "lr", Value: "0.1"}}},
				Metrics: []schema.Metric{m("loss", 0, 3.5, 1709370000000), m("loss", 1, 9, 1709370001000)}},
			{Run: schema.Run{Origin: run("3"), Experiment: exp, Name: "still training", Status: schema.StatusRunning,
				Start: at("2024-03-03 08:00:00")}},
		},
	}
}

// exampleSQLite writes the example database to a new SQLite file.
func exampleSQLite(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "tracking.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	loadExample(t, db)
	return path
}

// withMapping adds ?mapping=path to a location.
func withMapping(loc, path string) string {
	if strings.Contains(loc, "?") {
		return loc + "&mapping=" + path
	}
	return loc + "?mapping=" + path
}

func mappedConformance(t *testing.T, loc, instance string, other func(t *testing.T) sources.Source) {
	open := func(t *testing.T, raw string) sources.Source {
		src, err := sqldb.Open(t.Context(), parse(t, raw))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	opt := sourcetest.Opt{
		Open:      func(t *testing.T) sources.Source { return open(t, withMapping(loc, example(t, "mapping.yaml"))) },
		Want:      exampleWant(t, instance),
		OpenOther: other,
	}
	if other == nil {
		opt.Skip = map[string]string{"OriginsNameTheInstance": "covered on SQLite, where a second database is a second file"}
	}
	sourcetest.Run(t, opt)
}

// TestExampleMappingSQLite: the documented example (docs/examples/
// sql-mapping) reads its sample rows exactly, and passes the source
// conformance suite, with origins naming the database file.
func TestExampleMappingSQLite(t *testing.T) {
	path, other := exampleSQLite(t), exampleSQLite(t)
	mappedConformance(t, "sqlite:"+path, path, func(t *testing.T) sources.Source {
		src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+other+"?mapping="+example(t, "mapping.yaml")))
		if err != nil {
			t.Fatal(err)
		}
		return src
	})
}

// TestExampleMappingPostgres: the same example in PostgreSQL, where
// timestamps come back as times and the :run parameter is bound as $1.
func TestExampleMappingPostgres(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t, "mapping_example")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	db.Close()
	base, _, _ := strings.Cut(dsn, "?")
	mappedConformance(t, dsn, strings.TrimPrefix(base, "postgres://postgres@"), nil)
}

// TestExampleMappingMariaDB: the same example in MariaDB, whose text
// protocol returns numbers and timestamps as text.
func TestExampleMappingMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	loc := m.CreateDatabase(t, "mapping_example")
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", m.DSN(t, loc))
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	db.Close()
	mappedConformance(t, loc, u.Host+u.Path, nil)
}

// TestMappingCheckPostgres: on PostgreSQL, whose column types come from
// the server, the example checks clean, and each kind of bad input (a
// missing table, a missing column, a column of the wrong type, a NULL
// where a value is required, a value that does not convert) is one line
// naming the entry, the column and the type or value found.
func TestMappingCheckPostgres(t *testing.T) {
	dsn := testenv.SharedPostgres(t).CreateDatabase(t, "mapping_check")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	db.Close()
	checkMappingCases(t, dsn)
}

// TestMappingCheckMariaDB: the same on MariaDB, whose driver names the
// column types of a result itself.
func TestMappingCheckMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	loc := m.CreateDatabase(t, "mapping_check")
	db, err := sql.Open("mysql", m.DSN(t, loc))
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	db.Close()
	checkMappingCases(t, loc)
}

// checkMappingCases runs mapping check on the example database at loc
// with the example mapping and with one mistake at a time.
func checkMappingCases(t *testing.T, loc string) {
	good, err := os.ReadFile(example(t, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ from, to, want string }{
		{"", "", ""},
		{"value: value, time", "value: metric, time", `metrics: columns.value: column "metric" has type VARCHAR, a number is required`},
		{"step: step", "step: logged_at", ""},
		{"step: step", "step: value", `metrics: column "value" (columns.step): 2.5 is not an integer`},
		{"FROM metrics", "FROM metricz", "metrics: the query fails: "},
		{"value: value, time", "value: val, time", `metrics: columns.value: column "val" is not in the query's result (it returns metric, step, value, logged_at)`},
		{"SELECT metric, step, value", "SELECT metric, step, NULLIF(value, value) AS value", `metrics: column "value" (columns.value): NULL where a value is required`},
		{"start: started_at", "start: name", `runs: column "name" (columns.start): "baseline" is not a time`},
		{"{key: name, step: step, file: path", "{key: name, step: name, file: path", `rich_values: columns.step: column "name" has type VARCHAR, a number is required`},
	} {
		path := filepath.Join(t.TempDir(), "mapping.yaml")
		bad := strings.Replace(string(good), tt.from, tt.to, 1)
		if tt.from != "" && bad == string(good) {
			t.Fatalf("%q is not in the example mapping", tt.from)
		}
		if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(example(t, "files"), filepath.Join(filepath.Dir(path), "files")); err != nil {
			t.Fatal(err)
		}
		src, err := sqldb.Open(t.Context(), parse(t, withMapping(loc, path)))
		if err != nil {
			t.Fatal(err)
		}
		problems := src.(*sqldb.MappedSource).CheckMapping(t.Context())
		src.Close()
		if got := strings.Join(problems, "\n"); tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%q -> %q: problems:\n%s\nwant: %q", tt.from, tt.to, got, tt.want)
		}
	}
}

// TestMappedLogsAndArtifactsBadInput: a log line whose stream is neither
// stdout nor stderr fails the run's logs naming the entry and column; an
// artifact whose file is not there comes with a Problem naming its
// location; a path leaving the run is an error naming the entry.
func TestMappedLogsAndArtifactsBadInput(t *testing.T) {
	path := exampleSQLite(t)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO logs VALUES (2, 1, 'weird', 'hello', 1709370000000)",
		"INSERT INTO artifacts VALUES (2, 'gone.bin', 'files/2/gone.bin')",
		"INSERT INTO artifacts VALUES (3, '../escape.txt', 'files/1/config.json')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+path+"?mapping="+example(t, "mapping.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ms := src.(*sqldb.MappedSource)
	run := func(id string) schema.Ref { return schema.Ref{System: "mytracker", ID: path + "/run/" + id} }
	for _, err := range ms.Logs(t.Context(), run("2")) {
		if err == nil || !strings.Contains(err.Error(), `logs: column "stream" (columns.stream): run 2: stream "weird" is not stdout or stderr`) {
			t.Errorf("logs of run 2: %v", err)
		}
	}
	var files []schema.Artifact
	for a, err := range ms.Artifacts(t.Context(), run("2")) {
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, a)
	}
	if len(files) != 1 || files[0].Open != nil || !strings.Contains(files[0].Problem, "missing: files/2/gone.bin") {
		t.Errorf("artifacts of run 2: %+v", files)
	}
	for _, err := range ms.Artifacts(t.Context(), run("3")) {
		if err == nil || !strings.Contains(err.Error(), `artifacts: column "path" (columns.path): run 3: "../escape.txt" is not a relative path inside the run`) {
			t.Errorf("artifacts of run 3: %v", err)
		}
	}
}

// generatedWant is exampleWant as the generated mapping reads it: system
// sql, and every run in one experiment named after the database.
func generatedWant(t testing.TB, instance, expName string) *dataset.Dataset {
	d := exampleWant(t, instance)
	d.Experiments[0].Origin.System, d.Experiments[0].Name = "sql", expName
	for _, rd := range d.Runs {
		rd.Run.Origin.System, rd.Run.Experiment.System = "sql", "sql"
	}
	return d
}

// TestGeneratedMappingSQLite: `mapping generate` on the example database
// writes exactly docs/examples/sql-mapping/generated.yaml (the second
// documented example), which checks clean and reads the sample rows
// exactly, passing the source conformance suite.
func TestGeneratedMappingSQLite(t *testing.T) {
	path := exampleSQLite(t)
	got, notes, err := sqldb.GenerateMapping(t.Context(), parse(t, "sqlite:"+path))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(example(t, "generated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("generated mapping differs from docs/examples/sql-mapping/generated.yaml:\n%s", got)
	}
	if len(notes) != 0 {
		t.Errorf("notes on the example: %q", notes)
	}
	loc := "sqlite:" + path + "?mapping=" + example(t, "generated.yaml")
	open := func(t *testing.T) sources.Source {
		src, err := sqldb.Open(t.Context(), parse(t, loc))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := open(t)
	if problems := src.(*sqldb.MappedSource).CheckMapping(t.Context()); len(problems) > 0 {
		t.Errorf("mapping check: %q", problems)
	}
	src.Close()
	sourcetest.Run(t, sourcetest.Opt{Open: open, Want: generatedWant(t, path, "tracking"),
		Skip: map[string]string{"OriginsNameTheInstance": "covered by TestExampleMappingSQLite"}})
}

// TestGeneratedMappingPostgres: on PostgreSQL, whose catalogue is
// information_schema, the generated mapping checks clean and reads the
// sample rows exactly; a database without a runs table is refused,
// naming the tables it has.
func TestGeneratedMappingPostgres(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t, "mapping_generate")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	db.Close()
	m, _, err := sqldb.GenerateMapping(t.Context(), parse(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "generated.yaml")
	if err := os.WriteFile(file, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(example(t, "files"), filepath.Join(filepath.Dir(file), "files")); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T) sources.Source {
		src, err := sqldb.Open(t.Context(), parse(t, withMapping(dsn, file)))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := open(t)
	if problems := src.(*sqldb.MappedSource).CheckMapping(t.Context()); len(problems) > 0 {
		t.Errorf("mapping check: %q\n%s", problems, m)
	}
	src.Close()
	base, _, _ := strings.Cut(dsn, "?")
	instance := strings.TrimPrefix(base, "postgres://postgres@")
	sourcetest.Run(t, sourcetest.Opt{Open: open, Want: generatedWant(t, instance, filepath.Base(instance)),
		Skip: map[string]string{"OriginsNameTheInstance": "covered by TestExampleMappingSQLite"}})

	empty := pg.CreateDatabase(t, "mapping_generate_none")
	db, err = sql.Open("pgx", empty)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE jobs (id INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, _, err := sqldb.GenerateMapping(t.Context(), parse(t, empty)); err == nil || !strings.Contains(err.Error(), "no runs table found among jobs") {
		t.Errorf("a database without runs: %v", err)
	}
}

// TestMappedMetricsBadInput: the metrics of a run read through a mapping
// whose query yields a NULL value, text where the value must be a number,
// steps going back, or lacks a mapped column, fail with an error naming
// the entry, the column and the run; the source's error is permanent for
// that run only.
func TestMappedMetricsBadInput(t *testing.T) {
	path := exampleSQLite(t)
	good, err := os.ReadFile(example(t, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const q = "SELECT metric, step, value, logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step"
	for _, tt := range []struct{ query, want string }{
		{"SELECT metric, step, NULL AS value, logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step",
			`metrics: column "value" (columns.value): NULL where a value is required (run 1, key "loss")`},
		{"SELECT metric, step, metric AS value, logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step",
			`metrics: run 1: row 1 of the metrics query: sql: Scan error on column index 2, name "value"`},
		{"SELECT metric, step, value, logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step DESC",
			`metrics: run 1, key "loss": step 1 after step 2: the query must ORDER BY the key and step columns`},
		{"SELECT metric, step, value FROM metrics WHERE run_id = :run ORDER BY metric, step",
			`metrics: columns.time: the query has no column "logged_at" (it returns metric, step, value)`},
		{"SELECT metric, step, value, 'noon' AS logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step",
			`metrics: column "logged_at" (columns.time): "noon" is not a time`},
	} {
		file := filepath.Join(t.TempDir(), "mapping.yaml")
		if err := os.WriteFile(file, []byte(strings.Replace(string(good), q, tt.query, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+path+"?mapping="+file))
		if err != nil {
			t.Fatal(err)
		}
		var got error
		for _, err := range src.Metrics(t.Context(), schema.Ref{System: "mytracker", ID: path + "/run/1"}) {
			if err != nil {
				got = err
			}
		}
		src.Close()
		if got == nil || !strings.Contains(got.Error(), tt.want) {
			t.Errorf("%s:\nerr %v\nwant %q", tt.query, got, tt.want)
		}
		if got != nil && fault.KindOf(got) != fault.KindPermanent {
			t.Errorf("%s: error of kind %v, want permanent (this run only)", tt.query, fault.KindOf(got))
		}
	}
}

// TestGeneratedMappingMariaDB: on MariaDB (information_schema's
// column_type, values as text), the generated mapping checks clean and
// reads the sample rows exactly.
func TestGeneratedMappingMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	loc := m.CreateDatabase(t, "mapping_generate")
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", m.DSN(t, loc))
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	db.Close()
	text, _, err := sqldb.GenerateMapping(t.Context(), parse(t, loc))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "generated.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(example(t, "files"), filepath.Join(filepath.Dir(file), "files")); err != nil {
		t.Fatal(err)
	}
	open := func(t *testing.T) sources.Source {
		src, err := sqldb.Open(t.Context(), parse(t, withMapping(loc, file)))
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	src := open(t)
	if problems := src.(*sqldb.MappedSource).CheckMapping(t.Context()); len(problems) > 0 {
		t.Errorf("mapping check: %q\n%s", problems, text)
	}
	src.Close()
	sourcetest.Run(t, sourcetest.Opt{Open: open, Want: generatedWant(t, u.Host+u.Path, strings.TrimPrefix(u.Path, "/")),
		Skip: map[string]string{"OriginsNameTheInstance": "covered by TestExampleMappingSQLite"}})
}

// TestMappedFingerprint: with a cursor column, a run's fingerprint is
// taken from the listing alone and moves when its cursor does, or when
// the mapping is edited (a run read through another mapping may read
// otherwise); header and full run get the same one.
func TestMappedFingerprint(t *testing.T) {
	path := exampleSQLite(t)
	good, err := os.ReadFile(example(t, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fp := func(mapping string) (header, full string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "mapping.yaml")
		if err := os.WriteFile(file, []byte(mapping), 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+path+"?mapping="+file))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		ms := src.(*sqldb.MappedSource)
		exp := schema.Ref{System: "mytracker", ID: path + "/exp/"}
		for r, err := range ms.RunHeaders(t.Context(), exp) {
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(r.Origin.ID, "/run/3") {
				continue
			}
			if len(r.Params) != 0 || r.Name != "still training" {
				t.Errorf("header of run 3: %+v", r)
			}
			header, _ = ms.Fingerprint(t.Context(), r)
			whole, err := ms.Run(t.Context(), r.Origin)
			if err != nil {
				t.Fatal(err)
			}
			full, _ = ms.Fingerprint(t.Context(), whole)
		}
		return header, full
	}
	h1, f1 := fp(string(good))
	h2, _ := fp(string(good))
	if h1 == "" || h1 != f1 || h1 != h2 {
		t.Fatalf("fingerprints of the unchanged RUNNING run: header %q, full %q, again %q", h1, f1, h2)
	}
	if h3, _ := fp(string(good) + "# edited\n"); h3 == h1 {
		t.Errorf("editing the mapping left the fingerprint %q", h3)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE runs SET updated_at = '2024-03-03 09:00:00' WHERE id = 3"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if h4, _ := fp(string(good)); h4 == h1 {
		t.Errorf("moving the cursor left the fingerprint %q", h4)
	}
}

// TestMappedArtifactsOverHTTP: artifacts whose location is an http URL
// are fetched when opened (here from a file server on 127.0.0.1); one the
// server does not have fails to open, naming the file and the status, and
// the URL shown leaves out its query (a signature).
func TestMappedArtifactsOverHTTP(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir(example(t, "files"))))
	defer srv.Close()
	path := exampleSQLite(t)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"INSERT INTO artifacts VALUES (2, 'remote/config.json', '" + srv.URL + "/1/config.json')",
		"INSERT INTO artifacts VALUES (2, 'remote/gone.bin', '" + srv.URL + "/2/gone.bin?sig=SECRET')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+path+"?mapping="+example(t, "mapping.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want, err := os.ReadFile(example(t, filepath.Join("files", "1", "config.json")))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for a, err := range src.(sources.ArtifactLister).Artifacts(t.Context(), schema.Ref{System: "mytracker", ID: path + "/run/2"}) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		rc, err := a.Open(t.Context())
		switch a.Path {
		case "remote/config.json":
			if err != nil {
				t.Fatalf("%s: %v", a.Path, err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if string(got) != string(want) {
				t.Errorf("%s: got %q", a.Path, got)
			}
		case "remote/gone.bin":
			if err == nil || !strings.Contains(err.Error(), "file remote/gone.bin: GET "+srv.URL+"/2/gone.bin: 404") || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("%s: %v", a.Path, err)
			}
		}
	}
	if n != 2 {
		t.Errorf("%d artifacts, want 2", n)
	}
}

// TestMappedRunTwice: a runs query that yields a run twice (a join that
// multiplies rows) is refused, naming the entry, the column and the run.
func TestMappedRunTwice(t *testing.T) {
	path := exampleSQLite(t)
	good, err := os.ReadFile(example(t, "mapping.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), "updated_at FROM runs", "updated_at FROM runs JOIN params ON params.run_id = runs.id", 1)
	bad = strings.Replace(bad, "SELECT id, name,", "SELECT runs.id, runs.name,", 1)
	file := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+path+"?mapping="+file))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got error
	for _, err := range src.Runs(t.Context(), schema.Ref{System: "mytracker", ID: path + "/exp/"}) {
		if err != nil {
			got = err
		}
	}
	if got == nil || !strings.Contains(got.Error(), `runs: column "id" (columns.id): run 1 comes twice`) {
		t.Errorf("runs yielded twice: %v\n%s", got, bad)
	}
}

// TestMappedRichValuesForms: a rich_values entry reads text, JSON
// documents (compacted, typed by "_type" or their kind, files from the
// media objects in them or from a files column) and files (typed by their
// extension or a type column), numbering values without a step per key;
// each kind of bad row fails the run's rich values naming the entry, the
// column and the run, and mapping check names it too.
func TestMappedRichValuesForms(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rich.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE TABLE runs (id INTEGER, name TEXT)",
		"CREATE TABLE rich (run_id INTEGER, seq INTEGER, k TEXT, txt TEXT, doc TEXT, file TEXT, typ TEXT, files TEXT, at REAL)",
		"INSERT INTO runs VALUES (1, 'good'), (2, 'both'), (3, 'none'), (4, 'notjson'), (5, 'escape'), (6, 'badfiles')",
		`INSERT INTO rich VALUES
			(1, 1, 'caption', 'a cat', NULL, NULL, NULL, NULL, 1700000000.5),
			(1, 2, 'caption', 'a dog', NULL, NULL, NULL, NULL, NULL),
			(1, 3, 'table', NULL, '{ "_type": "table-file", "path": "media/t.table.json", "nrows": 2 }', NULL, NULL, NULL, NULL),
			(1, 4, 'boxes', NULL, '{"_type": "image-file", "path": "a.png", "masks": {"m": {"_type": "mask", "path": "m.png"}}}', NULL, NULL, NULL, NULL),
			(1, 5, 'list', NULL, '[1, 2.50, "x"]', NULL, NULL, NULL, NULL),
			(1, 6, 'plot', NULL, NULL, 'plots\loss.svg', NULL, NULL, NULL),
			(1, 7, 'plot3d', NULL, NULL, 'obj/mesh.glb', 'object3D-file', NULL, NULL),
			(1, 8, 'custom', NULL, '{"a": 1}', NULL, 'my-type', '["x.bin", "x.bin", "y.bin"]', NULL),
			(2, 1, 'k', 'text', '"json"', NULL, NULL, NULL, NULL),
			(3, 1, 'k', NULL, NULL, NULL, NULL, NULL, NULL),
			(4, 1, 'k', NULL, '{"unclosed": ', NULL, NULL, NULL, NULL),
			(5, 1, 'k', NULL, NULL, '../../etc/passwd', NULL, NULL, NULL),
			(6, 1, 'k', NULL, '1', NULL, NULL, '"x.bin"', NULL)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mapping := filepath.Join(t.TempDir(), "mapping.yaml")
	if err := os.WriteFile(mapping, []byte(`experiment: e
runs: {query: "SELECT id, name FROM runs ORDER BY id", columns: {id: id, name: name}}
metrics: {query: "SELECT 'loss' AS k, 1.0 AS v WHERE :run = 0", columns: {key: k, value: v}}
rich_values:
  query: SELECT k, txt, doc, file, typ, files, at FROM rich WHERE run_id = :run ORDER BY seq
  columns: {key: k, text: txt, value: doc, file: file, type: typ, files: files, time: at}
  time: epoch_s
`), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := sqldb.Open(t.Context(), parse(t, "sqlite:"+path+"?mapping="+mapping))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ms := src.(*sqldb.MappedSource)
	read := func(id string) ([]schema.RichValue, error) {
		var out []schema.RichValue
		for page, err := range ms.RichValues(t.Context(), schema.Ref{System: "sql", ID: path + "/run/" + id}) {
			if err != nil {
				return out, err
			}
			out = append(out, page...)
		}
		return out, nil
	}
	got, err := read("1")
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.RichValue{
		{Key: "caption", Step: 0, Time: 1700000000500, Type: "string", JSON: `"a cat"`},
		{Key: "caption", Step: 1, Type: "string", JSON: `"a dog"`},
		{Key: "table", Type: "table-file", JSON: `{"_type":"table-file","nrows":2,"path":"media/t.table.json"}`, Files: []string{"media/t.table.json"}},
		{Key: "boxes", Type: "image-file", JSON: `{"_type":"image-file","masks":{"m":{"_type":"mask","path":"m.png"}},"path":"a.png"}`, Files: []string{"a.png", "m.png"}},
		{Key: "list", Type: "list", JSON: `[1,2.50,"x"]`},
		{Key: "plot", Type: "file", JSON: `{"_type":"file","path":"plots/loss.svg"}`, Files: []string{"plots/loss.svg"}},
		{Key: "plot3d", Type: "object3D-file", JSON: `{"_type":"object3D-file","path":"obj/mesh.glb"}`, Files: []string{"obj/mesh.glb"}},
		{Key: "custom", Type: "my-type", JSON: `{"a":1}`, Files: []string{"x.bin", "y.bin"}},
	}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("run 1:\ngot  %+v\nwant %+v", got, want)
	}
	for id, msg := range map[string]string{
		"2": `rich_values: run 2, key "k": exactly one of "doc" (columns.value), "txt" (columns.text), "file" (columns.file) must hold the value; value and text are not NULL`,
		"3": `rich_values: run 3, key "k": exactly one of "doc" (columns.value), "txt" (columns.text), "file" (columns.file) must hold the value; all are NULL`,
		"4": `rich_values: column "doc" (columns.value): run 4, key "k": not JSON: unexpected EOF`,
		"5": `rich_values: column "file" (columns.file): run 5, key "k": "../../etc/passwd" is not a relative path inside the run`,
		"6": `rich_values: column "files" (columns.files): run 6, key "k": not a JSON array of paths`,
	} {
		_, err := read(id)
		if err == nil || !strings.Contains(err.Error(), msg) || fault.KindOf(err) != fault.KindPermanent {
			t.Errorf("run %s: %v (kind %v)\nwant a permanent error holding %q", id, err, fault.KindOf(err), msg)
		}
	}
	if problems := ms.CheckMapping(t.Context()); len(problems) > 0 {
		t.Errorf("mapping check of the good run's rows: %q", problems)
	}
}

// TestMappedJSONBPostgres: on PostgreSQL, a config column of type JSONB
// and a rich value in a JSONB column check clean and read as the same
// JSON objects as text columns do (the config then travels as the run's config, which
// MLflow shows flattened into params).
func TestMappedJSONBPostgres(t *testing.T) {
	dsn := testenv.SharedPostgres(t).CreateDatabase(t, "mapping_jsonb")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	loadExample(t, db)
	for _, q := range []string{
		"ALTER TABLE runs ALTER COLUMN config TYPE JSONB USING config::jsonb",
		"ALTER TABLE media ALTER COLUMN data TYPE JSONB USING data::jsonb",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	base, _, _ := strings.Cut(dsn, "?")
	want := exampleWant(t, strings.TrimPrefix(base, "postgres://postgres@"))
	want.Runs[0].Run.Config = json.RawMessage(`{"lr": 0.01, "model": {"depth": 18}}`) // JSONB's own spacing
	src, err := sqldb.Open(t.Context(), parse(t, withMapping(dsn, example(t, "mapping.yaml"))))
	if err != nil {
		t.Fatal(err)
	}
	if problems := src.(*sqldb.MappedSource).CheckMapping(t.Context()); len(problems) > 0 {
		t.Errorf("mapping check with JSONB columns: %q", problems)
	}
	src.Close()
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source {
			src, err := sqldb.Open(t.Context(), parse(t, withMapping(dsn, example(t, "mapping.yaml"))))
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		Want: want,
		Skip: map[string]string{"OriginsNameTheInstance": "covered on SQLite"},
	})
}
