package archive

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/runferry/runferry/schema"
)

// SortBufferPoints is how many metric points a RunWriter holds in memory
// before it spills them, sorted, to a temporary file (24 bytes a point).
var SortBufferPoints = 1 << 20

// ErrSizeMismatch is returned by WriteArtifact when the body's length
// differs from the announced size.
var ErrSizeMismatch = errors.New("artifact size differs from the announced size")

// RunWriter writes one run. Nothing it writes is visible until Commit;
// Abort (or a crash) leaves the archive as it was. A RunWriter is used by
// one goroutine at a time.
type RunWriter struct {
	w           *Writer
	run         schema.Run
	origin      string
	fingerprint string
	snapshot    int64

	metrics *metricSorter
	// ended is set by EndMetrics: the metrics file is being written in
	// the background and its result arrives on metricsOut.
	ended      bool
	metricsOut chan metricsResult
	rich       *tableFile[RichValueRow]
	logs       *tableFile[LogRow]
	logSeq     int64
	arts       []ArtifactRow
	blobs      map[string]int64
	done       bool
	replace    []string // origins of runs this one replaces (Replace)
	mark       string
	cursors    string
	// kept are the metrics files of the run that AppendRun extends, and
	// keptPoints their points: they stay current, and the points written
	// go to a new file after them.
	kept       []FileEntry
	keptPoints int64
	// prevFiles holds, appending, the files (artifact rows with a body)
	// of the run extended, by path: a file given again with the same
	// content is kept, not stored again, and one not given again is gone
	// from the run's new artifacts table (see FileDelta).
	prevFiles map[string]ArtifactRow
	// keptFiles and keptBytes count the files kept (see FileDelta).
	keptFiles, keptBytes int64
}

// SetMark sets the mark committed with the run (RunEntry.Mark).
func (rw *RunWriter) SetMark(mark string) { rw.mark = mark }

// SetCursors sets the cursors document committed with the run
// (RunEntry.Cursors).
func (rw *RunWriter) SetCursors(doc []byte) { rw.cursors = string(doc) }

// AppendRun starts writing r (already validated and canonical) as the
// committed run prev grown: its metrics files stay current, the points
// written go to one more metrics file after them, and every other table
// is written anew from what this writer is given, as by OpenRun. Of the
// files (artifacts), one given again with the content prev holds at its
// path is kept, not stored again, and one prev holds that is not given
// again is left out of the run's new artifacts table (FileDelta counts
// both; its body stays until prune). Until Commit the archive holds prev
// as it was, so an append cut short leaves nothing to undo. AppendRun
// fails when prev's artifacts table cannot be read (wrapping ErrDamaged
// when it is damaged).
func (w *Writer) AppendRun(r schema.Run, prev RunEntry) (*RunWriter, error) {
	rw := w.OpenRun(r)
	for _, f := range prev.Files {
		if f.Table == TableMetrics {
			rw.kept = append(rw.kept, f)
		}
	}
	rw.keptPoints = prev.Points
	rw.prevFiles = map[string]ArtifactRow{}
	if f, ok := prev.File(TableArtifacts); ok {
		err := readTable(w.st, f, 256, func(rows []ArtifactRow) error {
			for _, row := range rows {
				if row.SHA256 != nil && row.Size != nil {
					rw.prevFiles[row.Path] = row
				}
			}
			return nil
		})
		if err != nil {
			rw.discard()
			return nil, fmt.Errorf("run %s: reading the files it holds: %w", prev.Origin, err)
		}
	}
	return rw, nil
}

// FileDelta says, for a RunWriter from AppendRun, how many files (of how
// many bytes) were kept as the run held them, not stored again, and how
// many the run held that were not given again, which its new artifacts
// table leaves out. It is final once the writer committed.
func (rw *RunWriter) FileDelta() (keptFiles, keptBytes, deletedFiles int64) {
	for p := range rw.prevFiles {
		if !slices.ContainsFunc(rw.arts, func(a ArtifactRow) bool { return a.Path == p }) {
			deletedFiles++
		}
	}
	return rw.keptFiles, rw.keptBytes, deletedFiles
}

