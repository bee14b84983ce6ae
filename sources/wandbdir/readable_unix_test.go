//go:build unix

package wandbdir

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestListFilesByMode: listing a run's files judging readability from the
// mode bits (fingerprints, headers) lists the same entries as opening
// each file (a copy): regular files of every mode, symlinks to a file, to
// a folder and to nothing, a FIFO.
func TestListFilesByMode(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "run-20250101_000000-lm1")
	writeRunFolder(t, dir, runRecord("lm1", "p", time.Unix(1735689600, 0)))
	files := filepath.Join(dir, "files")
	for i, mode := range []os.FileMode{0o644, 0o600, 0o640, 0o604, 0o400, 0o040, 0o004, 0o000} {
		p := filepath.Join(files, fmt.Sprintf("m%d.txt", i))
		if err := os.WriteFile(p, []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(files, "sub"), 0o755)
	os.WriteFile(filepath.Join(files, "sub", "deep.txt"), []byte("deep"), 0o644)
	os.Symlink("m0.txt", filepath.Join(files, "link.txt"))
	os.Symlink("sub", filepath.Join(files, "linkdir"))
	os.Symlink("nowhere", filepath.Join(files, "dangling"))
	if err := syscall.Mkfifo(filepath.Join(files, "fifo"), 0o644); err != nil {
		t.Log("no FIFO:", err)
	}
	src := sourceAt(t, root)
	ri, err := src.find(context.Background(), local(t, root, "p/lm1"))
	if err != nil {
		t.Fatal(err)
	}
	opened, err := listFiles(ri, false)
	if err != nil {
		t.Fatal(err)
	}
	byMode, err := listFiles(ri, true)
	if err != nil {
		t.Fatal(err)
	}
	show := func(fs []fileEntry) string {
		var b strings.Builder
		for _, f := range fs {
			fmt.Fprintf(&b, "%s size=%d problem=%q unreadable=%v\n", f.path, f.size, f.problem, f.unreadable)
		}
		return b.String()
	}
	if a, b := show(byMode), show(opened); a != b {
		t.Fatalf("by mode:\n%s\nopened:\n%s", a, b)
	}
	if len(opened) < 12 {
		t.Fatalf("listed %d files, want at least 12:\n%s", len(opened), show(opened))
	}
}

// TestModeGrantsRead: the class that matches first decides (an owner
// without the read bit is refused even when others may read).
func TestModeGrantsRead(t *testing.T) {
	const me, mine, other = 1000, 100, 2000
	gids := []uint32{100, 27}
	for _, c := range []struct {
		perm     fs.FileMode
		uid, gid uint32
		want     bool
	}{
		{0o644, me, mine, true},
		{0o400, me, 5, true},
		{0o044, me, mine, false}, // owner class decides: no read bit
		{0o040, other, 27, true}, // a supplementary group
		{0o404, other, mine, false},
		{0o004, other, 5, true},
		{0o640, other, 5, false},
		{0o000, me, mine, false},
	} {
		if got := modeGrantsRead(c.perm, c.uid, c.gid, me, gids); got != c.want {
			t.Errorf("perm %o uid %d gid %d: got %v, want %v", c.perm, c.uid, c.gid, got, c.want)
		}
	}
}
