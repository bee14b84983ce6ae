package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportPathCheckedFirst gives sync and check a --report FILE in a
// folder that cannot be created (under a file), and a folder as FILE: each
// is refused before the job starts (exit 2, FILE named, no archive
// written), where before the whole job ran and then exited 1 for the
// report alone, naming a .tmp file the user never gave. A FILE in a folder
// that does not exist yet gets its folder, as the ledger does (the
// documented CronJob writes .runferry/last-report.json on its first run).
func TestReportPathCheckedFirst(t *testing.T) {
	dir := t.TempDir()
	src := "wandb:../../testdata/wandb/fixtures/wandb?crashed-after=1ns"
	arch := filepath.Join(dir, "archive")
	blocker := filepath.Join(dir, "a-file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(blocker, "sub", "report.json")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"sync", "--accept-gaps", "--no-state", src, "parquet:" + arch, "--report", missing}, "cannot create the folder " + filepath.Dir(missing)},
		{[]string{"sync", "--accept-gaps", "--no-state", src, "parquet:" + arch, "--report", dir}, "is a folder"},
		{[]string{"check", src, "parquet:" + arch, "--report", missing}, "cannot create the folder " + filepath.Dir(missing)},
	} {
		code, out, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, "--report ") || !strings.Contains(errOut, c.want) || strings.Contains(errOut, ".tmp") {
			t.Errorf("%s --report %s: exit %d, want 2 with %q\n%s%s", c.args[0], c.args[len(c.args)-1], code, c.want, out, errOut)
		}
		if _, err := os.Stat(arch); !os.IsNotExist(err) {
			t.Fatalf("%s with a bad --report wrote %s (%v)", c.args[0], arch, err)
		}
	}
	good := filepath.Join(dir, "new", "folder", "report.json")
	if code, out, errOut := runCLI(t, "sync", "--accept-gaps", "--no-state", "-q", src, "parquet:"+arch, "--report", good); code != 0 {
		t.Fatalf("sync --report %s: exit %d\n%s%s", good, code, out, errOut)
	}
	if b, err := os.ReadFile(good); err != nil || !strings.Contains(string(b), `"totals"`) {
		t.Errorf("report %s: %v\n%.200s", good, err, b)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".runferry-report-*")); len(left) > 0 {
		t.Errorf("probe files left behind: %v", left)
	}
}
