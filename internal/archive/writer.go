package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ErrLocked is returned by OpenWriter when the archive is held exclusively
// (by Prune or Compact, or by a runferry older than concurrent writers),
// and by Prune and Compact while a writer has it open.
var ErrLocked = errors.New("archive is in use by another writer")

// Writer adds snapshots to an archive. Several Writers, in one process or
// in several (the shards of a sharded sync), may have one archive open at
// a time; each must write runs and models the others do not write (shards
// hold disjoint runs), while experiments may be written by several. Its
// methods are safe for concurrent use.
//
// Concurrency protocol (docs/ARCHIVE.md, "Concurrent writers"): every
// writer holds a shared lock on ARCHIVE/.lock while open, which Prune and
// Compact take exclusively. Every commit and publish takes an exclusive
// lock on ARCHIVE/.commit.lock, re-reads what other writers committed
// since (manifest.json if it was replaced, then the journal's new lines),
// appends its journal line, moves its files into place and lets go. The
// locks are flock(2) locks, which the kernel releases when a process dies,
// so a killed writer never leaves a stale lock behind.
//
// Durability: a run or experiment is committed once its journal line is
// fsynced; it is then visible to readers (LoadState) and survives a crash.
// Close, or the next writer to open the archive alone after a crash, folds
// the journal into a new snapshot and manifest.json.
type Writer struct {
	root       string
	lock       *os.File // ARCHIVE/.lock, held shared (exclusive for maintenance)
	commitLock *os.File // ARCHIVE/.commit.lock, held exclusive around each commit

	expMu    sync.Mutex // serialises PutExperiment, so concurrent calls write once
	modelMu  sync.Mutex // serialises PutModel likewise
	mu       sync.Mutex
	m        *Manifest   // current state, journal folded in, as of the last refresh
	known    os.FileInfo // manifest.json as m was read from it (nil: none)
	jOff     int64       // bytes of journal/<m.Snapshot+1> folded into m
	jSynced  int64       // the journal whose folder entry was fsynced
	snapshot int64       // the snapshot being written: m.Snapshot + 1 at open
	pending  int         // journal records this writer wrote
	source   string
	closed   bool
}

// OpenWriter opens (creating if needed) the archive at root for writing,
// alongside any other writer that has it open. When no other writer has it
// open it first finishes what a crashed writer left: folds its journal into
// a snapshot, moves files to where the manifest says they belong, and
// deletes temporary files. A folder that holds anything but an archive is
// refused.
func OpenWriter(root string) (*Writer, error) { return openWriter(root, false) }

// openWriter opens the archive; exclusive (Prune, Compact) fails with
// ErrLocked while any other writer has it open, and keeps others out.
func openWriter(root string, exclusive bool) (*Writer, error) {
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
	alone := takeLock(lock, true, false) == nil
	if !alone && (exclusive || !waitShared(lock)) {
		lock.Close()
		return nil, fmt.Errorf("%s: %w", root, ErrLocked)
	}
	cl, err := os.OpenFile(abs(root, commitLockFile), os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		lock.Close()
		return nil, err
	}
	w := &Writer{root: root, lock: lock, commitLock: cl}
	fail := func(err error) (*Writer, error) {
		cl.Close()
		lock.Close()
		return nil, err
	}
	if alone {
		if err := w.recover(); err != nil {
			return fail(err)
		}
		if !exclusive {
			// Let other writers in (not atomic: one may recover first,
			// which finds nothing of ours to clean up yet).
			if err := takeLock(lock, false, true); err != nil {
				return fail(err)
			}
		}
	}
	if err := w.locked(func() error { return nil }); err != nil {
		return fail(err)
	}
	w.snapshot = w.m.Snapshot + 1
	return w, nil
}

// LockWait is how long OpenWriter waits for a writer that has the archive
// alone (recovering after a crash, or Prune, or Compact) to let others in,
// before it fails with ErrLocked.
var LockWait = time.Minute

