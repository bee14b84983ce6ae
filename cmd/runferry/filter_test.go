package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFiltersAsUsersWriteThem: run ids exactly as ls prints them, a W&B
// project without its entity, and a warning naming every pattern that
// matched nothing (the copy itself still succeeds: nothing asked for was
// lost).
func TestFiltersAsUsersWriteThem(t *testing.T) {
	code, out, errOut := runCLI(t, "ls", fixtures, "--no-count")
	if code != 0 {
		t.Fatalf("ls: %d %s", code, errOut)
	}
	var origin string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(f[1], "wandb:") && strings.HasSuffix(f[1], "fxa00001") {
			origin = f[1]
		}
	}
	if origin == "" {
		t.Fatalf("ls printed no fxa00001 run:\n%s", out)
	}
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state", "--run", origin, "--include", "runferry-fixtures")
	if code != 0 || !strings.Contains(out, "copied 1 run") || strings.Contains(out, "WARNING") {
		t.Fatalf("copy --run %s --include <project>: exit %d\n%s%s", origin, code, out, errOut)
	}
	code, out, _ = runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state", "--include", "runferry-fixtur", "--run", "fxz99999", "--dry-run")
	for _, want := range []string{`WARNING --include "runferry-fixtur" matched no experiment`, `WARNING --run "fxz99999" matched no run`, "would copy 0 runs"} {
		if !strings.Contains(out, want) {
			t.Errorf("copy with unmatched filters (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	_, _, errOut = runCLI(t, "ls", fixtures, "--no-count", "--exclude", "nothing-like-this")
	if !strings.Contains(errOut, `warning: --exclude "nothing-like-this" matched no experiment`) {
		t.Errorf("ls with an unmatched --exclude: stderr %q", errOut)
	}
	_, out, _ = runCLI(t, "check", fixtures, archive, "--run", origin, "--since", "2099-01-01")
	if !strings.Contains(out, "WARNING no run started within --since/--until") {
		t.Errorf("check with an empty time window:\n%s", out)
	}
}

// TestDropMetricsRecordedAndUndone: check applies the --drop-metrics the
// archive recorded with each run, and a later copy without it brings the dropped metrics (the transform is
// part of the fingerprint the archive keeps), even with no ledger: appended to each run from the
// cursors the archive keeps, only the 70 points dropped before are written.
func TestDropMetricsRecordedAndUndone(t *testing.T) {
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state", "--drop-metrics", "system/*")
	if code != 0 || !strings.Contains(out, "copied 6 runs (72 points") {
		t.Fatalf("copy --drop-metrics: exit %d\n%s%s", code, out, errOut)
	}
	// check reads the transform the archive recorded with each run.
	code, out, _ = runCLI(t, "check", fixtures, archive)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check after the transformed copy: exit %d\n%s", code, out)
	}
	// A transform given to check wins over the recorded one.
	code, out, _ = runCLI(t, "check", fixtures, archive, "--drop-metrics", "nothing")
	if code != exitDifferences || !strings.Contains(out, "metric system/proc.memory.percent missing") {
		t.Fatalf("check with another transform: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state", "--drop-metrics", "system/*")
	if code != 0 || !strings.Contains(out, "6 unchanged") {
		t.Fatalf("the same copy again: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state", "-v")
	if code != 0 || !strings.Contains(out, "copied 6 runs (70 points") || strings.Count(out, ", appended (") != 6 {
		t.Fatalf("copy without the transform: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "check", fixtures, archive)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check after the full copy: exit %d\n%s", code, out)
	}
}
