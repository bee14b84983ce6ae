package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestRestoreOneRunWritesOnlyItsExperiment: restoring one run from an
// archive of the five W&B sample projects (--run), or the runs started
// since a date (--since), writes the experiments of those runs only; it
// wrote every experiment of the archive, empty (5 experiments, 1 run),
// and in MLflow each was a new empty experiment in the UI. check with the
// same selection passes, and a later copy without it brings the other
// experiments with their runs.
func TestRestoreOneRunWritesOnlyItsExperiment(t *testing.T) {
	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "all")
	if code, out, errOut := runCLI(t, "copy", "--no-state", "--accept-gaps", "-q", "wandb:"+testenv.Samples(t, "wandb"), archive); code != 0 {
		t.Fatalf("copy into the archive: exit %d\n%s\n%s", code, out, errOut)
	}
	lastOf := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}
	for _, c := range []struct {
		name   string
		args   []string
		listed string
	}{
		{"run", []string{"--run", "klt5o1bl"}, "1 experiment, 1 run,"},
		{"since", []string{"--since", "2024-01-01"}, "3 experiments, 3 runs,"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := "sqlite:" + filepath.Join(dir, c.name+".db")
			code, out, errOut := runCLI(t, append([]string{"copy", "--no-state", archive, dst}, c.args...)...)
			if code != 0 {
				t.Fatalf("copy %v: exit %d\n%s\n%s", c.args, code, out, errOut)
			}
			_, out, _ = runCLI(t, "ls", dst)
			if !strings.HasPrefix(lastOf(out), c.listed) {
				t.Errorf("after copy %v the destination holds %q, want %q...", c.args, lastOf(out), c.listed)
			}
			if code, out, errOut := runCLI(t, append([]string{"check", archive, dst}, c.args...)...); code != 0 {
				t.Errorf("check %v: exit %d\n%s\n%s", c.args, code, out, errOut)
			}
			if code, out, errOut := runCLI(t, "copy", "--no-state", archive, dst); code != 0 {
				t.Fatalf("copy of the rest: exit %d\n%s\n%s", code, out, errOut)
			}
			_, out, _ = runCLI(t, "ls", dst)
			if !strings.HasPrefix(lastOf(out), "5 experiments, 8 runs,") {
				t.Errorf("after the whole copy the destination holds %q, want 5 experiments, 8 runs", lastOf(out))
			}
			if code, out, errOut := runCLI(t, "check", archive, dst); code != 0 {
				t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}
