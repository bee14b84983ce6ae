package archive

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// Report is the result of Check.
type Report struct {
	Snapshot  int64    // current snapshot
	Pending   int      // committed journal lines not yet in manifest.json
	Snapshots []int64  // snapshots still readable, oldest first
	Runs      int      // current runs
	Models    int      // current registered models (format version 3)
	Files     int      // current data files verified
	Blobs     int      // artifact bodies verified
	Bytes     int64    // bytes verified
	Problems  []string // one line per problem (damage), each naming the file
	// Notes lists files that are harmless but not referenced by any
	// retained snapshot (bodies and superseded files an interrupted write
	// or prune left behind; prune removes them), each naming the file.
	Notes []string
}

// OK reports whether Check found no problem.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Check verifies the archive at root without changing it: the manifest's
// own checksum; that the current snapshot's manifest (snapshots/<n>.json)
// exists and matches manifest.json; for every current data file its
// presence, size, SHA-256 and Parquet footer row count; that the table
// folders hold no file the state does not list (a copied or stray file
// there would be read twice by a glob over the folder and by current.sql);
// every referenced artifact body against its SHA-256; and that every
// retained snapshot manifest is intact and its files present.
//
// It returns the report in every case. The error is non-nil when anything
// is wrong: it wraps ErrDamaged and names each problem when the archive is
// damaged (Problems lists them), and is a plain error when the archive
// could not be checked at all (not an archive, unreadable). Leftover
// temporary files of an interrupted write are not problems: the next write
// removes them.
func Check(root string) (Report, error) {
	store, err := OpenStore(root)
	if err != nil {
		return Report{}, err
	}
	defer store.Close()
	return checkStore(root, store)
}

