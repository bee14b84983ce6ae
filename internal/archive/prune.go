package archive

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// PruneReport says what Prune removed.
type PruneReport struct {
	Kept         []int64 // snapshots still readable
	Snapshots    int     // snapshot manifests removed
	Files, Blobs int     // superseded data files and unreferenced bodies removed
	Bytes        int64   // bytes freed
	// Retained lists what Prune would have removed but kept because it is
	// under Object Lock retention (object-lock, or the bucket's default
	// retention), with the date its retention ends: a later Prune removes
	// it. A snapshot manifest kept so stays readable (it is in Kept), and
	// so do the files it references.
	Retained []Retained
}

// Prune keeps the newest keep snapshots (at least 1: the current one) and
// removes older snapshot manifests, the superseded data files only they
// referenced, and artifact bodies no kept snapshot references. It takes
// the archive's lock exclusively (failing with ErrLocked while a writer has
// it open) and
// first finishes any interrupted write. A crash during Prune leaves
// unreferenced files that the next Prune removes; it never removes a file
// a kept snapshot needs. In object storage it removes nothing under
// Object Lock retention (see PruneReport.Retained).
func Prune(root string, keep int) (PruneReport, error) {
	var rep PruneReport
	if keep < 1 {
		return rep, errors.New("prune: keep at least 1 snapshot")
	}
	st, err := OpenStore(root)
	if err != nil {
		return rep, err
	}
	if _, err := st.Stat(ManifestFile); err != nil {
		st.Close()
		return rep, fmt.Errorf("%s is not a runferry archive: %w", root, err)
	}
	w, err := openStoreWriter(root, st, true)
	if err != nil {
		st.Close()
		return rep, err
	}
	defer w.Close()
	snaps, err := listSnapshots(st)
	if err != nil {
		return rep, err
	}
	cut := max(0, len(snaps)-keep)
	ret, _ := st.(retainer)
	// locked reports whether p is under retention, recording it if so.
	locked := func(p string) (bool, error) {
		if ret == nil {
			return false, nil
		}
		until, ok, err := ret.retainedUntil(p)
		if ok {
			rep.Retained = append(rep.Retained, Retained{Name: st.Name(p), Until: until})
		}
		return ok, err
	}
	for _, n := range snaps[:cut] {
		if ok, err := locked(snapshotPath(n)); err != nil {
			return rep, err
		} else if ok {
			rep.Kept = append(rep.Kept, n)
			continue
		}
		if err := st.Remove(snapshotPath(n)); err != nil {
			return rep, err
		}
		rep.Snapshots++
	}
	if err := st.SyncDir(snapshotsDir); err != nil && cut > 0 {
		return rep, err
	}
	rep.Kept = append(rep.Kept, snaps[cut:]...)
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
		m, err := loadSnapshot(st, n)
		if err != nil {
			return rep, err
		}
		mark(m)
	}
	type gone struct {
		p     string
		size  int64
		count *int
	}
	var drop []gone
	err = st.Walk(historyDir, func(rel string, size int64) error {
		if !files[strings.TrimPrefix(rel, historyDir+"/")] {
			drop = append(drop, gone{rel, size, &rep.Files})
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	err = st.Walk(blobsDir, func(rel string, size int64) error {
		if !blobs[path.Base(rel)] {
			drop = append(drop, gone{rel, size, &rep.Blobs})
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	for _, g := range drop {
		if ok, err := locked(g.p); err != nil {
			return rep, err
		} else if ok {
			continue
		}
		if err := st.Remove(g.p); err != nil {
			return rep, fmt.Errorf("removing %s: %w", st.Name(g.p), err)
		}
		*g.count++
		rep.Bytes += g.size
	}
	return rep, nil
}
