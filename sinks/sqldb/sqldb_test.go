package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sinks/sqldb"
	"github.com/runferry/runferry/sources"
	srcsqldb "github.com/runferry/runferry/sources/sqldb"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func parse(t testing.TB, raw string) location.Location {
	t.Helper()
	loc, err := location.Parse(raw, func(s string) (location.Kind, bool) {
		if s == "sqlite" {
			return location.PathKind, true
		}
		return location.URLKind, true
	})
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func openSink(t testing.TB, raw string) sinks.Sink {
	t.Helper()
	s, err := sqldb.Open(context.Background(), parse(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openSource(t testing.TB, raw string) sources.Source {
	t.Helper()
	s, err := srcsqldb.Open(context.Background(), parse(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// conformance runs sinktest with fresh() giving the location of a new,
// empty database for each sink the suite asks for; stride is the suite's
// FailureStride.
func conformance(t *testing.T, stride int, fresh func(t *testing.T) string) {
	var last string
	sinktest.Run(t, sinktest.Opt{
		New: func(t *testing.T) (sinks.Sink, func() sources.Source) {
			loc := fresh(t)
			last = loc
			return openSink(t, loc), func() sources.Source { return openSource(t, loc) }
		},
		Reopen:        func(t *testing.T) sinks.Sink { return openSink(t, last) },
		FailureStride: stride,
		// The sink finds the run to append to by its origin: a copy held
		// under a former origin is written again under the new one.
		FormerAppendRefused: "the database does not hold the run",
	})
}

func TestConformanceSQLite(t *testing.T) {
	conformance(t, 1, func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "runs.db") })
}

var (
	dbSeq  atomic.Int64
	pgOnce sync.Once
	pgDSN  string
	pgDB   *sql.DB
)

// freshPostgres returns a location naming a new, empty PostgreSQL schema
// (search_path) in one database of the shared cluster: much cheaper than
// a database per sink.
func freshPostgres(t *testing.T) string { return freshPostgresB(t) }

// freshPostgresB is freshPostgres for tests and benchmarks.
func freshPostgresB(t testing.TB) string {
	pgOnce.Do(func() {
		pgDSN = testenv.SharedPostgres(t).CreateDatabase(t, "sqldb_sink")
		db, err := sql.Open("pgx", pgDSN)
		if err != nil {
			t.Fatal(err)
		}
		pgDB = db
	})
	name := fmt.Sprintf("sink_%d", dbSeq.Add(1))
	if _, err := pgDB.Exec("CREATE SCHEMA " + name); err != nil {
		t.Fatal(err)
	}
	return pgDSN + "&search_path=" + name
}

// The servers inject a failure at every other operation (the code that
// handles a failure is the dialects' shared code, and SQLite goes through
// every operation), to keep the package's tests short.
func TestConformancePostgres(t *testing.T) { conformance(t, 2, freshPostgres) }

// freshMariaDB creates a database in the shared MariaDB server; the
// password travels in MYSQL_PWD, as a user's would.
func freshMariaDB(t *testing.T) string {
	m := testenv.SharedMariaDB(t)
	os.Setenv("MYSQL_PWD", m.Password)
	return m.CreateDatabase(t, fmt.Sprintf("sink_%d", dbSeq.Add(1)))
}

func TestConformanceMariaDB(t *testing.T) { conformance(t, 2, freshMariaDB) }
