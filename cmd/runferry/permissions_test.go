package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestArchiveReadableByOtherUsers: an archive written under umask 022 can
// be listed, checked and copied out by another, unprivileged user, who may
// read its Parquet files and so must be able to read the rest (manifest,
// snapshots, current.sql, artifact bodies).
func TestArchiveReadableByOtherUsers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	testenv.OpenToAll(t, dir)
	bin := testenv.BuildOnce(t, ".")
	archive := filepath.Join(dir, "archive")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+archive, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	// The other user writes its copy into a folder of its own.
	work := filepath.Join(dir, "other")
	if err := os.Mkdir(work, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(work, "copy")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ls", "--count", "parquet:" + archive}, "1 experiment, 6 runs, 142 points"},
		{[]string{"archive", "check", archive}, "is intact"},
		{[]string{"copy", "--accept-gaps", "parquet:" + archive, "parquet:" + out, "--no-state"}, "copied 6 runs (142 points, 15 files"},
		{[]string{"check", "parquet:" + archive, "parquet:" + out}, "6 match, 0 differences"},
	} {
		cmd := exec.Command(bin, c.args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "HOME="+work, "XDG_STATE_HOME="+work)
		testenv.AsUnprivileged(t, cmd)
		got, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(got), c.want) {
			t.Errorf("runferry %s as another user: %v\n%s", strings.Join(c.args, " "), err, got)
		}
	}
}
