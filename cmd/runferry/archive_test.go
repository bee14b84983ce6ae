package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
)

// TestArchiveCheckFindsExtraAndMissingFiles: `archive check` reports, by
// path and with exit 4, a copy of a run's metrics file beside the real one
// (a glob over the folder would count that run twice), a deleted or altered
// current snapshot manifest, and a damaged manifest.json; a body no
// snapshot references is a note, not damage; a folder that is no archive
// is a fatal error (exit 1).
func TestArchiveCheckFindsExtraAndMissingFiles(t *testing.T) {
	clean := filepath.Join(t.TempDir(), "archive")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+clean, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "archive", "check", clean)
	if code != 0 || !strings.Contains(out, "is intact: snapshot 1 (1 kept), 6 runs") || strings.Contains(out, "NOTE") {
		t.Fatalf("clean archive: exit %d\n%s\n%s", code, out, errOut)
	}
	metricsFile := func(dir string) string {
		files, _ := filepath.Glob(filepath.Join(dir, "metrics", "*", "*.parquet"))
		if len(files) == 0 {
			t.Fatal("no metrics file")
		}
		return files[0]
	}
	copyFile := func(from, to string) {
		data, err := os.ReadFile(from)
		if err == nil {
			err = os.WriteFile(to, data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		damage func(dir string) string // returns the path the report must name
		code   int
		want   string
	}{
		{"metrics file copied beside the real one", func(dir string) string {
			f := metricsFile(dir)
			extra := filepath.Join(filepath.Dir(f), "000001-copy.parquet")
			copyFile(f, extra)
			return extra
		}, 4, "PROBLEM %s: archive file is damaged: the manifest does not list this file"},
		{"stray file at the top of a table folder", func(dir string) string {
			extra := filepath.Join(dir, "runs", "notes.txt")
			copyFile(filepath.Join(dir, "manifest.json"), extra)
			return extra
		}, 4, "PROBLEM %s: archive file is damaged: the manifest does not list this file"},
		{"current snapshot deleted", func(dir string) string {
			f := filepath.Join(dir, "snapshots", "000001.json")
			os.Remove(f)
			return f
		}, 4, "PROBLEM %s: archive file is damaged: the current snapshot 1 has no snapshot manifest"},
		{"current snapshot replaced by another valid manifest", func(dir string) string {
			other := filepath.Join(t.TempDir(), "other")
			if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+other, "--no-state", "--run", "fxa00001"); code != 0 {
				t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
			}
			f := filepath.Join(dir, "snapshots", "000001.json")
			copyFile(filepath.Join(other, "snapshots", "000001.json"), f)
			return f
		}, 4, "PROBLEM %s: archive file is damaged: differs from"},
		{"manifest damaged", func(dir string) string {
			f := filepath.Join(dir, "manifest.json")
			fi, _ := os.Stat(f)
			os.Truncate(f, fi.Size()-40)
			return f
		}, 4, "PROBLEM %s: archive file is damaged: not a valid manifest"},
		{"unreferenced body", func(dir string) string {
			f := filepath.Join(dir, "blobs", "sha256", "00", strings.Repeat("0", 64))
			os.MkdirAll(filepath.Dir(f), 0o755)
			os.WriteFile(f, []byte("left over"), 0o644)
			return f
		}, 0, "NOTE %s: not referenced by any retained snapshot"},
		{"no archive", func(dir string) string {
			os.Remove(filepath.Join(dir, "manifest.json"))
			return dir
		}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "archive")
			if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
				t.Fatal(err)
			}
			file := tt.damage(dir)
			code, out, errOut := runCLI(t, "archive", "check", dir)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s\n%s", code, tt.code, out, errOut)
			}
			if tt.want == "" {
				if !strings.Contains(errOut, dir) {
					t.Errorf("error does not name %s: %s", dir, errOut)
				}
				return
			}
			if want := strings.ReplaceAll(tt.want, "%s", file); !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s\n%s", want, out, errOut)
			}
			if tt.code == 4 && strings.Contains(out, "intact") {
				t.Errorf("damaged archive reported intact:\n%s", out)
			}
		})
	}
}

// TestArchiveCompactCommand: compact of an archive whose runs each hold
// one metrics file has nothing to do; while a writer has the archive open
// it is refused (exit 1) and says why. (The merging itself is tested in
// internal/archive, with DuckDB and pyarrow reading.)
func TestArchiveCompactCommand(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+dir, "--no-state", "-q"); code != 0 {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	for _, args := range [][]string{{"archive", "compact", dir, "--dry-run"}, {"archive", "compact", dir}} {
		if code, out, errOut := runCLI(t, args...); code != 0 || out != "nothing to compact: every run holds its points in one metrics file\n" {
			t.Errorf("%v: exit %d, %q %q", args, code, out, errOut)
		}
	}
	w, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if code, _, errOut := runCLI(t, "archive", "compact", dir); code != 1 || !strings.Contains(errOut, "archive is in use by another writer") {
		t.Errorf("compact beside a writer: exit %d, %q; want 1 and why", code, errOut)
	}
}
