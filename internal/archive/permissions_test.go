package archive_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/runferry/runferry/sources/dataset"
)

// TestModesFollowUmask: every file and folder an archive holds (manifest,
// snapshots, current.sql, lock, data files, blobs, history) is created with
// 0666 / 0777 less the process umask, as os.Create and os.MkdirAll do, so
// that whoever may read the Parquet files may also read the rest.
func TestModesFollowUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o077} {
		t.Run(fs.FileMode(umask).String(), func(t *testing.T) {
			old := syscall.Umask(umask)
			defer syscall.Umask(old)
			dir := filepath.Join(t.TempDir(), "archive")
			d := dataset.Canonical()
			write(t, dir, d)
			d.Runs[0].Run.Name += " (renamed)" // a second snapshot moves files to history/
			d.Runs[0].Run.End = d.Runs[0].Run.End.Add(1e9)
			write(t, dir, d)

			wantFile, wantDir := fs.FileMode(0o666&^umask), fs.FileMode(0o777&^umask)
			seen := map[string]bool{}
			err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				info, err := e.Info()
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				want := wantFile
				if e.IsDir() {
					want = wantDir
				}
				if got := info.Mode().Perm(); got != want {
					t.Errorf("%s: mode %v, want %v (umask %03o)", rel, got, want, umask)
				}
				seen[filepath.ToSlash(rel)] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{".", "manifest.json", "current.sql", ".lock", "snapshots/000001.json", "snapshots/000002.json", "blobs", "metrics", "history"} {
				if !seen[p] {
					t.Errorf("the archive holds no %s; the test expects to check its mode", p)
				}
			}
		})
	}
}

// TestOlderArchiveModesAreWidened: an archive whose manifest, current.sql,
// snapshots and bodies an earlier runferry created 0600 gets the umask's
// modes at the next write, so that other users can read all of it.
func TestOlderArchiveModesAreWidened(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "archive")
	d := dataset.Canonical()
	write(t, dir, d)
	narrowed := 0
	for _, pattern := range []string{"manifest.json", "current.sql", "snapshots/*", "blobs/sha256/*/*"} {
		files, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, f := range files {
			if err := os.Chmod(f, 0o600); err != nil {
				t.Fatal(err)
			}
			narrowed++
		}
	}
	if narrowed < 6 {
		t.Fatalf("only %d files to narrow", narrowed)
	}
	d.Runs[0].Run.Notes = "changed"
	write(t, dir, d)
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		if err == nil && info.Mode().Perm() != 0o644 {
			t.Errorf("%s: mode %v after the next write, want -rw-r--r--", p, info.Mode().Perm())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
