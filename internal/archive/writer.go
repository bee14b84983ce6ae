package archive

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

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
	root       string    // the location, for messages
	st         Store     // where the archive's files are
	lock       StoreLock // ARCHIVE/.lock, held shared (exclusive for maintenance)
	commitLock StoreLock // ARCHIVE/.commit.lock, held exclusive around each commit

	expMu    sync.Mutex // serialises PutExperiment, so concurrent calls write once
	modelMu  sync.Mutex // serialises PutModel likewise
	mu       sync.Mutex
	m        *Manifest // current state, journal folded in, as of the last refresh
	known    string    // manifest.json's version as m was read from it ("": none)
	jOff     int64     // position in journal/<m.Snapshot+1> up to which it is folded into m
	snapshot int64     // the snapshot being written: m.Snapshot + 1 at open
	pending  int       // journal records this writer wrote
	source   string
	closed   bool
	borrowed bool // st belongs to the caller (OpenWriterIn): Close leaves it open
	// moved holds the folders this writer's commits moved files into
	// (table folders and their history/ twins), fsynced at Close: a
	// commit's durability step touches only what the commit changed.
	moved map[string]bool
	// dirty is set when a commit's moves failed after its journal line:
	// the folders may then differ from the manifest until a full syncTree.
	dirty bool
	// spill holds the entries of the runs this writer committed, which
	// m keeps spilled (runSpill); nil until the first, and for Prune and
	// Compact (exclusive), which keep every entry whole.
	spill     *runSpill
	spillable bool
	// spillErr is the first failure to read a spilled entry back: the
	// writer then commits and publishes nothing more.
	spillErr error
}

// OpenWriter opens (creating if needed) the archive at root for writing,
// alongside any other writer that has it open. When no other writer has it
// open it first finishes what a crashed writer left: folds its journal into
// a snapshot, moves files to where the manifest says they belong, and
// deletes temporary files. A folder that holds anything but an archive is
// refused.
func OpenWriter(root string) (*Writer, error) { return openWriter(root, false) }

// OpenWriterIn is OpenWriter of the archive at root in st, a store the
// caller opened (OpenStore) and closes after the writer's Close: a sink
// that read the archive's state (LoadStateIn) writes through the same
// store instead of opening another.
func OpenWriterIn(root string, st Store) (*Writer, error) {
	w, err := openStoreWriter(root, st, false)
	if w != nil {
		w.borrowed = true
	}
	return w, err
}

// openWriter opens the archive; exclusive (Prune, Compact) fails with
// ErrLocked while any other writer has it open, and keeps others out.
func openWriter(root string, exclusive bool) (*Writer, error) {
	st, err := OpenStore(root)
	if err != nil {
		return nil, err
	}
	w, err := openStoreWriter(root, st, exclusive)
	if err != nil {
		st.Close()
	}
	return w, err
}

func openStoreWriter(root string, st Store, exclusive bool) (*Writer, error) {
	if err := checkArchiveDir(st); err != nil {
		return nil, err
	}
	lock, err := st.Lock(lockFile)
	if err != nil {
		return nil, err
	}
	alone := lock.Take(true, false) == nil
	if !alone && (exclusive || !waitShared(lock)) {
		lock.Close()
		return nil, fmt.Errorf("%s: %w", root, ErrLocked)
	}
	cl, err := st.Lock(commitLockFile)
	if err != nil {
		lock.Close()
		return nil, err
	}
	w := &Writer{root: root, st: st, lock: lock, commitLock: cl, moved: map[string]bool{}, spillable: spillRuns && !exclusive}
	fail := func(err error) (*Writer, error) {
		cl.Close()
		lock.Close()
		return nil, err
	}
	if alone {
		if err := w.recover(exclusive); err != nil {
			return fail(err)
		}
		if !exclusive {
			// Let other writers in (not atomic: one may recover first,
			// which finds nothing of ours to clean up yet).
			if err := lock.Take(false, true); err != nil {
				return fail(err)
			}
		}
	}
	if !alone {
		// Alone, recover has just read the state under the commit lock,
		// and no other writer could commit since.
		if err := w.locked(func() error { return nil }); err != nil {
			return fail(err)
		}
	}
	w.snapshot = w.m.Snapshot + 1
	return w, nil
}

// LockWait is how long OpenWriter waits for a writer that has the archive
// alone (recovering after a crash, or Prune, or Compact) to let others in,
// before it fails with ErrLocked.
var LockWait = time.Minute

