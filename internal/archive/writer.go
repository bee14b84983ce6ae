package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/schema"
)

// ErrLocked is returned by OpenWriter when another writer holds the archive.
var ErrLocked = errors.New("archive is in use by another writer")

// Writer adds snapshots to an archive. Only one Writer may have an archive
// open at a time (an exclusive lock on ARCHIVE/.lock, released by the
// kernel if the process dies). Its methods are safe for concurrent use.
//
// Durability: a run or experiment is committed once its journal line is
// fsynced; it is then visible to readers (LoadState) and survives a crash.
// Close, or the next OpenWriter after a crash, folds the journal into a new
// snapshot and manifest.json.
type Writer struct {
	root string
	lock *os.File

	expMu    sync.Mutex // serialises PutExperiment, so concurrent calls write once
	modelMu  sync.Mutex // serialises PutModel likewise
	mu       sync.Mutex
	m        *Manifest // current state, journal folded in
	snapshot int64     // the snapshot being written: m.Snapshot + 1 at open
	journal  *os.File  // opened at the first commit
	pending  int       // journal records written
	source   string
	closed   bool
}

// OpenWriter opens (creating if needed) the archive at root for writing. It
// first finishes what a crashed writer left: folds its journal into a
// snapshot, moves files to where the manifest says they belong, and deletes
// temporary files. A folder that holds anything but an archive is refused.
func OpenWriter(root string) (*Writer, error) {
	if err := checkArchiveDir(root); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, dirMode); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(abs(root, lockFile), os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		return nil, err
	}
	if err := lockFileExclusive(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%s: %w", root, ErrLocked)
	}
	w := &Writer{root: root, lock: lock}
	if err := w.recover(); err != nil {
		lock.Close()
		return nil, err
	}
	return w, nil
}

// checkArchiveDir refuses a non-empty folder that is not an archive.
func checkArchiveDir(root string) error {
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	ours := append([]string{ManifestFile, snapshotsDir, journalDir, historyDir, stagingDir, blobsDir, lockFile, "current.sql"}, Tables...)
	for _, e := range ents {
		if e.Name() == ManifestFile {
			return nil
		}
		if !slices.Contains(ours, e.Name()) && !isTmp(e.Name()) {
			return fmt.Errorf("%s is not a runferry archive (it holds %s but no %s); use an empty or new folder", root, e.Name(), ManifestFile)
		}
	}
	return nil
}

// recover brings the folder in line with the current state; see OpenWriter.
func (w *Writer) recover() error {
	st, err := LoadState(w.root)
	if err != nil {
		return err
	}
	w.m = st.Manifest
	if st.Pending > 0 {
		if err := w.publish(); err != nil {
			return err
		}
	}
	w.snapshot = w.m.Snapshot + 1
	if err := w.removeStaleJournals(); err != nil {
		return err
	}
	if err := syncTree(w.root, w.m); err != nil {
		return err
	}
	if err := os.RemoveAll(abs(w.root, stagingDir)); err != nil {
		return err
	}
	if err := removeTmp(abs(w.root, blobsDir)); err != nil {
		return err
	}
	return upgradeModes(w.root)
}

// upgradeModes gives the files that earlier versions of runferry created
// 0600 whatever the umask (manifest.json, current.sql,
// snapshots and artifact bodies) the mode a file created now gets
// (fileMode less the umask), so that an archive written by an older
// version becomes readable by the users who may read its Parquet files.
// It runs only when manifest.json is 0600 while a new file would be
// wider, and changes manifest.json last, so an interrupted upgrade is
// resumed by the next writer. Files the process does not own keep their
// mode (chmod is refused; not an error).
func upgradeModes(root string) error {
	fi, err := os.Stat(abs(root, ManifestFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		return nil
	}
	probe, err := createTemp(root, ".mode-probe-", tmpSuffix)
	if err != nil {
		return err
	}
	pi, err := probe.Stat()
	probe.Close()
	os.Remove(probe.Name())
	if err != nil {
		return err
	}
	want := pi.Mode().Perm()
	if want == 0o600 {
		return nil
	}
	widen := func(p string) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() == 0o600 {
			os.Chmod(p, want)
		}
	}
	for _, dir := range []string{snapshotsDir, blobsDir} {
		if err := walkFiles(root, dir, func(_, full string) error { widen(full); return nil }); err != nil {
			return err
		}
	}
	widen(abs(root, "current.sql"))
	widen(abs(root, ManifestFile))
	return nil
}

