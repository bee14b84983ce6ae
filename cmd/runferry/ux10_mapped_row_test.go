package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestMappedBadValueNamesTheRow: a metric value of a mapped database that
// is no number (text in a loosely typed SQLite column) fails its run, and
// the FAILED line says where in the metrics query's result it is: the row
// number and the point before it, so that the user can find the row.
// (Before: only the run and the driver's words, "sql: Scan error on column
// index 2, name "value": converting ... ("abc") to a float64".)
func TestMappedBadValueNamesTheRow(t *testing.T) {
	db, m := exampleDB(t)
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("INSERT INTO metrics VALUES (2, 'loss', 2, 'abc', 1709370002000)"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	mapping := writeMapping(t, m)
	src := "sqlite:" + db + "?mapping=" + mapping
	dst := "sqlite:" + filepath.Join(t.TempDir(), "out.db")
	code, out, errOut := runCLI(t, "copy", src, dst, "--no-state")
	want := `FAILED mytracker:` + db + `/run/2 (bigger lr) after 1 attempt: reading metrics: mapping ` +
		mapping + `: metrics: run 2: row 3 of the metrics query (after key "loss" step 1): sql: Scan error on column index 2, name "value"`
	if code != 3 || !strings.Contains(out, want) {
		t.Fatalf("copy: exit %d, want 3 and %q\n%s%s", code, want, out, errOut)
	}
}