// waitShared takes a shared lock on the archive's lock file, trying for up
// to LockWait, and reports whether it did. The pause between tries doubles
// from 20 ms up to a second: each try of a lock in object storage is three
// requests.
func waitShared(lock StoreLock) bool {
	deadline := time.Now().Add(LockWait)
	pause := 20 * time.Millisecond
	for {
		if lock.Take(false, false) == nil {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(pause, left))
		pause = min(pause*2, time.Second)
	}
}

// locked runs f holding the commit lock, after bringing w.m up to date
// with what other writers committed. The caller holds w.mu.
func (w *Writer) locked(f func() error) error {
	if err := w.commitLock.Take(true, true); err != nil {
		return fmt.Errorf("locking %s: %w", w.st.Name(commitLockFile), err)
	}
	defer w.commitLock.Drop()
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
	fi, err := w.st.Stat(ManifestFile)
	if err != nil && !notExist(err) {
		return err
	}
	if w.m == nil || fi.Version != w.known {
		m := recallManifest(w.st, fi.Version)
		if m != nil && !w.spillable {
			if _, spilled := m.spilledRuns(); spilled > 0 {
				m = nil // Prune and Compact keep every entry whole
			}
		}
		if m == nil && err == nil { // none to read when the Stat found none
			// A writer that spills the entries it commits holds those
			// it reads spilled too (streamManifest).
			if m, err = readManifestAs(w.st, ManifestFile, w.spillable); err != nil {
				return err
			}
		}
		if m == nil {
			m = emptyManifest()
		}
		w.m, w.known, w.jOff = m, fi.Version, 0
	}
	chunks, err := w.st.ReadJournal(w.m.Snapshot+1, w.jOff)
	if err != nil {
		return err
	}
	for i, c := range chunks {
		rec, ok := parseJournalLine(c.Line)
		if !ok {
			if i == len(chunks)-1 {
				break
			}
			return fmt.Errorf("%s: %w: at position %d", w.st.Name(journalPath(w.m.Snapshot+1)), ErrDamaged, w.jOff)
		}
		w.m.apply([]journalRecord{rec})
		w.jOff = c.End
	}
	return nil
}

// checkArchiveDir refuses a non-empty folder that is not an archive.
func checkArchiveDir(st Store) error {
	ents, err := st.Top()
	if notExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ours := append([]string{ManifestFile, snapshotsDir, journalDir, historyDir, stagingDir, blobsDir, lockFile, commitLockFile, "current.sql"}, Tables...)
	for _, e := range ents {
		if e == ManifestFile {
			return nil
		}
		if !slices.Contains(ours, e) && !isTmp(e) && !isLockName(e) {
			return fmt.Errorf("%s is not a runferry archive (it holds %s but no %s); use an empty or new folder", st.Name(""), e, ManifestFile)
		}
	}
	return nil
}

// recover brings the folder in line with the current state; see OpenWriter.
// It runs only while no other writer has the archive open. The whole tree
// is walked (syncTree) only when there is a trace of an interrupted
// commit: journal lines no writer published, or anything left under
// .staging/ (files a crashed writer staged or committed and did not move
// in, or the mark a commit with nothing to stage leaves while it moves;
// see commitLocked); and always for maintenance (full, for Prune and
// Compact). After a clean close there is neither, and an open costs time
// in the size of what it reads, not of the archive.
func (w *Writer) recover(full bool) error {
	err := w.locked(func() error {
		if w.jOff > 0 {
			full = true // a writer died before publishing
			return w.publish()
		}
		return nil
	})
	if err != nil {
		return err
	}
	// One listing of the archive's root tells whether there is any
	// journal or anything under .staging/ to look at (after a clean close
	// there is neither); it runs under the lock, so no writer adds either
	// meanwhile.
	top, err := w.st.Top()
	if err != nil && !notExist(err) {
		return err
	}
	if slices.Contains(top, journalDir) {
		if err := w.removeStaleJournals(); err != nil {
			return err
		}
	}
	staging := slices.Contains(top, stagingDir)
	if !full && staging {
		staged, err := holdsFiles(w.st, stagingDir)
		if err != nil {
			return err
		}
		full = staged
	}
	if full {
		if err := syncTree(w.st, w.m); err != nil {
			return err
		}
	}
	if staging || full {
		if err := w.st.RemoveAll(stagingDir); err != nil {
			return err
		}
	}
	if full {
		if err := removeTmp(w.st, blobsDir); err != nil {
			return err
		}
	}
	if d, ok := w.st.(*dirStore); ok {
		return upgradeModes(d.root)
	}
	return nil
}