func (w *Writer) removeStaleJournals() error {
	ents, err := os.ReadDir(abs(w.root, journalDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range ents {
		n, err := strconv.ParseInt(strings.TrimSuffix(e.Name(), ".jsonl"), 10, 64)
		if err != nil || n <= w.m.Snapshot {
			if err := os.Remove(abs(w.root, journalDir+"/"+e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// syncTree makes the table folders hold exactly the files m lists: first
// every unlisted file moves to history/, then every listed file not in
// place moves in from .staging/ or history/. In that order the folders
// never hold two versions of one run, even if interrupted.
func syncTree(root string, m *Manifest) error {
	listed := map[string]bool{}
	for _, f := range m.allFiles() {
		listed[f.Path] = true
	}
	for _, table := range Tables {
		err := filepath.WalkDir(abs(root, table), func(p string, d fs.DirEntry, err error) error {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if isTmp(d.Name()) {
				return os.Remove(p)
			}
			if listed[rel] {
				return nil
			}
			return moveFile(p, abs(root, path.Join(historyDir, rel)))
		})
		if err != nil {
			return err
		}
	}
	for p := range listed {
		if _, err := os.Stat(abs(root, p)); err == nil {
			continue
		}
		full, err := resolve(root, p)
		if errors.Is(err, fs.ErrNotExist) {
			// Lost after its commit (no crash loses a committed file): Check
			// and readers name it, and writing its run or experiment again
			// (see VerifyRunFiles, PutExperiment) replaces it.
			continue
		}
		if err != nil {
			return err
		}
		if err := moveFile(full, abs(root, p)); err != nil {
			return err
		}
	}
	return nil
}

func removeTmp(dir string) error {
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && isTmp(d.Name()) {
			return os.Remove(p)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// SetSource records the (redacted) location the data comes from in the
// manifests this writer publishes.
func (w *Writer) SetSource(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.source = s
}

// Snapshot returns the number of the snapshot this writer is adding.
func (w *Writer) Snapshot() int64 { return w.snapshot }

// Run returns the committed entry of the run with origin, if any.
func (w *Writer) Run(origin string) (RunEntry, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.m.Run(origin)
}

// HasExperiment reports whether the experiment with origin is stored.
func (w *Writer) HasExperiment(origin string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := slices.BinarySearchFunc(w.m.Experiments, origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	return ok
}

// PutExperiment stores e unless the archive already holds it unchanged
// with its files there at their recorded sizes (a lost or truncated file is
// written again).
func (w *Writer) PutExperiment(e schema.Experiment) error {
	origin := e.Origin.String()
	row := ExperimentToRow(e, 0)
	b, _ := json.Marshal(row)
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	w.expMu.Lock()
	defer w.expMu.Unlock()
	w.mu.Lock()
	i, ok := slices.BinarySearchFunc(w.m.Experiments, origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	same := ok && w.m.Experiments[i].Digest == digest
	var files, traces []FileEntry // its files; its traces file, which a new row keeps
	var tracesDigest string
	if ok {
		files = w.m.Experiments[i].Files
		tracesDigest = w.m.Experiments[i].TracesDigest
		for _, f := range files {
			if f.Table == TableTraces {
				traces = append(traces, f)
			}
		}
	}
	w.mu.Unlock()
	if same && filesWhole(w.root, files) {
		return nil
	}
	if !filesWhole(w.root, traces) {
		traces, tracesDigest = nil, "" // lost: the next PutTraces writes them again
	}
	row.Snapshot = w.snapshot
	written, err := writeTable(w.root, TableExperiments, origin, w.snapshot, []ExperimentRow{row})
	if err != nil {
		return err
	}
	return w.commit(journalRecord{Experiment: &ExperimentEntry{Origin: origin, Snapshot: w.snapshot, Digest: digest,
		TracesDigest: tracesDigest, Files: append(written, traces...)}})
}

// RetireExperiment removes the experiment with origin from the current
// state, if the archive holds it and no run of it is left; it reports
// whether it did. Used for an experiment held under the former origin of
// one now written under its new origin.
func (w *Writer) RetireExperiment(origin string) (bool, error) {
	w.expMu.Lock()
	defer w.expMu.Unlock()
	w.mu.Lock()
	_, held := slices.BinarySearchFunc(w.m.Experiments, origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	used := slices.ContainsFunc(w.m.Runs, func(r RunEntry) bool { return r.Experiment == origin })
	w.mu.Unlock()
	if !held || used {
		return false, nil
	}
	return true, w.commit(journalRecord{RetireExperiments: []string{origin}})
}

// RetireRun removes the run with origin from the current state, if the
// archive holds it, and reports whether it did: the tombstone of a run
// deleted at the source (sync --propagate-deletes). Its entry leaves the
// manifest with one journal line (retire_runs), so the next snapshot does
// not list it and readers of the current state (the archive source, the
// table globs, current.sql) no longer see it; its files move to history/,
// where the earlier snapshots that list it still read them, until
// `archive prune` drops those snapshots. Its experiment stays.
func (w *Writer) RetireRun(origin string) (bool, error) {
	w.mu.Lock()
	_, held := slices.BinarySearchFunc(w.m.Runs, origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) })
	w.mu.Unlock()
	if !held {
		return false, nil
	}
	return true, w.commit(journalRecord{RetireRuns: []string{origin}})
}

// commit journals rec and moves its files into place (superseded ones out
// first). The journal line is the commit point.
func (w *Writer) commit(rec journalRecord) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("archive writer is closed")
	}
	line, err := encodeJournalLine(rec)
	if err != nil {
		return err
	}
	if w.journal == nil {
		jp := abs(w.root, journalPath(w.snapshot))
		if err := os.MkdirAll(filepath.Dir(jp), dirMode); err != nil {
			return err
		}
		f, err := os.OpenFile(jp, os.O_CREATE|os.O_WRONLY|os.O_APPEND, fileMode)
		if err != nil {
			return err
		}
		if err := syncDir(filepath.Dir(jp)); err != nil {
			f.Close()
			return err
		}
		w.journal = f
	}
	if _, err := w.journal.Write(line); err != nil {
		return fmt.Errorf("appending to the journal: %w", err)
	}
	if err := w.journal.Sync(); err != nil {
		return fmt.Errorf("fsync journal: %w", err)
	}
	w.pending++
	var old, cur []FileEntry
	for _, r := range w.m.Runs {
		if slices.Contains(rec.RetireRuns, r.Origin) {
			old = append(old, r.Files...)
		}
	}
	for _, e := range w.m.Experiments {
		if slices.Contains(rec.RetireExperiments, e.Origin) {
			old = append(old, e.Files...)
		}
	}
	if rec.Run != nil {
		if prev, ok := slices.BinarySearchFunc(w.m.Runs, rec.Run.Origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) }); ok {
			old = append(old, w.m.Runs[prev].Files...)
		}
		cur = rec.Run.Files
	}
	if rec.Experiment != nil {
		if prev, ok := slices.BinarySearchFunc(w.m.Experiments, rec.Experiment.Origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) }); ok {
			old = append(old, w.m.Experiments[prev].Files...)
		}
		cur = rec.Experiment.Files
	}
	if rec.Model != nil {
		if prev, ok := w.m.modelIndex(rec.Model.Origin); ok {
			old = append(old, w.m.Models[prev].Files...)
		}
		cur = append(cur, rec.Model.Files...)
	}
	w.m.apply([]journalRecord{rec})
	// An entry may keep files of its previous version (an experiment's
	// traces file when its row changes, and the reverse): those stay.
	kept := map[string]bool{}
	for _, f := range cur {
		kept[f.Path] = true
	}
	// Moves after the commit point: a crash here is finished by syncTree.
	for _, f := range old {
		if kept[f.Path] {
			continue
		}
		err := moveFile(abs(w.root, f.Path), abs(w.root, path.Join(historyDir, f.Path)))
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // a file lost since its commit has nothing to move
			return err
		}
	}
	for _, f := range cur {
		staged := abs(w.root, path.Join(stagingDir, f.Path))
		if _, err := os.Stat(staged); errors.Is(err, fs.ErrNotExist) && slices.ContainsFunc(old, func(o FileEntry) bool { return o.Path == f.Path }) {
			continue // kept in place
		}
		if err := moveFile(staged, abs(w.root, f.Path)); err != nil {
			return err
		}
	}
	return nil
}

// publish writes the state as snapshot m.Snapshot+1: snapshots/<n>.json,
// then manifest.json (the commit point), then drops the journal.
func (w *Writer) publish() error {
	m := *w.m
	m.Format, m.FormatVersion, m.RunferryVersion = FormatName, FormatVersion, Version
	m.Snapshot++
	m.Created = time.Now().UTC().Truncate(time.Millisecond)
	if w.source != "" {
		m.Source = w.source
	}
	data, err := encodeManifest(m)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(abs(w.root, snapshotPath(m.Snapshot)), data); err != nil {
		return err
	}
	if err := writeFileAtomic(abs(w.root, ManifestFile), data); err != nil {
		return err
	}
	if err := writeFileAtomic(abs(w.root, "current.sql"), []byte(currentSQL(&m))); err != nil {
		return err
	}
	w.m = &m
	if w.journal != nil {
		w.journal.Close()
		w.journal = nil
	}
	os.Remove(abs(w.root, journalPath(m.Snapshot)))
	return nil
}

// Close publishes what was committed as a new snapshot (nothing if nothing
// was) and releases the archive. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.pending > 0 {
		err = w.publish()
	}
	if w.journal != nil {
		w.journal.Close()
	}
	os.RemoveAll(abs(w.root, stagingDir))
	w.lock.Close()
	return err
}
