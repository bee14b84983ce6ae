package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
)

// TestClosingLineCountsProblems: a mapped database whose params table
// holds one run's key twice (a typical hand-rolled schema without a unique
// key) cannot give that run; the copy names it in a PROBLEM line and exits
// 3, and its closing line, the line a user or a cron mail reads, counts the
// problem too. (Before: "copied 2 runs (...); 0 unchanged, 0 failed", which
// reads as all done, with the third run in no count.)
func TestClosingLineCountsProblems(t *testing.T) {
	db, m := exampleDB(t)
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec("INSERT INTO params VALUES (1, 'lr', '0.5')"); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	src := "sqlite:" + db + "?mapping=" + writeMapping(t, m)
	dst := "sqlite:" + filepath.Join(t.TempDir(), "out.db")
	code, out, errOut := runCLI(t, "copy", src, dst, "--no-state")
	all := out + errOut
	problem := `PROBLEM run baseline (mytracker:` + db + `/run/1): reading it: mapping: params: run 1: key "lr" comes twice` + "\n"
	if code != 3 || !strings.Contains(out, problem) {
		t.Fatalf("copy: exit %d, want 3 with the run named\n%s", code, all)
	}
	if !strings.Contains(out, "copied 2 runs (2 points, 0 files, 0 B); 0 unchanged, 0 failed, 1 problem (named above) in ") {
		t.Errorf("closing line does not count the problem\n%s", out)
	}
}
