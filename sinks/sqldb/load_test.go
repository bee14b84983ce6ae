package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

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
// in multi-row INSERTs, seen from the server's side twice: its count of
// INSERT statements grows by a handful (the run's other rows included)
// for thousands of points, and its general log holds the statements that
// added metric rows: each an INSERT of many rows, no LOAD DATA, the rows
// adding up to the run's points.
func TestMetricsLoadedInBulkMariaDB(t *testing.T) {
	loc := freshMariaDB(t)
	copyInto(t, oneRun("first", 1), loc) // creates the schema
	m := testenv.SharedMariaDB(t)
	db, err := sql.Open("mysql", m.DSN(t, loc))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	exec := func(q string) {
		t.Helper()
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	inserts := func() int64 {
		var name string
		var v int64
		if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Com_insert'").Scan(&name, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	var output string
	if err := db.QueryRow("SELECT @@global.log_output").Scan(&output); err != nil {
		t.Fatal(err)
	}
	exec("SET GLOBAL general_log = 0")
	exec("TRUNCATE TABLE mysql.general_log")
	exec("SET GLOBAL log_output = 'TABLE'")
	exec("SET GLOBAL general_log = 1")
	t.Cleanup(func() {
		db.Exec("SET GLOBAL general_log = 0")
		db.Exec("SET GLOBAL log_output = '" + output + "'")
		db.Exec("TRUNCATE TABLE mysql.general_log")
	})

	const n = 25_000
	before := inserts()
	copyInto(t, oneRun("big", n), loc)
	got := inserts() - before
	exec("SET GLOBAL general_log = 0")
	var stored int
	if err := db.QueryRow("SELECT count(*) FROM metrics").Scan(&stored); err != nil || stored != n+1 {
		t.Fatalf("metrics rows: %d, %v; want %d", stored, err, n+1)
	}
	t.Logf("%d INSERT statements for %d points", got, n)
	if got > 40 {
		t.Errorf("%d INSERT statements for %d points, want multi-row inserts (%d of 2,000 rows, and the run's other rows)", got, n, n/2000+1)
	}

	rows, err := db.Query("SELECT argument FROM mysql.general_log WHERE command_type IN ('Query', 'Execute', 'Prepare')")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var statements, logged, single int
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			t.Fatal(err)
		}
		head := strings.ToUpper(strings.Join(strings.Fields(q[:min(len(q), 80)]), " "))
		if strings.HasPrefix(head, "LOAD DATA") {
			t.Errorf("LOAD DATA used: %.80s", q)
		}
		if !strings.HasPrefix(head, "INSERT INTO METRICS") {
			continue
		}
		statements++
		r := strings.Count(q, "),(") + 1 // the values hold no parentheses
		if r == 1 {
			single++
		}
		logged += r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("general log: %d INSERT INTO metrics statements carrying %d rows", statements, logged)
	if logged != n || statements == 0 || statements > n/100 || single > 0 {
		t.Errorf("general log: %d INSERT INTO metrics (%d of one row) carrying %d rows; want a few multi-row statements (%d of 2,000 rows) carrying %d",
			statements, single, logged, (n+1999)/2000, n)
	}
}

// sqliteWatch counts, for one SQLite file, what SQLite itself sees the
// sink's connections do to the metrics table: how often an INSERT into
// it is compiled (the authorizer runs when a statement is prepared, not
// when it is executed), and how many metric rows each commit holds (the
// pre-update hook runs for every row, the commit hook for every commit).
type sqliteWatch struct {
	mu       sync.Mutex
	prepares int     // INSERT INTO metrics statements compiled
	pending  int     // metric rows inserted since the last commit or rollback
	commits  []int   // metric rows of each commit that held any
	other    []int32 // other commits (rows 0), counted for the log
}

var (
	sqliteHookOnce sync.Once
	sqliteWatchMu  sync.Mutex
	sqliteWatches  = map[string]*sqliteWatch{} // by the file's escaped path
)

// watchSQLite starts counting for the SQLite file at path; it must be
// called before the sink opens the file (the hooks are set on each new
// connection).
func watchSQLite(t *testing.T, path string) *sqliteWatch {
	sqliteHookOnce.Do(func() {
		sqlite.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, dsn string) error {
			sqliteWatchMu.Lock()
			var w *sqliteWatch
			for p, pw := range sqliteWatches {
				if strings.Contains(dsn, p) {
					w = pw
				}
			}
			sqliteWatchMu.Unlock()
			if w == nil {
				return nil
			}
			hr, ok1 := c.(sqlite.HookRegisterer)
			ar, ok2 := c.(sqlite.AuthorizerRegisterer)
			if !ok1 || !ok2 {
				return fmt.Errorf("the SQLite driver's connection %T takes no hooks", c)
			}
			if err := ar.RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, table, _, _, _ string) sqlite.AuthorizerReturnCode {
				if action == sqlite.AuthInsert && table == "metrics" {
					w.mu.Lock()
					w.prepares++
					w.mu.Unlock()
				}
				return sqlite.AuthorizerOK
			}); err != nil {
				return err
			}
			hr.RegisterPreUpdateHook(func(d sqlite.SQLitePreUpdateData) {
				if d.Op == sqlite3.SQLITE_INSERT && d.TableName == "metrics" {
					w.mu.Lock()
					w.pending++
					w.mu.Unlock()
				}
			})
			hr.RegisterCommitHook(func() int32 {
				w.mu.Lock()
				if w.pending > 0 {
					w.commits = append(w.commits, w.pending)
				} else {
					w.other = append(w.other, 0)
				}
				w.pending = 0
				w.mu.Unlock()
				return 0 // let the commit go ahead
			})
			hr.RegisterRollbackHook(func() {
				w.mu.Lock()
				w.pending = 0
				w.mu.Unlock()
			})
			return nil
		})
	})
	w := &sqliteWatch{}
	key := (&url.URL{Path: path}).EscapedPath()
	sqliteWatchMu.Lock()
	sqliteWatches[key] = w
	sqliteWatchMu.Unlock()
	t.Cleanup(func() {
		sqliteWatchMu.Lock()
		delete(sqliteWatches, key)
		sqliteWatchMu.Unlock()
	})
	return w
}