// Replace makes Commit retire the runs the archive holds under the given
// origins (the former origins of this run), in the same journal line that
// commits it.
func (rw *RunWriter) Replace(origins []string) {
	rw.replace = slices.DeleteFunc(slices.Clone(origins), func(o string) bool { return o == rw.origin })
}

// OpenRun starts writing r (already validated and canonical). Whatever the
// archive holds for r.Origin stays current until Commit replaces it whole.
func (w *Writer) OpenRun(r schema.Run) *RunWriter {
	origin := r.Origin.String()
	rw := &RunWriter{w: w, run: r, origin: origin, snapshot: w.snapshot, blobs: map[string]int64{}}
	rw.metrics = newMetricSorter(w.st.SpillDir(), SortBufferPoints)
	return rw
}

// SetRun replaces the run OpenRun was given (validated and canonical, with
// the same origin): Commit writes the run last set. It is for a run opened
// with its light header whose other fields are known only once its
// streams were read.
func (rw *RunWriter) SetRun(r schema.Run) error {
	if err := rw.check(); err != nil {
		return err
	}
	if r.Origin.String() != rw.origin || r.Experiment != rw.run.Experiment {
		return fmt.Errorf("run %s: SetRun given run %s of experiment %s", rw.origin, r.Origin, r.Experiment)
	}
	rw.run = r
	return nil
}

// SetFingerprint sets the source fingerprint committed with the run.
func (rw *RunWriter) SetFingerprint(fp string) { rw.fingerprint = fp }

// DestID names the run in the archive: the folder key of its files.
func (rw *RunWriter) DestID() string { return EntityKey(rw.origin) }

func (rw *RunWriter) check() error {
	if rw.done {
		return fmt.Errorf("run %s: already committed or aborted", rw.origin)
	}
	return nil
}

// WriteMetrics adds points; memory stays bounded whatever the run's size.
// It is an error after EndMetrics.
func (rw *RunWriter) WriteMetrics(batch []schema.Metric) error {
	if err := rw.check(); err != nil {
		return err
	}
	if rw.ended {
		return fmt.Errorf("run %s: metrics written after EndMetrics", rw.origin)
	}
	return rw.metrics.add(batch)
}

// metricsResult is the outcome of writing the metrics file.
type metricsResult struct {
	entry FileEntry
	err   error
}

// EndMetrics says the run's points are all written: the metrics file is
// sorted, encoded and stored in the background from now on, while the
// run's other data (rich values, logs, artifacts) arrive, and Commit waits
// for it. Memory stays what writing the file at Commit costs: the sort
// buffer is handed to the encoders. Calling it is optional; later calls do
// nothing, and WriteMetrics after it is an error.
func (rw *RunWriter) EndMetrics() error {
	if err := rw.check(); err != nil {
		return err
	}
	if rw.ended || rw.metrics.count == 0 {
		return nil
	}
	rw.ended = true
	rw.metricsOut = make(chan metricsResult, 1)
	go func() {
		f, err := rw.writeMetrics()
		rw.metricsOut <- metricsResult{f, err}
	}()
	return nil
}

// metricsFile writes the metrics file, or waits for EndMetrics' writing of
// it.
func (rw *RunWriter) metricsFile() (FileEntry, error) {
	if !rw.ended {
		return rw.writeMetrics()
	}
	r := <-rw.metricsOut
	rw.metricsOut = nil
	return r.entry, r.err
}

// WriteRichValues adds non-numeric history values, kept in arrival order.
func (rw *RunWriter) WriteRichValues(values []schema.RichValue) error {
	if err := rw.check(); err != nil {
		return err
	}
	if rw.rich == nil {
		tf, err := createTableFile[RichValueRow](rw.w.st, TableRichValues, rw.origin, rw.snapshot, otherRowGroup)
		if err != nil {
			return err
		}
		rw.rich = tf
	}
	rows := make([]RichValueRow, len(values))
	for i, v := range values {
		rows[i] = RichValueToRow(rw.origin, v)
	}
	return rw.rich.Write(rows)
}

