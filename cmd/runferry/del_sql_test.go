package main

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// TestSyncRewritesRunDeletedInSQL deletes a run's row in a SQLite
// destination (its params, metrics, logs and files go with it: ON DELETE
// CASCADE), as a user cleaning the database would, and syncs again with
// the same ledger, then copies without one. The ledger says the run was
// committed; the re-run must still write it again, once, named in the
// report, and `check` then passes. Before the fix the sync with the ledger
// said every run unchanged and check exited 4.
func TestSyncRewritesRunDeletedInSQL(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "runs.db")
	dst := "sqlite:" + file
	ledger := filepath.Join(dir, "ledger.db")
	rep := filepath.Join(dir, "report.json")
	sync := func(args ...string) (int, string) {
		t.Helper()
		code, out, errOut := runCLI(t, append(append([]string{}, args...), "--accept-gaps", "--report", rep, fixtures, dst)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		return code, out
	}
	sync("sync", "--state", ledger)
	first := readReport(t, rep)
	n := first.Totals.Committed
	if n < 5 {
		t.Fatalf("first sync: %+v", first.Totals)
	}
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // the pragma holds for the one connection
	count := func(q string, args ...any) int {
		t.Helper()
		var c int
		if err := db.QueryRow(q, args...).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	const gone = "wandb:fixture-entity/runferry-fixtures/fxa00001"
	points := count("SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.origin = ?", gone)
	if points == 0 {
		t.Fatalf("run %s holds no points", gone)
	}
	for i, origin := range []string{gone, "wandb:fixture-entity/runferry-fixtures/fxc00003"} {
		if _, err := db.Exec("PRAGMA foreign_keys = ON"); err != nil {
			t.Fatal(err)
		}
		if res, err := db.Exec("DELETE FROM runs WHERE origin = ?", origin); err != nil {
			t.Fatal(err)
		} else if k, _ := res.RowsAffected(); k != 1 {
			t.Fatalf("deleted %d rows of run %s", k, origin)
		}
		if code, out, errOut := runCLI(t, "check", fixtures, dst); code != 4 {
			t.Fatalf("check after the delete: exit %d, want 4\n%s%s", code, out, errOut)
		}
		// With the ledger, then (the second run) without one.
		if i == 0 {
			sync("sync", "--state", ledger)
		} else {
			sync("copy", "--no-state")
		}
		again := readReport(t, rep)
		if again.Totals.Committed != 1 || again.Totals.Unchanged != n-1 {
			t.Errorf("re-run after deleting %s: %+v; want 1 written, %d unchanged", origin, again.Totals, n-1)
		}
		for _, r := range again.Runs {
			if r.Origin == origin && r.Outcome != "committed" {
				t.Errorf("run %s: %s (%s), want committed", origin, r.Outcome, r.Reason)
			}
		}
		if code, out, errOut := runCLI(t, "check", fixtures, dst); code != 0 {
			t.Errorf("check after the re-run: exit %d\n%s%s", code, out, errOut)
		}
		if c := count("SELECT count(*) FROM runs"); c != n {
			t.Errorf("the database holds %d runs, want %d", c, n)
		}
	}
	if got := count("SELECT count(*) FROM metrics m JOIN runs r ON r.id = m.run_id WHERE r.origin = ?", gone); got != points {
		t.Errorf("run %s holds %d points after the re-run, had %d", gone, got, points)
	}
}