// TestMetricsLoadedInOneTransactionSQLite: on SQLite the metrics of a run
// are batched prepared inserts in one transaction. Seen from inside SQLite
// (hooks on the sink's connections, not the sink's own code): the INSERT
// into metrics is compiled once for the run, and all its points arrive in
// a single commit, not one per point or per batch.
func TestMetricsLoadedInOneTransactionSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	w := watchSQLite(t, path)
	copyInto(t, oneRun("first", 1), "sqlite:"+path) // creates the schema
	w.mu.Lock()
	if w.prepares == 0 || len(w.commits) != 1 || w.commits[0] != 1 {
		t.Fatalf("first run: %d INSERTs compiled, metric rows per commit %v; the hooks do not see the sink's connections", w.prepares, w.commits)
	}
	w.prepares, w.commits, w.other = 0, nil, nil
	w.mu.Unlock()

	const n = 25_000 // several of the engine's batches
	copyInto(t, oneRun("big", n), "sqlite:"+path)
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%d INSERT INTO metrics compiled; metric rows per commit %v; %d other commits", w.prepares, w.commits, len(w.other))
	if w.prepares != 1 {
		t.Errorf("INSERT INTO metrics compiled %d times for one run, want once (one prepared statement)", w.prepares)
	}
	if len(w.commits) != 1 || w.commits[0] != n {
		t.Errorf("metric rows per commit %v, want all %d in one", w.commits, n)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stored int
	if err := db.QueryRow("SELECT count(*) FROM metrics").Scan(&stored); err != nil || stored != n+1 {
		t.Fatalf("metrics rows: %d, %v; want %d", stored, err, n+1)
	}
}
