package archive_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/sources/dataset"
)

// TestCheckTellsInterruptedWritesFromStrayFiles: a superseded file still in
// place while the committed one waits in .staging/ (what a crash between a
// commit and its moves leaves) is a note; the same superseded file put back
// beside the committed one (a glob would read the run twice) is a problem.
func TestCheckTellsInterruptedWritesFromStrayFiles(t *testing.T) {
	clean := filepath.Join(t.TempDir(), "archive")
	d := dataset.Canonical()
	write(t, clean, d)
	d.Runs[0].Run.Notes = "second version"
	write(t, clean, d)
	key := archive.EntityKey(d.Runs[0].Run.Origin.String())
	cur, _ := filepath.Glob(filepath.Join(clean, "runs", key, "*.parquet"))
	old, _ := filepath.Glob(filepath.Join(clean, "history", "runs", key, "*.parquet"))
	if len(cur) != 1 || len(old) != 1 {
		t.Fatalf("current %v, superseded %v: want one of each", cur, old)
	}
	rel := func(dir, p string) string { r, _ := filepath.Rel(dir, p); return r }
	move := func(dir, from, to string) {
		to = filepath.Join(dir, to)
		os.MkdirAll(filepath.Dir(to), 0o755)
		if err := os.Rename(filepath.Join(dir, from), to); err != nil {
			t.Fatal(err)
		}
	}
	curRel, oldRel := rel(clean, cur[0]), rel(clean, old[0])
	placed := strings.TrimPrefix(oldRel, "history/")

	t.Run("interrupted", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "archive")
		os.CopyFS(dir, os.DirFS(clean))
		move(dir, curRel, filepath.Join(".staging", curRel))
		move(dir, oldRel, placed)
		rep, err := archive.Check(dir)
		if err != nil || len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], filepath.Join(dir, placed)+": an earlier version") {
			t.Fatalf("Check: %v, notes %q", err, rep.Notes)
		}
	})
	t.Run("stray", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "archive")
		os.CopyFS(dir, os.DirFS(clean))
		move(dir, oldRel, placed)
		_, err := archive.Check(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, placed)+": archive file is damaged: the manifest does not list this file") {
			t.Fatalf("Check: %v; want the superseded file beside the current one named as damage", err)
		}
	})
}