// WriteLogs adds console lines, kept in arrival order (column seq).
func (rw *RunWriter) WriteLogs(lines []schema.LogLine) error {
	if err := rw.check(); err != nil {
		return err
	}
	if rw.logs == nil {
		tf, err := createTableFile[LogRow](rw.w.st, TableLogs, rw.origin, rw.snapshot, otherRowGroup)
		if err != nil {
			return err
		}
		rw.logs = tf
	}
	rows := make([]LogRow, len(lines))
	for i, l := range lines {
		rows[i] = LogToRow(rw.origin, rw.logSeq, l)
		rw.logSeq++
	}
	return rw.logs.Write(rows)
}

// WriteArtifact stores body as a content-addressed blob (once per distinct
// content in the whole archive) and lists it in the run's artifacts table.
// A nil body records a file that cannot be transferred, with a.Problem.
func (rw *RunWriter) WriteArtifact(a schema.Artifact, body io.Reader) error {
	if err := rw.check(); err != nil {
		return err
	}
	row := ArtifactRow{Run: rw.origin, Path: a.Path, Problem: a.Problem}
	again := slices.ContainsFunc(rw.arts, func(r ArtifactRow) bool { return r.Path == a.Path })
	if body != nil {
		prevSHA := ""
		if old, ok := rw.prevFiles[a.Path]; ok && !again {
			prevSHA = *old.SHA256
		}
		sha, n, kept, err := rw.w.putBlob(body, a.Size, prevSHA)
		if err != nil {
			return fmt.Errorf("artifact %s: %w", a.Path, err)
		}
		if kept {
			rw.keptFiles, rw.keptBytes = rw.keptFiles+1, rw.keptBytes+n
		}
		row.Size, row.SHA256 = &n, &sha
		rw.blobs[sha] = n
	}
	rw.arts = slices.DeleteFunc(rw.arts, func(r ArtifactRow) bool { return r.Path == a.Path })
	rw.arts = append(rw.arts, row)
	return nil
}

// putBlob stores content under its SHA-256 unless a body with that size
// and SHA-256 is already there. A body found missing, or different from its
// name (damaged after it was written), is replaced, so that writing a run
// again repairs its bodies. When the content's SHA-256 is keep (that of
// the body the run appended to holds at the same path) and a body of its
// size is there, putBlob reports it kept: the staged copy is abandoned,
// nothing is made durable or moved, and that body is not read again (its
// size is what is checked, as VerifyRun does without hashing).
func (w *Writer) putBlob(body io.Reader, size int64, keep string) (string, int64, bool, error) {
	if _, ok := w.st.(hashFirst); ok {
		return w.putBlobHashed(body, size, keep)
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", 0, false, err
	}
	staged := path.Join(stagingDir, blobsDir, hex.EncodeToString(b[:])+".body")
	f, err := w.st.Create(staged)
	if err != nil {
		return "", 0, false, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), body)
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, n, size)
	}
	if err != nil {
		f.Abort()
		return "", 0, false, err
	}
	sha := hex.EncodeToString(h.Sum(nil))
	final := blobPath(sha)
	if keep != "" && sha == keep {
		if fi, serr := w.st.Stat(final); serr == nil && fi.Size == n {
			f.Abort()
			return sha, n, true, nil
		}
	}
	if err := f.Commit(); err != nil {
		return "", 0, false, err
	}
	defer w.st.Remove(staged) // gone after the move, unless the body was there already
	if fi, err := w.st.Stat(final); err == nil && fi.Size == n {
		if got, _, err := hashStored(w.st, final); err == nil && got == sha {
			return sha, n, false, nil
		}
	}
	if err := w.st.Move(staged, final); err != nil {
		return "", 0, false, err
	}
	return sha, n, false, w.st.SyncDir(path.Dir(final))
}

// hashFirst is a Store on which a write is an upload, and whose objects
// appear whole at their path or not at all (object storage). putBlob there
// hashes a body before writing it, in memory or a local spill file, and
// uploads it straight to its content-addressed key only when no body of
// that content is there: no staged copy, no server-side move, nothing sent
// for a body the archive holds.
type hashFirst interface {
	Store
	hashesFirst()
}

