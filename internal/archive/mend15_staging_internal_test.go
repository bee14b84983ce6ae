package archive

import (
	"os"
	"testing"
)

// TestCloseClearsLocalStaging: after writers that committed runs close, a
// local archive holds no .staging/ folder, not even the empty folders the
// moves out of it leave behind (Writer.Close's contract, docs/ARCHIVE.md).
func TestCloseClearsLocalStaging(t *testing.T) {
	root := newCommitTestArchive(t, 3)
	if _, err := os.Stat(abs(root, stagingDir)); !notExist(err) {
		left := []string{}
		if ents, rerr := os.ReadDir(abs(root, stagingDir)); rerr == nil {
			for _, e := range ents {
				left = append(left, e.Name())
			}
		}
		t.Fatalf(".staging/ is left after a clean close (stat: %v, holds %q)", err, left)
	}
	// A second writer that appends and closes leaves none either.
	w, err := OpenWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	writeCommitTestRun(t, w, 7, 0, 4, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs(root, stagingDir)); !notExist(err) {
		t.Fatalf(".staging/ is left after a second writer's close: %v", err)
	}
	if rep, err := Check(root); err != nil || len(rep.Notes) > 0 {
		t.Fatalf("check: %v, notes %q", err, rep.Notes)
	}
}
