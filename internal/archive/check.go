package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
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
	var rep Report
	problem := func(err error) { rep.Problems = append(rep.Problems, err.Error()) }
	st, err := LoadState(root)
	if errors.Is(err, ErrDamaged) {
		problem(err)
		return rep, fmt.Errorf("archive %s: %w", root, err)
	}
	if err != nil {
		return rep, err
	}
	_, serr := os.Stat(abs(root, ManifestFile))
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
		if err := checkDataFile(root, f); err != nil {
			problem(err)
		}
	}
	var unlisted []string
	for _, table := range Tables {
		err := walkFiles(root, table, func(rel, full string) error {
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
		p := abs(root, blobPath(sha))
		got, size, err := hashFile(p)
		switch {
		case err != nil:
			problem(fmt.Errorf("%s: %w", p, err))
		case size != n || got != sha:
			problem(fmt.Errorf("%s: %w: %d bytes with SHA-256 %s, want %d bytes with SHA-256 %s", p, ErrDamaged, size, got, n, sha))
		}
	}
	snaps, err := listSnapshots(root)
	if err != nil {
		return rep, err
	}
	rep.Snapshots = snaps
	if serr == nil && m.Snapshot > 0 {
		if err := checkCurrentSnapshot(root, m); err != nil {
			problem(err)
		}
	}
	referenced := map[string]bool{} // history files and blobs of retained snapshots
	for _, n := range snaps {
		sm, err := LoadSnapshot(root, n)
		if err != nil {
			problem(err)
			continue
		}
		for _, f := range sm.allFiles() {
			referenced[path.Join(historyDir, f.Path)] = true
			full, err := resolve(root, f.Path)
			if err != nil {
				problem(fmt.Errorf("snapshot %d: %w", n, err))
			} else if fi, err := os.Stat(full); err != nil || fi.Size() != f.Bytes {
				problem(fmt.Errorf("snapshot %d: %s: %w: size differs from the manifest", n, full, ErrDamaged))
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
		if now, err := LoadState(root); err == nil {
			current = now.Manifest
		}
		inPlace := map[string]bool{} // table/key folders holding a current file
		for _, f := range current.allFiles() {
			listed[f.Path] = true
			if _, err := os.Stat(abs(root, f.Path)); err == nil {
				inPlace[path.Dir(f.Path)] = true
			}
		}
		if raw, err := readManifest(abs(root, ManifestFile)); err == nil && raw != nil {
			for _, f := range raw.allFiles() {
				referenced[path.Join(historyDir, f.Path)] = true
			}
		}
		for _, rel := range unlisted {
			full := abs(root, rel)
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
		err := walkFiles(root, dir, func(rel, full string) error {
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
func checkCurrentSnapshot(root string, m *Manifest) error {
	p := abs(root, snapshotPath(m.Snapshot))
	sm, err := readManifest(p)
	if err != nil {
		return nil // reported with the other snapshots
	}
	if sm == nil {
		return fmt.Errorf("%s: %w: the current snapshot %d has no snapshot manifest (deleted?)", p, ErrDamaged, m.Snapshot)
	}
	if sm.Checksum != m.Checksum {
		return fmt.Errorf("%s: %w: differs from %s, which was published as snapshot %d", p, ErrDamaged, abs(root, ManifestFile), m.Snapshot)
	}
	return nil
}

// checkDataFile verifies one current file: hash, size, and footer rows.
func checkDataFile(root string, f FileEntry) (err error) {
	full, err := resolve(root, f.Path)
	if err != nil {
		return err
	}
	if err := verifyFile(full, f); err != nil {
		return err
	}
	file, err := os.Open(full)
	if err != nil {
		return err
	}
	defer file.Close()
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
func listSnapshots(root string) ([]int64, error) {
	ents, err := os.ReadDir(abs(root, snapshotsDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(name, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// walkFiles calls fn with the slash path (relative to root) of every
// regular file under dir; a missing dir has none.
func walkFiles(root, dir string, fn func(rel, full string) error) error {
	err := filepath.WalkDir(abs(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), p)
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// VerifyRunFiles returns what is wrong with the files of the committed run
// e in the archive at root: each data file and artifact body that is
// missing or whose size differs from the record and, with hash, whose
// SHA-256 differs, naming the file; "" when all are whole. Without hash it
// only stats the files, cheap enough to run for every run of a sync.
// Writing the run again replaces what it reports (data files are new
// files; see putBlob for bodies).
func VerifyRunFiles(root string, e RunEntry, hash bool) (string, error) {
	var problems []string
	verify := func(p string, size int64, sha string) error {
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, fmt.Sprintf("%s is missing", p))
			return nil
		case err != nil:
			return err
		case fi.Size() != size:
			problems = append(problems, fmt.Sprintf("%s holds %d bytes, want %d", p, fi.Size(), size))
			return nil
		}
		if hash {
			got, _, err := hashFile(p)
			if err != nil {
				return err
			}
			if got != sha {
				problems = append(problems, fmt.Sprintf("%s has SHA-256 %s, want %s", p, got, sha))
			}
		}
		return nil
	}
	for _, f := range e.Files {
		full, err := resolve(root, f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			problems = append(problems, fmt.Sprintf("data file %s is missing", abs(root, f.Path)))
			continue
		}
		if err == nil {
			err = verify(full, f.Bytes, f.SHA256)
		}
		if err != nil {
			return "", err
		}
	}
	for _, b := range e.Blobs {
		if err := verify(abs(root, blobPath(b.SHA256)), b.Bytes, b.SHA256); err != nil {
			return "", err
		}
	}
	return strings.Join(problems, "; "), nil
}

// filesWhole reports whether every file is there with its recorded size.
func filesWhole(root string, files []FileEntry) bool {
	problem, err := VerifyRunFiles(root, RunEntry{Files: files}, false)
	return err == nil && problem == ""
}
