package sqldb_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	sinksqldb "github.com/runferry/runferry/sinks/sqldb"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/sources/sourcetest"
	"github.com/runferry/runferry/sources/sqldb"
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

// fill copies the canonical dataset into the database at raw through the
// SQL sink.
func fill(t testing.TB, raw string) {
	t.Helper()
	dst, err := sinksqldb.Open(context.Background(), parse(t, raw))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(context.Background(), memsrc.New(dataset.Canonical()), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("writing the fixture database: %v %+v", err, rep.Totals)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func conformance(t *testing.T, raw string) {
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source {
			src, err := sqldb.Open(context.Background(), parse(t, raw))
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		Want: dataset.Canonical(),
		Skip: map[string]string{"OriginsNameTheInstance": "a runferry database originates nothing: it yields the origins it was copied from, which name their own instance, so two databases of the same data must yield the same origins, as MatchesWant checks"},
	})
}

var (
	sqliteOnce sync.Once
	sqlitePath string
)

func TestConformanceSQLite(t *testing.T) {
	sqliteOnce.Do(func() {
		sqlitePath = "sqlite:" + filepath.Join(t.TempDir(), "runs.db")
		fill(t, sqlitePath)
	})
	conformance(t, sqlitePath)
}

func TestConformancePostgres(t *testing.T) {
	raw := testenv.SharedPostgres(t).CreateDatabase(t, "sqldb_source")
	fill(t, raw)
	conformance(t, raw)
}

func TestConformanceMariaDB(t *testing.T) {
	m := testenv.SharedMariaDB(t)
	t.Setenv("MYSQL_PWD", m.Password)
	raw := m.CreateDatabase(t, "sqldb_source")
	fill(t, raw)
	conformance(t, raw)
}