// putBlobHashed is putBlob on a hashFirst store.
func (w *Writer) putBlobHashed(body io.Reader, size int64, keep string) (string, int64, bool, error) {
	sp, err := spoolBody(w.st.SpillDir(), body)
	if err != nil {
		return "", 0, false, err
	}
	defer sp.Close()
	n := sp.size
	if size >= 0 && n != size {
		return "", 0, false, fmt.Errorf("%w: got %d bytes, expected %d", ErrSizeMismatch, n, size)
	}
	sha := sp.sha
	final := blobPath(sha)
	if keep != "" && sha == keep {
		if fi, serr := w.st.Stat(final); serr == nil && fi.Size == n {
			return sha, n, true, nil
		}
	}
	if w.holdsBlob(final, sha, n) {
		return sha, n, false, nil
	}
	f, err := w.st.Create(final)
	if err == nil {
		if _, err = io.Copy(f, sp.reader()); err != nil {
			f.Abort()
		} else {
			err = f.Commit()
		}
	}
	if err != nil {
		// Another writer (a run copied at the same time, another shard)
		// may have stored the same content since the check above; under
		// S3 Object Lock the store then refuses the overwrite. The body
		// there is the one wanted when its content matches its name.
		if w.holdsBlob(final, sha, n) {
			return sha, n, false, nil
		}
		return "", 0, false, err
	}
	return sha, n, false, nil
}

// holdsBlob reports whether the body at final has size n and SHA-256 sha.
func (w *Writer) holdsBlob(final, sha string, n int64) bool {
	fi, err := w.st.Stat(final)
	if err != nil || fi.Size != n {
		return false
	}
	got, _, err := hashStored(w.st, final)
	return err == nil && got == sha
}

// spooledBody is a body read whole and hashed: in memory up to
// smallObject bytes, past that in a local file (deleted when closed), so
// memory stays bounded.
type spooledBody struct {
	mem  []byte
	file *os.File
	size int64
	sha  string
}

func spoolBody(dir string, body io.Reader) (*spooledBody, error) {
	h := sha256.New()
	sp := &spooledBody{}
	buf := make([]byte, 0, 64<<10)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= smallObject {
				break
			}
			buf = slices.Grow(buf, len(buf))
		}
		k, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err == io.EOF {
			sp.mem = buf
			sp.size = int64(len(buf))
			h.Write(buf)
			sp.sha = hex.EncodeToString(h.Sum(nil))
			return sp, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	f, err := createTemp(dir, "body-", tmpSuffix)
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name()) // held open; gone when closed
	sp.file = f
	n, err := io.Copy(io.MultiWriter(f, h), io.MultiReader(bytes.NewReader(buf), body))
	if err != nil {
		f.Close()
		return nil, err
	}
	sp.size, sp.sha = n, hex.EncodeToString(h.Sum(nil))
	return sp, nil
}

// reader reads the body from its start.
func (sp *spooledBody) reader() io.Reader {
	if sp.file != nil {
		return io.NewSectionReader(sp.file, 0, sp.size)
	}
	return bytes.NewReader(sp.mem)
}

func (sp *spooledBody) Close() error {
	if sp.file != nil {
		return sp.file.Close()
	}
	return nil
}

// Commit writes the run's metadata tables and sorted metrics, makes every
// file durable, and commits the run (see Writer). On error the run stays
// as it was before OpenRun.
func (rw *RunWriter) Commit() error {
	if err := rw.check(); err != nil {
		return err
	}
	rw.done = true
	entry, err := rw.finish()
	if err != nil {
		rw.discard()
		return err
	}
	rec := journalRecord{Run: entry}
	for _, o := range rw.replace {
		if rw.w.holdsRun(o) {
			rec.RetireRuns = append(rec.RetireRuns, o)
		}
	}
	return rw.w.commit(rec)
}