// waitShared takes a shared lock on the archive's lock file, trying for up
// to LockWait, and reports whether it did.
func waitShared(lock *os.File) bool {
	deadline := time.Now().Add(LockWait)
	for {
		if takeLock(lock, false, false) == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// locked runs f holding the commit lock, after bringing w.m up to date
// with what other writers committed. The caller holds w.mu.
func (w *Writer) locked(f func() error) error {
	if err := takeLock(w.commitLock, true, true); err != nil {
		return fmt.Errorf("locking %s: %w", abs(w.root, commitLockFile), err)
	}
	defer dropLock(w.commitLock)
	if err := w.refresh(); err != nil {
		return err
	}
	return f()
}

// refresh reads manifest.json again if another writer replaced it since
// w.m was read, then folds in the journal lines appended since. A damaged
// or unterminated last line (a crashed append) is left unread: the next
// append truncates it away.
func (w *Writer) refresh() error {
	fi, err := os.Stat(abs(w.root, ManifestFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if w.m == nil || !sameFile(fi, w.known) {
		m, err := readManifest(abs(w.root, ManifestFile))
		if err != nil {
			return err
		}
		if m == nil {
			m = emptyManifest()
		}
		w.m, w.known, w.jOff = m, fi, 0
	}
	f, err := os.Open(abs(w.root, journalPath(w.m.Snapshot+1)))
	if errors.Is(err, fs.ErrNotExist) {
		w.jOff = 0
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(w.jOff, io.SeekStart); err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(data), "\n")
	for i, line := range lines {
		if line == "" {
			continue
		}
		rec, ok := parseJournalLine(line)
		if !ok {
			if i >= len(lines)-2 { // the last line, or the last before ""
				break
			}
			return fmt.Errorf("%s: %w: at byte %d", f.Name(), ErrDamaged, w.jOff)
		}
		w.m.apply([]journalRecord{rec})
		w.jOff += int64(len(line))
	}
	return nil
}

// sameFile reports whether a and b describe the same version of a file
// (both nil: both absent). manifest.json is replaced by rename, so a new
// version is a new file.
func sameFile(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
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
	ours := append([]string{ManifestFile, snapshotsDir, journalDir, historyDir, stagingDir, blobsDir, lockFile, commitLockFile, "current.sql"}, Tables...)
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
// It runs only while no other writer has the archive open.
func (w *Writer) recover() error {
	err := w.locked(func() error {
		if w.jOff > 0 {
			return w.publish()
		}
		return nil
	})
	if err != nil {
		return err
	}
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

// experimentRow is e's row in the experiments table (snapshot 0) and the
// digest the manifest keeps of it.
func experimentRow(e schema.Experiment) (ExperimentRow, string) {
	row := ExperimentToRow(e, 0)
	b, _ := json.Marshal(row)
	sum := sha256.Sum256(b)
	return row, hex.EncodeToString(sum[:])
}

// ExperimentCurrent reports whether st holds experiment e as
// PutExperiment writes it (the same row) with its files whole in the
// archive at root: PutExperiment of e would then change nothing, and a
// sink need not open a writer for it.
func (st *State) ExperimentCurrent(root string, e schema.Experiment) bool {
	_, digest := experimentRow(e)
	exps := st.Manifest.Experiments
	i, ok := slices.BinarySearchFunc(exps, e.Origin.String(), func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	return ok && exps[i].Digest == digest && filesWhole(root, exps[i].Files)
}

// HoldsExperiment reports whether st holds an experiment with origin.
func (st *State) HoldsExperiment(origin string) bool {
	_, ok := slices.BinarySearchFunc(st.Manifest.Experiments, origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	return ok
}

// PutExperiment stores e unless the archive already holds it unchanged
// with its files there at their recorded sizes (a lost or truncated file is
// written again).
func (w *Writer) PutExperiment(e schema.Experiment) error {
	origin := e.Origin.String()
	row, digest := experimentRow(e)
	w.expMu.Lock()
	defer w.expMu.Unlock()
	w.mu.Lock()
	if err := w.locked(func() error { return nil }); err != nil { // see what other writers wrote
		w.mu.Unlock()
		return err
	}
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
	if err := w.locked(func() error { return nil }); err != nil {
		w.mu.Unlock()
		return false, err
	}
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
// first), holding the commit lock. The journal line is the commit point.
func (w *Writer) commit(rec journalRecord) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return errors.New("archive writer is closed")
	}
	return w.locked(func() error { return w.commitLocked(rec) })
}

// commitLocked is commit's work, with w.mu and the commit lock held and
// w.m fresh.
func (w *Writer) commitLocked(rec journalRecord) error {
	// The entries are listed from the snapshot the journal is folded
	// into, which another writer's publish may have moved past w.snapshot.
	jn := w.m.Snapshot + 1
	if rec.Run != nil {
		rec.Run.Snapshot = jn
	}
	if rec.Experiment != nil {
		rec.Experiment.Snapshot = jn
	}
	if rec.Model != nil {
		rec.Model.Snapshot = jn
	}
	line, err := encodeJournalLine(rec)
	if err != nil {
		return err
	}
	if err := w.appendJournal(jn, line); err != nil {
		return err
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

// appendJournal appends line to journal/<jn>.jsonl at w.jOff, the end of
// its last whole line (cutting off what a crashed writer left of a line),
// and fsyncs it.
func (w *Writer) appendJournal(jn int64, line []byte) error {
	jp := abs(w.root, journalPath(jn))
	if err := os.MkdirAll(filepath.Dir(jp), dirMode); err != nil {
		return err
	}
	f, err := os.OpenFile(jp, os.O_CREATE|os.O_WRONLY, fileMode)
	if err != nil {
		return err
	}
	defer f.Close()
	if w.jSynced != jn {
		if err := syncDir(filepath.Dir(jp)); err != nil {
			return err
		}
		w.jSynced = jn
	}
	if err := f.Truncate(w.jOff); err != nil {
		return fmt.Errorf("appending to the journal: %w", err)
	}
	if _, err := f.WriteAt(line, w.jOff); err != nil {
		return fmt.Errorf("appending to the journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync journal: %w", err)
	}
	w.jOff += int64(len(line))
	return nil
}

// publish writes the state as snapshot m.Snapshot+1: snapshots/<n>.json,
// then manifest.json (the commit point), then drops the journal. The
// caller holds the commit lock, with w.m fresh.
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
	os.Remove(abs(w.root, journalPath(m.Snapshot)))
	fi, err := os.Stat(abs(w.root, ManifestFile))
	if err != nil {
		return err
	}
	w.known, w.jOff = fi, 0
	return nil
}

// Close publishes what was committed as a new snapshot (nothing if this
// writer committed nothing), together with what other writers committed
// and did not publish yet, and releases the archive. The last writer to
// close also clears .staging/. It is safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.pending > 0 {
		err = w.locked(func() error {
			if w.jOff == 0 {
				return nil // published by another writer already
			}
			return w.publish()
		})
	}
	if takeLock(w.lock, true, false) == nil {
		// No other writer is left, so .staging/ holds no file being
		// written; what a crashed writer committed and did not move
		// into place moves first.
		serr := w.locked(func() error { return syncTree(w.root, w.m) })
		if serr == nil {
			os.RemoveAll(abs(w.root, stagingDir))
		} else if err == nil {
			err = serr
		}
	}
	w.commitLock.Close()
	w.lock.Close()
	return err
}
