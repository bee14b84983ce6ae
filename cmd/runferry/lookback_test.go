package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestSyncLookback rewrites a run file in place with the same size and
// modification time, as a second write within one tick of a coarse
// file-system clock leaves it, right around a sync: the fingerprint cannot
// see it, so a plain sync calls every run unchanged (and check finds the
// difference). sync --lookback compares the runs changed near the previous
// sync's start with the archive, repairs that run, and leaves the others,
// older than the window, unread; the next sync --lookback verifies the
// repaired run and copies nothing.
func TestSyncLookback(t *testing.T) {
	root := filepath.Join(t.TempDir(), "fx")
	if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	old := time.Now().Add(-48 * time.Hour)
	err := filepath.Walk(root, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return err
		}
		return os.Chtimes(path, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "wandb", "offline-run-20261125_230205-fxa00001", "files", "custom.txt")
	recent := time.Now().Add(-time.Minute).Truncate(time.Second)
	if err := os.Chtimes(file, recent, recent); err != nil {
		t.Fatal(err)
	}
	loc := "wandb:" + filepath.Join(root, "wandb") + "?crashed-after=1ns"
	dir := t.TempDir()
	arch, ledger := "parquet:"+filepath.Join(dir, "archive"), filepath.Join(dir, "ledger.db")
	sync := func(extra ...string) map[string][]string {
		t.Helper()
		rep := filepath.Join(dir, "report.json")
		code, out, errOut := runCLI(t, append([]string{"sync", "--accept-gaps", loc, arch, "--state", ledger, "--report", rep}, extra...)...)
		if code != 0 {
			t.Fatalf("sync %v: exit %d\n%s%s", extra, code, out, errOut)
		}
		r := readReport(t, rep)
		byOutcome := map[string][]string{}
		for _, run := range r.Runs {
			what := run.Name
			if strings.HasPrefix(run.Reason, "repairing: ") {
				what += " (repairing)"
			}
			byOutcome[string(run.Outcome)] = append(byOutcome[string(run.Outcome)], what)
		}
		for _, v := range byOutcome {
			sort.Strings(v)
		}
		return byOutcome
	}
	first := sync()
	n := len(first["committed"])
	if n < 5 || len(first) != 1 {
		t.Fatalf("first sync: %v", first)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	changed := []byte(strings.ToUpper(string(body)))
	if string(changed) == string(body) {
		t.Fatalf("%s: nothing to change in %q", file, body)
	}
	if err := os.WriteFile(file, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, recent, recent); err != nil {
		t.Fatal(err)
	}
	if got := sync(); len(got["unchanged"]) != n || len(got) != 1 {
		t.Fatalf("sync without --lookback: %v, want all %d unchanged (the fingerprint cannot see the write)", got, n)
	}
	if code, out, _ := runCLI(t, "check", loc, arch); code != exitDifferences {
		t.Fatalf("check before the repair: exit %d, want %d\n%s", code, exitDifferences, out)
	}
	got := sync("--lookback", "10m")
	if len(got["committed"]) != 1 || !strings.HasSuffix(got["committed"][0], " (repairing)") || len(got["unchanged"]) != n-1 || len(got) != 2 {
		t.Fatalf("sync --lookback 10m: %v, want one run repaired and %d unchanged", got, n-1)
	}
	repaired := strings.TrimSuffix(got["committed"][0], " (repairing)")
	if code, out, errOut := runCLI(t, "check", loc, arch); code != 0 {
		t.Fatalf("check after the repair: exit %d\n%s%s", code, out, errOut)
	}
	got = sync("--lookback", "10m")
	if len(got["verified"]) != 1 || got["verified"][0] != repaired || len(got["unchanged"]) != n-1 || len(got) != 2 {
		t.Fatalf("sync --lookback 10m again: %v, want %s verified and %d unchanged", got, repaired, n-1)
	}
	if code, _, errOut := runCLI(t, "sync", "--accept-gaps", loc, arch, "--no-state", "--lookback", "10m"); code != exitUsage || !strings.Contains(errOut, "--no-state") {
		t.Errorf("--lookback with --no-state: exit %d %q, want a usage error", code, errOut)
	}
}
