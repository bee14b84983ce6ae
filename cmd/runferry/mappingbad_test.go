package main

import (
	"database/sql"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMappedBadRowsIntoDatabase: the example database, its run 2 given
// 12,000 more points, read through a mapping whose metrics query gives that
// run a NULL value, or text, where a number is required, after more than a
// page of its points (so the database has received some of them), copied into
// runferry's schema in SQLite and in PostgreSQL: that run fails with a
// line naming it, the metrics entry and the column (exit 3), and the
// database holds the other runs whole and nothing of the failed one (the
// points it received were never committed). With the mapping mended the same copy
// completes, check is clean, and no run or point is doubled.
func TestMappedBadRowsIntoDatabase(t *testing.T) {
	db, good := exampleDB(t)
	const query = "SELECT metric, step, value, logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step"
	if !strings.Contains(good, query) {
		t.Fatalf("the example mapping's metrics query changed: %q not in it", query)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	const more = 12_000 // beyond the first page of 10,000 points
	if _, err := conn.Exec(`WITH RECURSIVE s(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM s WHERE n < ?)
		INSERT INTO metrics SELECT 2, 'loss', n, 1.0 / n, 1709370000000 + n FROM s`, more+1); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	const badStep, total = more, 5 + 2 + more // runs 1, 2 and 3 hold 5, 2 + more and 0 points
	for _, tc := range []struct{ name, value, want string }{
		{"null", "NULL", "NULL where a value is required"},
		{"text", "'high'", `"high"`},
	} {
		bad := strings.Replace(good, query, "SELECT metric, step, CASE WHEN run_id = 2 AND step = "+strconv.Itoa(badStep)+" THEN "+tc.value+
			" ELSE value END AS value, logged_at FROM metrics WHERE run_id = :run ORDER BY metric, step", 1)
		for _, dst := range []struct{ name, loc string }{
			{"sqlite", "sqlite:" + filepath.Join(t.TempDir(), "runs.db")},
			{"postgres", testenv.SharedPostgres(t).CreateDatabase(t, "mapped_bad_"+tc.name)},
		} {
			t.Run(tc.name+"/"+dst.name, func(t *testing.T) {
				src := "sqlite:" + db + "?mapping=" + writeMapping(t, bad)
				code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, dst.loc, "--no-state", "--retries", "0")
				if code != exitRunsFailed || !strings.Contains(out, "copied 2 runs") {
					t.Fatalf("copy with a bad row: exit %d, want %d and 2 runs copied\n%s\n%s", code, exitRunsFailed, out, errOut)
				}
				all := out + errOut
				t.Logf("%s", all)
				if !strings.Contains(all, "metrics") || !strings.Contains(all, `"value"`) || !strings.Contains(all, tc.want) ||
					!strings.Contains(all, "bigger lr") {
					t.Errorf("the failure does not name the run (bigger lr), the metrics entry, the column and the value:\n%s", all)
				}
				runs, points := ownRows(t, dst.loc)
				if runs != 2 || points != 5 {
					t.Errorf("after the failed copy the database holds %d runs, %d points; want runs 1 and 3 whole (5 points) and nothing of run 2", runs, points)
				}

				src = "sqlite:" + db + "?mapping=" + writeMapping(t, good)
				if code, out, errOut = runCLI(t, "copy", "--accept-gaps", src, dst.loc, "--no-state"); code != 0 {
					t.Fatalf("copy with the mapping mended: exit %d\n%s\n%s", code, out, errOut)
				}
				if code, out, errOut = runCLI(t, "check", src, dst.loc); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
					t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
				}
				if runs, points = ownRows(t, dst.loc); runs != 3 || points != total {
					t.Errorf("after the second copy the database holds %d runs, %d points; want 3 and %d", runs, points, total)
				}
			})
		}
	}
}

// ownRows counts the rows of runferry's runs and metrics tables at loc
// (sqlite:PATH or a PostgreSQL DSN).
func ownRows(t *testing.T, loc string) (runs, points int) {
	t.Helper()
	driver, dsn := "pgx", loc
	if p, ok := strings.CutPrefix(loc, "sqlite:"); ok {
		driver, dsn = "sqlite", p
	}
	conn, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.QueryRow("SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM metrics)").Scan(&runs, &points); err != nil {
		t.Fatal(err)
	}
	return runs, points
}
