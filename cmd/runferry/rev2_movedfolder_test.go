package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMovedFolderSyncWritesNoSnapshot: the W&B fixtures synced into an
// archive, then copied to another path (new modification times, so new
// fingerprints; the same origins: the runs name their entity) and synced
// from there with a new ledger: every run is read again and appended to
// with nothing new, so the archive writes nothing: the runs are reported
// unchanged, no snapshot is added, `check` passes, and DuckDB reads the
// same metric rows as before, none twice. (Before: "copied 6 runs (0
// points, 0 files, 0 B; 6 runs appended to: ...)" and a second snapshot
// of all 6 runs.) A file added to one run afterwards is still written:
// that run alone, in a new snapshot.
func TestMovedFolderSyncWritesNoSnapshot(t *testing.T) {
	py := testenv.Python(t)
	root := t.TempDir()
	first, move := movableFixtures(t, root)
	arch := filepath.Join(root, "archive")
	snapshots := func() int {
		names, err := filepath.Glob(filepath.Join(arch, "snapshots", "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		return len(names)
	}
	metrics := func() string {
		q := `select count(*) = count(distinct (run, key, step, time, value)), list((run, key, step, time, value) order by run, key, step, time, value) from read_parquet('` + arch + `/metrics/**/*.parquet')`
		return pyRun(t, py, "import duckdb,sys; print(duckdb.sql(sys.argv[1]).fetchall())", q)
	}
	code, out, errOut := runCLI(t, "sync", "wandb:"+first+"?crashed-after=1ns", "parquet:"+arch, "--state", filepath.Join(root, "ledger1.db"), "--accept-gaps")
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	held := metrics()
	if !strings.HasPrefix(held, "[(True, [") {
		t.Fatalf("DuckDB after the first sync: %.200s", held)
	}
	moved := move()
	src := "wandb:" + moved + "?crashed-after=1ns"
	ledger2 := filepath.Join(root, "ledger2.db")
	for i := 1; i <= 2; i++ {
		code, out, errOut = runCLI(t, "sync", src, "parquet:"+arch, "--state", ledger2, "--accept-gaps")
		if code != 0 || !strings.Contains(out, "copied 0 runs (0 points, 0 files, 0 B); 6 unchanged") {
			t.Errorf("sync %d from the moved folder with a new ledger: exit %d, want 0 and all 6 unchanged\n%s%s", i, code, out, errOut)
		}
		if n := snapshots(); n != 1 {
			t.Errorf("after sync %d from the moved folder: %d snapshots, want 1", i, n)
		}
	}
	if got := metrics(); got != held {
		t.Errorf("DuckDB reads other metric rows after the syncs from the moved folder:\nbefore %.300s\nafter  %.300s", held, got)
	}
	if code, out, errOut := runCLI(t, "check", src, "parquet:"+arch); code != 0 {
		t.Errorf("check: exit %d, want 0\n%s%s", code, out, errOut)
	}
	// A real change is still written: a file added to one run.
	runDir, err := filepath.Glob(filepath.Join(moved, "wandb", "offline-run-*-fxa00001", "files"))
	if err != nil || len(runDir) != 1 {
		t.Fatalf("run folder of fxa00001: %v %v", runDir, err)
	}
	if err := os.WriteFile(filepath.Join(runDir[0], "rev2-added.txt"), []byte("added after the move\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "sync", src, "parquet:"+arch, "--state", ledger2, "--accept-gaps")
	if code != 0 || !strings.Contains(out, "copied 1 run (0 points, 1 file, 21 B") || !strings.Contains(out, "5 unchanged") {
		t.Errorf("sync after a file was added: exit %d, want the one run written\n%s%s", code, out, errOut)
	}
	if n := snapshots(); n != 2 {
		t.Errorf("after the file was added: %d snapshots, want 2", n)
	}
	if got := metrics(); got != held {
		t.Errorf("DuckDB reads other metric rows after the file was added:\nbefore %.300s\nafter  %.300s", held, got)
	}
}
