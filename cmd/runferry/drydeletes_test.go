package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
)

// TestDryRunNamesDeletedRuns removes a run folder after a sync of W&B
// folders into a Parquet archive: sync --dry-run, with and without
// --propagate-deletes, names the run as deleted at the source and says
// whether the real sync would delete it in the archive, in its output and
// its report, and changes nothing: the ledger keeps the run as committed
// (the next real sync reports it again) and the archive still lists it.
func TestDryRunNamesDeletedRuns(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "fx")
	if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	loc := "wandb:" + filepath.Join(root, "wandb") + "?crashed-after=1ns"
	arch := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	sync := func(extra ...string) (*transfer.Report, string) {
		t.Helper()
		rep := filepath.Join(dir, "report.json")
		code, out, errOut := runCLI(t, append([]string{"sync", "--accept-gaps", loc, "parquet:" + arch, "--state", ledger, "--report", rep}, extra...)...)
		if code != 0 {
			t.Fatalf("sync %v: exit %d\n%s%s", extra, code, out, errOut)
		}
		r := readReport(t, rep)
		return &r, out
	}
	sync()
	if err := os.RemoveAll(filepath.Join(root, "wandb", "offline-run-20261125_230205-fxa00001")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		flags []string
		line  string
		total string
	}{
		{[]string{"--dry-run"}, "would be kept in the destination (--propagate-deletes deletes it)", "1 deleted at the source (0 would be deleted in the destination)"},
		{[]string{"--dry-run", "--propagate-deletes"}, ": would be deleted in the destination", "1 deleted at the source (1 would be deleted in the destination)"},
	} {
		rep, out := sync(c.flags...)
		if len(rep.Deleted) != 1 || !strings.HasSuffix(rep.Deleted[0].Origin, "/fxa00001") || rep.Deleted[0].Propagated {
			t.Errorf("%v: report's deleted = %+v, want fxa00001, not propagated", c.flags, rep.Deleted)
		}
		if !strings.Contains(out, "DELETED at the source ") || !strings.Contains(out, c.line) || !strings.Contains(out, c.total) {
			t.Errorf("%v: output lacks %q or %q:\n%s", c.flags, c.line, c.total, out)
		}
	}
	// Nothing changed: the real sync still finds the deletion, and the
	// archive held the run until then.
	code, lsOut, errOut := runCLI(t, "ls", "parquet:"+arch)
	if code != 0 || !strings.Contains(lsOut, "fxa00001") {
		t.Fatalf("ls after the dry runs: exit %d, the run is gone from the archive\n%s%s", code, lsOut, errOut)
	}
	rep, out := sync("--propagate-deletes")
	if len(rep.Deleted) != 1 || !rep.Deleted[0].Propagated || !strings.Contains(out, ": deleted in the destination") {
		t.Errorf("real sync after the dry runs: deleted = %+v\n%s", rep.Deleted, out)
	}
}
