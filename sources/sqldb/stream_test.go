package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/sqldb"
)

// TestMappedMetricsStreamed proves that a mapping's metrics query is
// streamed, not loaded whole: on SQLite, PostgreSQL and MariaDB the query
// yields an endless (or billion-row) history made lazily by the database
// (a recursive CTE; MariaDB's sequence engine), and the reader hands on
// its first three pages of 10,000 points, correct, while the database is
// still producing rows. A reader that collected the result first would
// never deliver a page (the guard deadline then fails the test). After
// the context is cancelled, the stream ends with an error.
func TestMappedMetricsStreamed(t *testing.T) {
	const pages = 3
	check := func(t *testing.T, loc, instance string) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute) // a guard, not a measurement
		defer cancel()
		src, err := sqldb.Open(ctx, parse(t, loc))
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		read, got := 0, 0
		for page, err := range src.Metrics(ctx, schema.Ref{System: "sql", ID: instance + "/run/1"}) {
			if err != nil {
				if got < pages {
					t.Fatalf("after %d pages: %v", got, err)
				}
				break
			}
			for i, m := range page {
				if n := int64(read + i); m.Key != "loss" || m.Step != n || m.Value != float64(n)/2 {
					t.Fatalf("point %d is %+v, want loss at step %d = %v", n, m, n, float64(n)/2)
				}
			}
			read += len(page)
			if got++; got == pages {
				cancel() // the database is still producing rows: end the query
			}
		}
		if got < pages {
			t.Fatalf("%d pages, want at least %d", got, pages)
		}
	}
	mapping := func(t *testing.T, metrics string) string {
		p := filepath.Join(t.TempDir(), "mapping.yaml")
		text := fmt.Sprintf(`experiment: e
runs: {query: "SELECT 1 AS id", columns: {id: id}}
metrics:
  query: %q
  columns: {key: k, step: s, value: v}
`, metrics)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const endless = "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s) SELECT 'loss' AS k, n AS s, n / 2.0 AS v FROM s WHERE %s <> ''"
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.db")
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec("CREATE TABLE unused (x INTEGER)"); err != nil {
			t.Fatal(err)
		}
		db.Close()
		check(t, "sqlite:"+path+"?mapping="+mapping(t, fmt.Sprintf(endless, "CAST(:run AS TEXT)")), path)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		dsn := testenv.SharedPostgres(t).CreateDatabase(t, "mapped_streamed")
		base, _, _ := cutQuery(dsn)
		check(t, withMapping(dsn, mapping(t, fmt.Sprintf(endless, "CAST(:run AS TEXT)"))), base)
	})
	t.Run("MariaDB", func(t *testing.T) {
		m := testenv.SharedMariaDB(t)
		t.Setenv("MYSQL_PWD", m.Password)
		loc := m.CreateDatabase(t, "mapped_streamed")
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		// MariaDB materializes recursive CTEs; its sequence engine makes rows as they are read.
		q := "SELECT 'loss' AS k, seq AS s, seq / 2 AS v FROM seq_0_to_999999999 WHERE CAST(:run AS CHAR) <> ''"
		check(t, withMapping(loc, mapping(t, q)), u.Host+u.Path)
	})
}