// errFound stops a Walk at its first file.
var errFound = errors.New("found")

// holdsFiles reports whether any file is stored under dir.
func holdsFiles(st Store, dir string) (bool, error) {
	err := st.Walk(dir, func(string, int64) error { return errFound })
	if errors.Is(err, errFound) {
		return true, nil
	}
	return false, err
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
	st := newDirStore(root)
	for _, dir := range []string{snapshotsDir, blobsDir} {
		if err := st.Walk(dir, func(p string, _ int64) error { widen(st.full(p)); return nil }); err != nil {
			return err
		}
	}
	widen(abs(root, "current.sql"))
	widen(abs(root, ManifestFile))
	return nil
}

func (w *Writer) removeStaleJournals() error {
	ns, err := w.st.Journals()
	if err != nil {
		return err
	}
	for _, n := range ns {
		if n <= w.m.Snapshot {
			if err := w.st.RemoveJournal(n); err != nil {
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
func syncTree(st Store, m *Manifest) error {
	files, err := m.files()
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, f := range files {
		listed[f.Path] = true
	}
	for _, table := range Tables {
		var move []string
		err := st.Walk(table, func(p string, _ int64) error {
			if isTmp(p) {
				return st.Remove(p)
			}
			if !listed[p] {
				move = append(move, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range move {
			if err := st.Move(p, path.Join(historyDir, p)); err != nil && !notExist(err) {
				return err
			}
		}
	}
	for p := range listed {
		if _, err := st.Stat(p); err == nil {
			continue
		}
		from, err := resolve(st, p)
		if notExist(err) {
			// Lost after its commit (no crash loses a committed file): Check
			// and readers name it, and writing its run or experiment again
			// (see VerifyRunFiles, PutExperiment) replaces it.
			continue
		}
		if err != nil {
			return err
		}
		if err := st.Move(from, p); err != nil {
			return err
		}
	}
	return nil
}

// removeTmp deletes the temporary files under dir.
func removeTmp(st Store, dir string) error {
	var tmp []string
	err := st.Walk(dir, func(p string, _ int64) error {
		if isTmp(p) {
			tmp = append(tmp, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range tmp {
		if err := st.Remove(p); err != nil && !notExist(err) {
			return err
		}
	}
	return nil
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

// Run returns the committed entry of the run with origin, if any. Should
// its entry, spilled, fail to read back (runSpill), it answers none and
// the writer's next commit, and Close, fail with the reason.
func (w *Writer) Run(origin string) (RunEntry, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	r, ok := w.m.find(origin)
	if !ok || r.spilled == nil {
		return r, ok
	}
	full, err := r.full()
	if err != nil {
		if w.spillErr == nil {
			w.spillErr = err
		}
		return RunEntry{}, false
	}
	return full, true
}

// holdsRun reports whether the archive holds a run with origin.
func (w *Writer) holdsRun(origin string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := slices.BinarySearchFunc(w.m.Runs, origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) })
	return ok
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
// archive in store: PutExperiment of e would then change nothing, and a
// sink need not open a writer for it.
func (st *State) ExperimentCurrent(store Store, e schema.Experiment) bool {
	_, digest := experimentRow(e)
	exps := st.Manifest.Experiments
	i, ok := slices.BinarySearchFunc(exps, e.Origin.String(), func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
	return ok && exps[i].Digest == digest && filesWhole(store, exps[i].Files)
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
	if same && filesWhole(w.st, files) {
		return nil
	}
	if !filesWhole(w.st, traces) {
		traces, tracesDigest = nil, "" // lost: the next PutTraces writes them again
	}
	row.Snapshot = w.snapshot
	written, err := writeTable(w.st, TableExperiments, origin, w.snapshot, []ExperimentRow{row})
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
	if w.spillErr != nil {
		return w.spillErr
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
	var old, cur []FileEntry
	for _, r := range w.m.Runs {
		if slices.Contains(rec.RetireRuns, r.Origin) {
			full, err := r.full()
			if err != nil {
				return err
			}
			old = append(old, full.Files...)
		}
	}
	for _, e := range w.m.Experiments {
		if slices.Contains(rec.RetireExperiments, e.Origin) {
			old = append(old, e.Files...)
		}
	}
	if rec.Run != nil {
		if prev, ok := slices.BinarySearchFunc(w.m.Runs, rec.Run.Origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) }); ok {
			full, err := w.m.Runs[prev].full()
			if err != nil {
				return err
			}
			old = append(old, full.Files...)
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
	// An entry may keep files of its previous version (an experiment's
	// traces file when its row changes, and the reverse): those stay.
	// Every other file of the new version is new, and staged.
	kept, wasOld := map[string]bool{}, map[string]bool{}
	for _, f := range cur {
		kept[f.Path] = true
	}
	var leave []FileEntry // superseded files to move to history/
	for _, f := range old {
		wasOld[f.Path] = true
		if !kept[f.Path] {
			leave = append(leave, f)
		}
	}
	staged := slices.ContainsFunc(cur, func(f FileEntry) bool { return !wasOld[f.Path] })
	// Until the moves below are done, .staging/ must hold something, the
	// trace by which the next writer alone (recover, Close) knows to walk
	// the whole tree: the staged files do, until the last moves in; a
	// commit that stages nothing but moves files out (a retired run) puts
	// a mark there first, removed once its moves are done.
	var mark string
	if !staged && len(leave) > 0 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		mark = path.Join(stagingDir, ".moving-"+hex.EncodeToString(b[:]))
		if err := w.st.WriteFile(mark, nil); err != nil {
			return err
		}
	}
	end, err := w.st.AppendJournal(jn, w.jOff, line)
	if err != nil {
		if mark != "" {
			w.st.Remove(mark)
		}
		return fmt.Errorf("%s: %w", w.st.Name(journalPath(jn)), err)
	}
	w.jOff = end
	w.pending++
	w.m.apply([]journalRecord{w.spilled(rec)})
	if err := w.moveCommitted(leave, cur, wasOld); err != nil {
		w.dirty = true // the mark or the staged files stay: the next writer alone walks the tree
		return err
	}
	if len(w.moved) >= movedSyncBatch {
		// Each run has folders of its own: the folders to fsync at Close
		// grew with the runs committed (three a run). They are fsynced
		// now instead, a batch at a time; earlier is as durable.
		if err := w.syncMoved(); err != nil {
			return err
		}
	}
	if mark != "" {
		if err := w.st.Remove(mark); err != nil && !notExist(err) {
			return err
		}
	}
	return nil
}

// spilled returns rec with its run's entry spilled (runSpill), as the
// writer's state keeps it; rec as it is when the writer keeps entries
// whole, or when the spill cannot be written (the entry is then kept
// whole: more memory, nothing lost).
func (w *Writer) spilled(rec journalRecord) journalRecord {
	if rec.Run == nil || !w.spillable {
		return rec
	}
	if w.spill == nil {
		s, err := newRunSpill(w.st.SpillDir())
		if err != nil {
			w.spillable = false
			return rec
		}
		w.spill = s
	}
	r, err := w.spill.put(rec.Run)
	if err != nil {
		return rec
	}
	rec.Run = r
	return rec
}

// moveCommitted moves a commit's files after its commit point: a crash
// here is finished by syncTree. Where the store can (folderSwapper: a
// local folder on Linux), each folder that both loses and gains files
// changes in one step (swapFolders), so a glob over a table sees the old
// version of the entry or the new one at every moment. Elsewhere every
// superseded file (leave) goes to history/ before any new one of cur
// arrives: a folder never holds two versions of the entry, but for the
// time of the moves (or until the next writer, after a crash between the
// two groups) it holds neither. Within each group the moves run
// concurrently (in object storage each is a copy and a delete). A file of
// cur that was in old and is not staged is kept in place. The folders
// moved into are recorded in w.moved, fsynced at Close.
func (w *Writer) moveCommitted(leave, cur []FileEntry, wasOld map[string]bool) error {
	if sw, ok := w.st.(folderSwapper); ok && len(leave) > 0 {
		var err error
		if leave, cur, err = w.swapFolders(sw, leave, cur, wasOld); err != nil {
			return err
		}
	}
	var g errgroup.Group
	g.SetLimit(moveConcurrency)
	for _, f := range leave {
		w.moved[path.Dir(path.Join(historyDir, f.Path))] = true
		g.Go(func() error {
			err := w.st.Move(f.Path, path.Join(historyDir, f.Path))
			if err != nil && !notExist(err) { // a file lost since its commit has nothing to move
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if moveHook != nil && len(leave) > 0 {
		moveHook("left")
	}
	for _, f := range cur {
		w.moved[path.Dir(f.Path)] = true
		g.Go(func() error {
			staged := path.Join(stagingDir, f.Path)
			if wasOld[f.Path] {
				// Kept in place unless staged anew (only a file of the
				// previous version is asked about: a new one is staged).
				if _, err := w.st.Stat(staged); notExist(err) {
					return nil
				}
			}
			return w.st.Move(staged, f.Path)
		})
	}
	return g.Wait()
}

// swapFolders replaces, in each folder where the commit both removes
// files (leave) and brings staged ones, the folder's set of files in one
// step (folderSwapper), so that a glob over a table sees either version of
// the entry and never neither. It returns the files it did not move:
// those of folders where nothing arrives or nothing leaves, and of every
// folder where the store cannot swap (errNoExchange), which the caller
// moves one by one.
func (w *Writer) swapFolders(sw folderSwapper, leave, cur []FileEntry, wasOld map[string]bool) (restLeave, restCur []FileEntry, err error) {
	out := map[string][]string{} // folder -> names leaving
	for _, f := range leave {
		out[path.Dir(f.Path)] = append(out[path.Dir(f.Path)], path.Base(f.Path))
	}
	in := map[string][]string{} // folder -> names staged
	for _, f := range cur {
		dir := path.Dir(f.Path)
		if len(out[dir]) == 0 {
			continue
		}
		if wasOld[f.Path] {
			if _, err := w.st.Stat(path.Join(stagingDir, f.Path)); notExist(err) {
				continue // kept in place
			}
		}
		in[dir] = append(in[dir], path.Base(f.Path))
	}
	swapped := map[string]bool{}
	for dir, names := range in {
		err := sw.SwapFolder(dir, out[dir], names)
		if errors.Is(err, errNoExchange) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		swapped[dir] = true
		w.moved[dir], w.moved[path.Dir(dir)], w.moved[path.Join(historyDir, dir)] = true, true, true
	}
	for _, f := range leave {
		if !swapped[path.Dir(f.Path)] {
			restLeave = append(restLeave, f)
		}
	}
	for _, f := range cur {
		if !swapped[path.Dir(f.Path)] {
			restCur = append(restCur, f)
		}
	}
	return restLeave, restCur, nil
}

// movedSyncBatch is how many folders moved into a writer holds (w.moved)
// before it fsyncs them, rather than at Close (a variable for tests).
var movedSyncBatch = 4096

// moveConcurrency bounds the moves of one commit that run at once.
const moveConcurrency = 8

// publish writes the state as snapshot m.Snapshot+1: snapshots/<n>.json,
// then manifest.json (the commit point), then drops the journal; a first
// state not worth a snapshot (worthASnapshot) is written as snapshot 0,
// manifest.json only. The caller holds the commit lock, with w.m fresh.
func (w *Writer) publish() error {
	m := *w.m
	m.Format, m.FormatVersion, m.RunferryVersion = FormatName, FormatVersion, Version
	numbered := w.worthASnapshot()
	if numbered {
		m.Snapshot++
	}
	m.Created = time.Now().UTC().Truncate(time.Millisecond)
	if w.source != "" {
		m.Source = w.source
	}
	// The manifest is encoded into a local file, a part at a time, and
	// each copy of it is written from there: a job of tens of thousands of
	// runs never holds it whole (115 MB at 30,000 runs).
	mf, size, err := manifestFile(w.st.SpillDir(), m)
	if err != nil {
		return err
	}
	defer mf.Close()
	// The snapshot manifest is created only if absent: under the commit
	// lock it always is, but for a crash between it and manifest.json
	// (manifest.json is then as w.m was read, and the stale snapshot is
	// replaced); should a lock have been broken (an expired lock object in
	// object storage), two writers never both publish one snapshot.
	if numbered {
		err = w.st.CreateExclusiveFrom(snapshotPath(m.Snapshot), mf, size)
	}
	if errors.Is(err, fs.ErrExist) {
		if fi, serr := w.st.Stat(ManifestFile); (serr == nil || notExist(serr)) && fi.Version == w.known {
			err = w.st.WriteFileFrom(snapshotPath(m.Snapshot), mf, size)
		} else {
			return fmt.Errorf("%s: another writer published this snapshot meanwhile (its lock expired?); run again", w.st.Name(snapshotPath(m.Snapshot)))
		}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", w.st.Name(snapshotPath(m.Snapshot)), err)
	}
	if err := w.st.WriteFileFrom(ManifestFile, mf, size); err != nil {
		return err
	}
	// After the commit point, three independent requests at once:
	// current.sql, the journal folded in, and manifest.json's version.
	var g errgroup.Group
	g.Go(func() error { return w.st.WriteFile("current.sql", []byte(currentSQL(&m))) })
	jn := m.Snapshot
	if !numbered {
		// Snapshot 0's journal stays journal 1, now folded in: a crash
		// before this removal folds its records in again, which changes
		// nothing (experiment records put by origin).
		jn = 1
	}
	g.Go(func() error { w.st.RemoveJournal(jn); return nil })
	var fi ObjectInfo
	g.Go(func() (err error) { fi, err = w.st.Stat(ManifestFile); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	w.m = &m
	w.known, w.jOff = fi.Version, 0
	return nil
}

// worthASnapshot reports whether w.m, about to be published, is worth a
// numbered snapshot: any state but a first one holding nothing but
// experiments (no run, no model, no trace), which is what a first sync
// interrupted before its first run committed leaves, or a sync of no run.
// Such a state is published as snapshot 0 (manifest.json and current.sql,
// no snapshot manifest), and the first snapshot with the first run, so
// that archive snapshots lists, and archive prune --keep counts, no empty
// one.
func (w *Writer) worthASnapshot() bool {
	m := w.m
	if m.Snapshot > 0 || len(m.Runs) > 0 || len(m.Models) > 0 {
		return true
	}
	for _, e := range m.Experiments {
		if e.TracesDigest != "" {
			return true
		}
	}
	return false
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
	err := w.spillErr
	if w.pending > 0 && err == nil {
		err = w.locked(func() error {
			if w.jOff == 0 {
				return nil // published by another writer already
			}
			return w.publish()
		})
	}
	// The durability step of this writer's commits: the folders its
	// moves changed, and only those, are fsynced (a no-op in object
	// storage), so that nothing below clears .staging/ before they last.
	if serr := w.syncMoved(); err == nil {
		err = serr
	}
	closeSpill := func() {
		if w.spill != nil {
			if serr := w.spill.close(); err == nil {
				err = serr
			}
			w.spill = nil
		}
	}
	if w.lock.Take(true, false) == nil {
		// No other writer is left, so .staging/ holds no file being
		// written. Anything still there (or a failed move of ours) is the
		// trace of an interrupted commit: what it committed and did not
		// move into place moves first, over the whole tree. Otherwise the
		// tree is as the manifest says and nothing is walked.
		// With the archive alone no writer stages or commits: .staging/
		// is looked at without the commit lock, which only syncTree (after
		// a refresh: others may have published since) takes.
		full := w.dirty
		var serr error
		if !full {
			full, serr = holdsFiles(w.st, stagingDir)
		}
		if full && serr == nil {
			serr = w.locked(func() error { return syncTree(w.st, w.m) })
		}
		closeSpill() // after syncTree, which may read it; before .staging/, which may hold it, goes
		if serr == nil {
			// A local folder keeps the empty folders the moves left:
			// they go too (one cheap call). In object storage an empty
			// .staging/ is no object, and listing it would cost a request.
			if full || !IsObjectStorage(w.root) {
				w.st.RemoveAll(stagingDir)
			}
		} else if err == nil {
			err = serr
		}
	}
	closeSpill()
	w.commitLock.Close()
	w.lock.Close()
	if !w.borrowed {
		if cerr := w.st.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// syncMoved fsyncs the folders this writer's commits moved files into.
func (w *Writer) syncMoved() error {
	dirs := make([]string, 0, len(w.moved))
	for d := range w.moved {
		dirs = append(dirs, d)
	}
	slices.Sort(dirs)
	var g errgroup.Group
	g.SetLimit(moveConcurrency)
	for _, d := range dirs {
		g.Go(func() error {
			if err := w.st.SyncDir(d); err != nil && !notExist(err) {
				return err
			}
			return nil
		})
	}
	clear(w.moved)
	return g.Wait()
}
