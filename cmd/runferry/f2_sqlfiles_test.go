package main

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// f2FilesPy: "make EXP" logs a FINISHED run with same.txt, gone.txt and
// big.bin (64 KiB) through MLflow's own client and prints its id; "add RUN"
// logs new.txt and same.txt again with other bytes of another size.
const f2FilesPy = mlflowFilesPy + `
if mode == "make":
    e = c.create_experiment(arg)
    r = c.create_run(e, run_name="files")
    c.log_metric(r.info.run_id, "loss", 0.5, step=0, timestamp=1700000000000)
    put(r.info.run_id, "same.txt", b"aaaa\n")
    put(r.info.run_id, "kept.txt", b"kept\n")
    put(r.info.run_id, "big.bin", bytes(range(256)) * 256)
    c.set_terminated(r.info.run_id, "FINISHED")
    print(r.info.run_id, end="")
else:
    put(arg, "new.txt", b"new\n")
    put(arg, "same.txt", b"changed\n")
`

// TestSQLAppendFromMLflowKeepsHeldFiles (f2): an append into SQLite from
// a real MLflow source sends only the files added or changed; the held
// ones, whose bodies MLflow gives without a digest, are read and hashed
// but not stored again (every file was sent again: "copied 1 run (... 4
// files ...)"). The dry run counts as the sync does; the stored files are
// the source's (check, and the rows read with database/sql: the kept
// files keep their row ids).
func TestSQLAppendFromMLflowKeepsHeldFiles(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	py := mlflowFilesScripts(t, f2FilesPy)
	run, src := mlflowFilesRun(t, srv.URL, uniquePrefix(t), py)
	db := filepath.Join(t.TempDir(), "runs.db")
	dst, ledger := "sqlite:"+db, filepath.Join(t.TempDir(), "ledger.db")
	wantCounts(t, "first sync", syncReport(t, 0, "sync", src, dst, "--state", ledger), 1, 0)
	before := f2FileIDs(t, db)

	py(srv.URL, "add", run)
	for _, dry := range []bool{true, false} {
		args := []string{"sync", src, dst, "--state", ledger}
		if dry {
			args = append(args, "--dry-run")
		}
		rep := syncReport(t, 0, args...)
		if !dry {
			wantCounts(t, "sync after new.txt added and same.txt changed", rep, 1, 0)
		}
		if len(rep.Runs) != 1 || !rep.Runs[0].Appended || rep.Runs[0].Files != 2 || rep.Runs[0].KeptFiles != 2 ||
			rep.Runs[0].Bytes != int64(len("new\n")+len("changed\n")) {
			t.Errorf("dry run %v: %+v, want appended, 2 files (12 B) sent and 2 kept", dry, rep.Runs)
		}
	}
	wantCheck(t, "after the append", 0, src, dst)
	after := f2FileIDs(t, db)
	for _, name := range []string{"kept.txt", "big.bin"} {
		if after[name] != before[name] || after[name] == 0 {
			t.Errorf("%s: row %d before the append, %d after: want it kept", name, before[name], after[name])
		}
	}
	if len(after) != 4 || after["same.txt"] == before["same.txt"] || after["new.txt"] == 0 {
		t.Errorf("files after the append %v (before %v): want same.txt replaced and new.txt added", after, before)
	}
}

// f2FileIDs returns the row id of each file the SQLite database holds.
func f2FileIDs(t *testing.T, db string) map[string]int64 {
	t.Helper()
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query("SELECT path, id FROM files")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var path string
		var id int64
		if err := rows.Scan(&path, &id); err != nil {
			t.Fatal(err)
		}
		out[path] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