func checkStore(root string, store Store) (Report, error) {
	var rep Report
	problem := func(err error) { rep.Problems = append(rep.Problems, err.Error()) }
	st, err := loadState(store)
	if errors.Is(err, ErrDamaged) {
		problem(err)
		return rep, fmt.Errorf("archive %s: %w", root, err)
	}
	if err != nil {
		return rep, err
	}
	_, serr := store.Stat(ManifestFile)
	if serr != nil && st.Pending == 0 {
		return rep, fmt.Errorf("%s is not a runferry archive: %w", root, serr)
	}
	m := st.Manifest
	rep.Snapshot, rep.Pending, rep.Runs, rep.Models = m.Snapshot, st.Pending, len(m.Runs), len(m.Models)
	listed := map[string]bool{}
	for _, f := range m.allFiles() {
		listed[f.Path] = true
		rep.Files++
		rep.Bytes += f.Bytes
		if err := checkDataFile(store, f); err != nil {
			problem(err)
		}
	}
	var unlisted []string
	for _, table := range Tables {
		err := store.Walk(table, func(rel string, _ int64) error {
			if !listed[rel] {
				unlisted = append(unlisted, rel)
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	blobs := map[string]int64{}
	for _, r := range m.Runs {
		for _, b := range r.Blobs {
			blobs[b.SHA256] = b.Bytes
		}
	}
	for sha, n := range blobs {
		rep.Blobs++
		rep.Bytes += n
		p := store.Name(blobPath(sha))
		got, size, err := hashStored(store, blobPath(sha))
		switch {
		case err != nil:
			problem(fmt.Errorf("%s: %w", p, err))
		case size != n || got != sha:
			problem(fmt.Errorf("%s: %w: %d bytes with SHA-256 %s, want %d bytes with SHA-256 %s", p, ErrDamaged, size, got, n, sha))
		}
	}
	snaps, err := listSnapshots(store)
	if err != nil {
		return rep, err
	}
	rep.Snapshots = snaps
	if serr == nil && m.Snapshot > 0 {
		if err := checkCurrentSnapshot(store, m); err != nil {
			problem(err)
		}
	}
	referenced := map[string]bool{} // history files and blobs of retained snapshots
	for _, n := range snaps {
		sm, err := loadSnapshot(store, n)
		if err != nil {
			problem(err)
			continue
		}
		for _, f := range sm.allFiles() {
			referenced[path.Join(historyDir, f.Path)] = true
			rel, err := resolve(store, f.Path)
			if err != nil {
				problem(fmt.Errorf("snapshot %d: %w", n, err))
			} else if fi, err := store.Stat(rel); err != nil || fi.Size != f.Bytes {
				problem(fmt.Errorf("snapshot %d: %s: %w: size differs from the manifest", n, store.Name(rel), ErrDamaged))
			}
		}
		for _, r := range sm.Runs {
			for _, b := range r.Blobs {
				referenced[blobPath(b.SHA256)] = true
			}
		}
	}
	for sha := range blobs {
		referenced[blobPath(sha)] = true
	}
	if len(unlisted) > 0 {
		// A writer at work commits runs while we look: a file it moved in
		// after we read the state is listed by the state as it is now.
		current := m
		if now, err := loadState(store); err == nil {
			current = now.Manifest
		}
		inPlace := map[string]bool{} // table/key folders holding a current file
		for _, f := range current.allFiles() {
			listed[f.Path] = true
			if _, err := store.Stat(f.Path); err == nil {
				inPlace[path.Dir(f.Path)] = true
			}
		}
		if raw, err := readManifest(store, ManifestFile); err == nil && raw != nil {
			for _, f := range raw.allFiles() {
				referenced[path.Join(historyDir, f.Path)] = true
			}
		}
		for _, rel := range unlisted {
			full := store.Name(rel)
			switch {
			case listed[rel]:
			case referenced[path.Join(historyDir, rel)] && !inPlace[path.Dir(rel)]:
				// Between a commit and the moves that follow it, or between
				// a recovery's publish and its moves, the superseded version
				// of a run is still in place and the committed one is not.
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: an earlier version of this run's rows, left in place by an interrupted write (queries of the folder see it instead of the committed version until the next write or prune moves it to history/)", full))
			default:
				table, _, _ := strings.Cut(rel, "/")
				problem(fmt.Errorf("%s: %w: the manifest does not list this file, so a read of the %s folder (and current.sql) sees its rows besides the listed ones; move it out of the archive", full, ErrDamaged, table))
			}
		}
	}
	for _, dir := range []string{historyDir, blobsDir} {
		err := store.Walk(dir, func(rel string, _ int64) error {
			full := store.Name(rel)
			if !referenced[rel] && !isTmp(rel) {
				rep.Notes = append(rep.Notes, fmt.Sprintf("%s: not referenced by any retained snapshot (left by an interrupted write or prune; 'runferry archive prune' removes it)", full))
			}
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	slices.Sort(rep.Problems)
	slices.Sort(rep.Notes)
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("archive %s: %w: %d problem(s):\n%s", root, ErrDamaged, len(rep.Problems), strings.Join(rep.Problems, "\n"))
	}
	return rep, nil
}

// checkCurrentSnapshot verifies that the snapshot manifest.json was
// published as (snapshots/<n>.json) exists and is the same document: it is
// what ?snapshot=n and a later prune rely on.
func checkCurrentSnapshot(st Store, m *Manifest) error {
	p := st.Name(snapshotPath(m.Snapshot))
	sm, err := readManifest(st, snapshotPath(m.Snapshot))
	if err != nil {
		return nil // reported with the other snapshots
	}
	if sm == nil {
		return fmt.Errorf("%s: %w: the current snapshot %d has no snapshot manifest (deleted?)", p, ErrDamaged, m.Snapshot)
	}
	if sm.Checksum != m.Checksum {
		return fmt.Errorf("%s: %w: differs from %s, which was published as snapshot %d", p, ErrDamaged, st.Name(ManifestFile), m.Snapshot)
	}
	return nil
}

// checkDataFile verifies one current file: hash, size, and footer rows.
func checkDataFile(st Store, f FileEntry) (err error) {
	rel, err := resolve(st, f.Path)
	if err != nil {
		return err
	}
	full := st.Name(rel)
	file, err := st.Open(rel)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := verifyFile(full, file, f); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w: %v", full, ErrDamaged, p)
		}
	}()
	pf, err := parquet.OpenFile(file, f.Bytes, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Errorf("%s: %w: %v", full, ErrDamaged, err)
	}
	if pf.NumRows() != f.Rows {
		return fmt.Errorf("%s: %w: %d rows, manifest says %d", full, ErrDamaged, pf.NumRows(), f.Rows)
	}
	return nil
}

// listSnapshots returns the numbers of snapshots/<n>.json, ascending.
func listSnapshots(st Store) ([]int64, error) {
	var out []int64
	err := st.Walk(snapshotsDir, func(p string, _ int64) error {
		name, ok := strings.CutSuffix(path.Base(p), ".json")
		if !ok || path.Dir(p) != snapshotsDir {
			return nil
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil {
			out = append(out, n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// VerifyRunFiles returns what is wrong with the files of the committed run
// e in the archive at root: each data file and artifact body that is
// missing or whose size differs from the record and, with hash, whose
// SHA-256 differs, naming the file; "" when all are whole. Without hash it
// only stats the files, cheap enough to run for every run of a sync.
// Writing the run again replaces what it reports (data files are new
// files; see putBlob for bodies).
func VerifyRunFiles(root string, e RunEntry, hash bool) (string, error) {
	st, err := OpenStore(root)
	if err != nil {
		return "", err
	}
	defer st.Close()
	return verifyRunFiles(st, e, hash)
}

// VerifyRunFilesIn is VerifyRunFiles in an open store.
func VerifyRunFilesIn(st Store, e RunEntry, hash bool) (string, error) {
	return verifyRunFiles(st, e, hash)
}

func verifyRunFiles(st Store, e RunEntry, hash bool) (string, error) {
	var problems []string
	// verify checks the file at p; fi is what Stat said of it, when
	// known (nil: verify asks).
	verify := func(p string, fi *ObjectInfo, size int64, sha string) error {
		var err error
		if fi == nil {
			fi = new(ObjectInfo)
			*fi, err = st.Stat(p)
		}
		switch {
		case notExist(err):
			problems = append(problems, fmt.Sprintf("%s is missing", st.Name(p)))
			return nil
		case err != nil:
			return err
		case fi.Size != size:
			problems = append(problems, fmt.Sprintf("%s holds %d bytes, want %d", st.Name(p), fi.Size, size))
			return nil
		}
		if hash {
			got, _, err := hashStored(st, p)
			if err != nil {
				return err
			}
			if got != sha {
				problems = append(problems, fmt.Sprintf("%s has SHA-256 %s, want %s", st.Name(p), got, sha))
			}
		}
		return nil
	}
	for _, f := range e.Files {
		rel, info, err := resolveStat(st, f.Path)
		if notExist(err) {
			problems = append(problems, fmt.Sprintf("data file %s is missing", st.Name(f.Path)))
			continue
		}
		if err == nil {
			err = verify(rel, &info, f.Bytes, f.SHA256)
		}
		if err != nil {
			return "", err
		}
	}
	for _, b := range e.Blobs {
		if err := verify(blobPath(b.SHA256), nil, b.Bytes, b.SHA256); err != nil {
			return "", err
		}
	}
	return strings.Join(problems, "; "), nil
}

// filesWhole reports whether every file is there with its recorded size.
func filesWhole(st Store, files []FileEntry) bool {
	problem, err := verifyRunFiles(st, RunEntry{Files: files}, false)
	return err == nil && problem == ""
}
