package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	Files     int      // current data files verified
	Blobs     int      // artifact bodies verified
	Bytes     int64    // bytes verified
	Problems  []string // one line per problem, each naming the file
}

// OK reports whether Check found no problem.
func (r Report) OK() bool { return len(r.Problems) == 0 }

// Check verifies the archive at root without changing it: the manifest's
// own checksum; for every current data file its presence, size, SHA-256
// and Parquet footer row count; every referenced artifact body against its
// SHA-256; and that every retained snapshot manifest is intact and its
// files present. It returns an error, naming each damaged file, when
// anything is wrong, and the report in every case. Leftover temporary
// files of an interrupted write are not problems: the next write removes
// them.
func Check(root string) (Report, error) {
	var rep Report
	st, err := LoadState(root)
	if err != nil {
		return rep, err
	}
	if _, err := os.Stat(abs(root, ManifestFile)); err != nil && st.Pending == 0 {
		return rep, fmt.Errorf("%s is not a runferry archive: %w", root, err)
	}
	m := st.Manifest
	rep.Snapshot, rep.Pending, rep.Runs = m.Snapshot, st.Pending, len(m.Runs)
	problem := func(err error) { rep.Problems = append(rep.Problems, err.Error()) }
	for _, f := range m.allFiles() {
		rep.Files++
		rep.Bytes += f.Bytes
		if err := checkDataFile(root, f); err != nil {
			problem(err)
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
	for _, n := range snaps {
		sm, err := LoadSnapshot(root, n)
		if err != nil {
			problem(err)
			continue
		}
		for _, f := range sm.allFiles() {
			full, err := resolve(root, f.Path)
			if err != nil {
				problem(fmt.Errorf("snapshot %d: %w", n, err))
			} else if fi, err := os.Stat(full); err != nil || fi.Size() != f.Bytes {
				problem(fmt.Errorf("snapshot %d: %s: %w: size differs from the manifest", n, full, ErrDamaged))
			}
		}
	}
	slices.Sort(rep.Problems)
	if len(rep.Problems) > 0 {
		return rep, fmt.Errorf("archive %s has %d problem(s):\n%s", root, len(rep.Problems), strings.Join(rep.Problems, "\n"))
	}
	return rep, nil
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
