package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// oneRun is a dataset of one finished run (origin memory:ID) with points
// metric points.
func oneRun(id string, points int) *dataset.Dataset {
	exp := schema.Ref{System: "memory", ID: "e"}
	run := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: id}, Experiment: exp,
		Status: schema.StatusFinished, Start: time.Unix(1, 0).UTC(), End: time.Unix(2, 0).UTC()}}
	for i := range points {
		run.Metrics = append(run.Metrics, schema.Metric{Key: fmt.Sprintf("k%d", i%5), Step: int64(i / 5), Value: float64(i), Time: int64(i)})
	}
	return &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "e"}}, Runs: []*dataset.RunData{run}}
}

func copyInto(t *testing.T, d *dataset.Dataset, loc string) {
	t.Helper()
	dst := openSink(t, loc)
	defer dst.Close()
	rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{})
	if err != nil || rep.Totals.Committed != 1 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
}

// TestMetricsLoadedWithCopyPostgres: on PostgreSQL the metrics of a run
// arrive by COPY, never by INSERT: a statement-level trigger on the
// metrics table records the text of every statement that adds rows.
func TestMetricsLoadedWithCopyPostgres(t *testing.T) {
	loc := freshPostgres(t)
	copyInto(t, oneRun("first", 1), loc) // creates the schema
	schemaName := loc[strings.LastIndex(loc, "=")+1:]
	for _, q := range []string{
		"CREATE TABLE " + schemaName + ".load_log (query TEXT)",
		"CREATE FUNCTION " + schemaName + ".log_load() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO " + schemaName + ".load_log VALUES (current_query()); RETURN NULL; END $$",
		"CREATE TRIGGER log_load AFTER INSERT ON " + schemaName + ".metrics FOR EACH STATEMENT EXECUTE FUNCTION " + schemaName + ".log_load()",
	} {
		if _, err := pgDB.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	const n = 25_000
	copyInto(t, oneRun("big", n), loc)
	rows, err := pgDB.Query("SELECT query FROM " + schemaName + ".load_log")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var copies int
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), "COPY") {
			t.Errorf("metrics added by %q, want COPY", q)
		}
		copies++
	}
	t.Logf("%d COPY statements for %d points", copies, n)
	if copies == 0 || copies > n/1000 {
		t.Errorf("%d statements added %d points, want a few COPYs", copies, n)
	}
}

// TestMetricsLoadedInBulkMariaDB: on MariaDB the metrics of a run arrive
// in multi-row INSERTs: the server's count of INSERT statements grows by a
// handful (the run's other rows included) for thousands of points.
func TestMetricsLoadedInBulkMariaDB(t *testing.T) {
	loc := freshMariaDB(t)
	copyInto(t, oneRun("first", 1), loc) // creates the schema
	m := testenv.SharedMariaDB(t)
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)%s", m.User, m.Password, u.Host, u.Path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	inserts := func() int64 {
		var name string
		var v int64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Com_insert'").Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	const n = 25_000
	before := inserts()
	copyInto(t, oneRun("big", n), loc)
	var stored int
	if err := db.QueryRow("SELECT count(*) FROM metrics").Scan(&stored); err != nil || stored != n+1 {
		t.Fatalf("metrics rows: %d, %v; want %d", stored, err, n+1)
	}
	got := inserts() - before
	t.Logf("%d INSERT statements for %d points", got, n)
	if got > 40 {
		t.Errorf("%d INSERT statements for %d points, want multi-row inserts (%d of 2,000 rows, and the run's other rows)", got, n, n/2000+1)
	}
}
