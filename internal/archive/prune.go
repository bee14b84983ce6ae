package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
)

// PruneReport says what Prune removed.
type PruneReport struct {
	Kept         []int64 // snapshots still readable
	Snapshots    int     // snapshot manifests removed
	Files, Blobs int     // superseded data files and unreferenced bodies removed
	Bytes        int64   // bytes freed
}

// Prune keeps the newest keep snapshots (at least 1: the current one) and
// removes older snapshot manifests, the superseded data files only they
// referenced, and artifact bodies no kept snapshot references. It takes
// the archive's lock exclusively (failing with ErrLocked while a writer has
// it open) and
// first finishes any interrupted write. A crash during Prune leaves
// unreferenced files that the next Prune removes; it never removes a file
// a kept snapshot needs.
func Prune(root string, keep int) (PruneReport, error) {
	var rep PruneReport
	if keep < 1 {
		return rep, errors.New("prune: keep at least 1 snapshot")
	}
	if _, err := os.Stat(abs(root, ManifestFile)); err != nil {
		return rep, fmt.Errorf("%s is not a runferry archive: %w", root, err)
	}
	w, err := openWriter(root, true)
	if err != nil {
		return rep, err
	}
	defer w.Close()
	snaps, err := listSnapshots(root)
	if err != nil {
		return rep, err
	}
	cut := max(0, len(snaps)-keep)
	for _, n := range snaps[:cut] {
		if err := os.Remove(abs(root, snapshotPath(n))); err != nil {
			return rep, err
		}
		rep.Snapshots++
	}
	if err := syncDir(abs(root, snapshotsDir)); err != nil && cut > 0 {
		return rep, err
	}
	rep.Kept = snaps[cut:]
	files, blobs := map[string]bool{}, map[string]bool{}
	mark := func(m *Manifest) {
		for _, f := range m.allFiles() {
			files[f.Path] = true
		}
		for _, r := range m.Runs {
			for _, b := range r.Blobs {
				blobs[b.SHA256] = true
			}
		}
	}
	mark(w.m)
	for _, n := range rep.Kept {
		m, err := LoadSnapshot(root, n)
		if err != nil {
			return rep, err
		}
		mark(m)
	}
	err = walkFiles(root, historyDir, func(rel, full string) error {
		if files[strings.TrimPrefix(rel, historyDir+"/")] {
			return nil
		}
		return remove(full, &rep.Files, &rep.Bytes)
	})
	if err != nil {
		return rep, err
	}
	err = walkFiles(root, blobsDir, func(rel, full string) error {
		if blobs[path.Base(rel)] {
			return nil
		}
		return remove(full, &rep.Blobs, &rep.Bytes)
	})
	return rep, err
}

func remove(full string, count *int, bytes *int64) error {
	fi, err := os.Stat(full)
	if err != nil {
		return err
	}
	if err := os.Remove(full); err != nil {
		return err
	}
	*count++
	*bytes += fi.Size()
	return nil
}
