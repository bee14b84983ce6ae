package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// AsUnprivileged makes cmd run as a user without privileges, for tests of
// file permissions (root ignores modes, so such a test run as root proves
// nothing): as root, the user "nobody" (or "postgres") with no
// supplementary groups; otherwise the current user, unchanged. Everything
// cmd touches must be reachable by that user (t.TempDir is 0700: open it up
// with OpenToAll).
func AsUnprivileged(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	cred, err := unprivilegedCredential()
	if err != nil {
		Unavailable(t, "an unprivileged user", err.Error())
		return
	}
	if cred == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: cred.Uid, Gid: cred.Gid, Groups: []uint32{}}
}

// OpenToAll gives dir and each of its parents up to the system's temporary
// folder mode 0755, so that an unprivileged user can reach what is inside
// (t.TempDir creates its folders 0700). It changes nothing outside the
// temporary folder.
func OpenToAll(t testing.TB, dir string) {
	t.Helper()
	tmp := os.TempDir()
	for d := filepath.Clean(dir); strings.HasPrefix(d, filepath.Clean(tmp)+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
