package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSyncRewritesRunsMissingFromArchive: runs a Parquet archive no longer
// holds are written again by a sync whose ledger says they were committed.
// The archive removed whole (as a user starting over would): before the
// fix the sync said "6 unchanged", exit 0, and left no run in it. Then a
// run deleted at the source, retired from the archive by
// --propagate-deletes and pruned with its snapshot (archive prune --keep
// 1), comes back at the source: it is written again, once. `check`
// compares the archive with the source after each, and `archive check`
// finds it intact.
func TestSyncRewritesRunsMissingFromArchive(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "fx")
	if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	src := "wandb:" + root + "?crashed-after=1ns"
	arch := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	rep := filepath.Join(dir, "report.json")
	sync := func(extra ...string) string {
		t.Helper()
		args := append([]string{"sync", "--accept-gaps", "--state", ledger, "--report", rep}, extra...)
		code, out, errOut := runCLI(t, append(args, src, "parquet:"+arch)...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", extra, code, out, errOut)
		}
		return out
	}
	checked := func(want string) {
		t.Helper()
		if code, out, errOut := runCLI(t, "check", src, "parquet:"+arch); code != 0 || !strings.Contains(out, want) {
			t.Errorf("check: exit %d, want 0 and %q\n%s%s", code, want, out, errOut)
		}
		if code, out, errOut := runCLI(t, "archive", "check", arch); code != 0 {
			t.Errorf("archive check: exit %d\n%s%s", code, out, errOut)
		}
	}
	sync()
	n := readReport(t, rep).Totals.Committed
	if n < 5 {
		t.Fatalf("first sync committed %d runs", n)
	}
	if err := os.RemoveAll(arch); err != nil {
		t.Fatal(err)
	}
	out := sync()
	if got := readReport(t, rep).Totals; got.Committed != n || got.Unchanged != 0 {
		t.Errorf("sync into the removed archive: %+v; want %d written\n%s", got, n, out)
	}
	checked("6 match, 0 differences")

	run := filepath.Join(root, "wandb", "offline-run-20261125_230205-fxa00001")
	if err := os.Rename(run, filepath.Join(dir, "away")); err != nil {
		t.Fatal(err)
	}
	sync("--propagate-deletes")
	if got := readReport(t, rep).Totals; got.DeletesPropagated != 1 {
		t.Fatalf("sync --propagate-deletes: %+v", got)
	}
	if code, out, errOut := runCLI(t, "archive", "prune", arch, "--keep", "1"); code != 0 {
		t.Fatalf("archive prune: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.Rename(filepath.Join(dir, "away"), run); err != nil {
		t.Fatal(err)
	}
	out = sync()
	if got := readReport(t, rep).Totals; got.Committed != 1 || got.Unchanged != n-1 {
		t.Errorf("sync after the run came back: %+v; want 1 written, %d unchanged\n%s", got, n-1, out)
	}
	checked("6 match, 0 differences")
}
