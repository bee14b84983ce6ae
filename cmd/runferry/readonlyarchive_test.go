package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestReadOnlyArchiveFoundAtOpen: a sync into an archive folder this user
// may not write (made by root, run as nobody) stops before the plan, exit
// 1, with one line naming the folder, whether or not a run needs writing.
// Before, the sync with nothing to write passed (exit 0), and the one with
// a run to write failed only after its plan, at "open .../.lock:
// permission denied". A dry run writes nothing and still runs.
func TestReadOnlyArchiveFoundAtOpen(t *testing.T) {
	fixtureRuns, _ := filepath.Glob("../../testdata/wandb/fixtures/wandb/offline-run-*fxa00001")
	if len(fixtureRuns) != 1 {
		t.Fatalf("fixture run fxa00001: %v", fixtureRuns)
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil { // let nobody reach the files
			t.Fatal(err)
		}
	}
	bin := testenv.BuildOnce(t, ".")
	data := filepath.Join(base, "wandb")
	copyFolder(t, fixtureRuns[0], filepath.Join(data, filepath.Base(fixtureRuns[0])))
	src := "wandb:" + data
	arch := filepath.Join(base, "archive")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, "parquet:"+arch, "--no-state"); code != 0 {
		t.Fatalf("copy as root: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := os.Chmod(arch, 0o755); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "fresh") // no archive yet, in a folder nobody may not write
	if err := os.Mkdir(fresh, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, dst, names string
	}{
		{"nothing to write", "parquet:" + arch, arch},
		{"a run to write", "parquet:" + filepath.Join(fresh, "archive"), fresh},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := asUnprivileged(t, bin, "sync", "--accept-gaps", src, c.dst, "--no-state")
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			want := "runferry: destination " + c.dst + ": this user may not write " + c.names + " (permission denied)"
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			if code != exitFatal || !strings.HasPrefix(lines[len(lines)-1], want) || strings.Contains(stderr.String(), "msg=plan") || stdout.Len() != 0 {
				t.Fatalf("sync as nobody: exit %d (%v), want %d, no plan, and a last line starting %q\nstdout:\n%s\nstderr:\n%s", code, err, exitFatal, want, stdout.String(), stderr.String())
			}
			dry := asUnprivileged(t, bin, "sync", "--accept-gaps", "--dry-run", src, c.dst, "--no-state")
			if out, err := dry.CombinedOutput(); err != nil {
				t.Fatalf("dry run as nobody: %v\n%s", err, out)
			}
		})
	}
}