func (rw *RunWriter) finish() (*RunEntry, error) {
	root, origin, snap := rw.w.st, rw.origin, rw.snapshot
	entry := &RunEntry{Origin: origin, Experiment: rw.run.Experiment.String(), Snapshot: snap,
		Fingerprint: rw.fingerprint, Mark: rw.mark, Cursors: rw.cursors, Points: rw.keptPoints + rw.metrics.count}
	params := make([]KVRow, len(rw.run.Params))
	for i, p := range rw.run.Params {
		params[i] = KVRow{Run: origin, Key: p.Key, Value: p.Value}
	}
	tags := make([]KVRow, len(rw.run.Tags))
	for i, t := range rw.run.Tags {
		tags[i] = KVRow{Run: origin, Key: t.Key, Value: t.Value}
	}
	inputs := make([]InputRow, len(rw.run.Inputs))
	for i, in := range rw.run.Inputs {
		inputs[i] = InputToRow(origin, in)
	}
	slices.SortFunc(rw.arts, func(a, b ArtifactRow) int { return cmp.Compare(a.Path, b.Path) })
	versions, entries, err := rw.artifactTables()
	if err != nil {
		return nil, err
	}
	// The run's files are written (staged) at once, each into a slot of
	// its own, and listed in this order whatever order they finish in: each
	// is a request or more to object storage, and none depends on another.
	var slots [10][]FileEntry
	var g errgroup.Group
	g.SetLimit(moveConcurrency)
	put := func(slot int, f func() ([]FileEntry, error)) {
		g.Go(func() (err error) { slots[slot], err = f(); return err })
	}
	one := func(f func() (FileEntry, error)) func() ([]FileEntry, error) {
		return func() ([]FileEntry, error) {
			e, err := f()
			if err != nil {
				return nil, err
			}
			return []FileEntry{e}, nil
		}
	}
	put(0, func() ([]FileEntry, error) {
		return writeTable(root, TableRuns, origin, snap, []RunRow{RunToRow(rw.run, rw.fingerprint, snap)})
	})
	put(1, func() ([]FileEntry, error) { return writeTable(root, TableParams, origin, snap, params) })
	put(2, func() ([]FileEntry, error) { return writeTable(root, TableTags, origin, snap, tags) })
	put(3, func() ([]FileEntry, error) { return writeTable(root, TableInputs, origin, snap, inputs) })
	slots[4] = rw.kept
	if rw.metrics.count > 0 {
		put(5, one(rw.metricsFile))
	}
	if rw.rich != nil {
		put(6, one(rw.rich.Close))
	}
	if rw.logs != nil {
		put(7, one(rw.logs.Close))
	}
	put(8, func() ([]FileEntry, error) { return writeTable(root, TableArtifacts, origin, snap, rw.arts) })
	put(9, func() ([]FileEntry, error) {
		v, err := writeTable(root, TableArtifactVersions, origin, snap, versions)
		if err != nil {
			return nil, err
		}
		e, err := writeTable(root, TableArtifactEntries, origin, snap, entries)
		return append(v, e...), err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, files := range slots {
		entry.Files = append(entry.Files, files...)
	}
	for sha, n := range rw.blobs {
		entry.Blobs = append(entry.Blobs, BlobEntry{SHA256: sha, Bytes: n})
	}
	slices.SortFunc(entry.Blobs, func(a, b BlobEntry) int { return cmp.Compare(a.SHA256, b.SHA256) })
	return entry, nil
}

// Abort abandons the run: its temporary files are deleted and the archive
// keeps what it held before OpenRun.
func (rw *RunWriter) Abort() error {
	if rw.done {
		return nil
	}
	rw.done = true
	rw.discard()
	return nil
}

func (rw *RunWriter) discard() {
	if rw.metricsOut != nil {
		// EndMetrics' writer is still at work: wait for it, then drop what
		// it staged.
		if r := <-rw.metricsOut; r.err == nil {
			rw.w.st.Remove(stagingDir + "/" + r.entry.Path)
		}
		rw.metricsOut = nil
	}
	rw.metrics.discard()
	if rw.rich != nil {
		rw.rich.Discard()
	}
	if rw.logs != nil {
		rw.logs.Discard()
	}
}
