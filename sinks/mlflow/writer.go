package mlflow

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"math"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/hashspool"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// writer writes one run. It is used by one goroutine at a time.
type writer struct {
	sink  *Sink
	expID string
	held  bool // the experiment is held active for this run (expLife)
	run   mlflowapi.RunInfo
	src   schema.Run
	cov   *mlflowconv.Coverage
	fp    string
	mark  string      // sinks.Marked: written with the complete tag
	app   *appendPlan // appending: what the points are checked against (see appendable)
	// start is, appending, what is written before the append's first
	// write to the server (appendStart; written at once unless quiet).
	start *appendStart
	// unchanged: the append held nothing the copy does not, and Commit
	// wrote nothing (sinks.UnchangedReporter).
	unchanged bool
	// resumed holds, continuing an append cut short, by MLflow key, the
	// points it wrote already (see pointsWritten): they are not sent again.
	resumed map[string]map[heldPoint]int
	// continued says the writer continues a first copy cut short (see
	// firstCopyCutShort): resumed holds every point it holds.
	continued bool
	// skipped counts the points not sent again because the copy held
	// them (resumed).
	skipped int64
	// heldSummary counts, appending, the summary points the copy holds
	// (mlflowconv.Coverage.SummaryPoints) by their stored identity: see
	// takeHeldSummary.
	heldSummary map[summaryID]int
	// heldFiles lists, continuing a first copy cut short, the files that
	// copy held (artifact paths): those not written again are deleted at
	// commit (deleteGoneContinued).
	heldFiles []string
	keys      map[string]*keyState // by source key: points at the current step
	// mlflowKeys maps the MLflow keys in use to their source keys
	// ("" for a series runferry generates).
	mlflowKeys map[string]string
	fold       *cpuFold        // per-core CPU series, once the run has one
	exact      *spool          // points kept exactly for mlflowconv.FoldedMetricsPath (see keepExact)
	written    map[string]bool // artifact paths written
	logs       *spool
	rich       *spool
	view       *view                 // W&B summary and x axis (see view)
	media      []mediaValue          // rich values written in MLflow's media layout at commit
	models     map[string]*modelCopy // by source model id (see models.go)
	done       bool
	// Appending: files held already and left as they were, and files
	// deleted (gone from the source); see FileDelta.
	keptFiles, keptBytes, deletedFiles int64
	// Appending: console lines in segments held unchanged, not sent again
	// (see commitLogs).
	keptLogLines int64
}

var (
	_ sinks.RunWriter         = (*writer)(nil)
	_ sinks.ArtifactWriter    = (*writer)(nil)
	_ sinks.LogWriter         = (*writer)(nil)
	_ sinks.RichValueWriter   = (*writer)(nil)
	_ sinks.Fingerprinted     = (*writer)(nil)
	_ sinks.Identified        = (*writer)(nil)
	_ sinks.Marked            = (*writer)(nil)
	_ sinks.FileDeltaReporter = (*writer)(nil)
	_ sinks.CursorKeeper      = (*writer)(nil)
	_ sinks.ContinueReporter  = (*writer)(nil)
)

func (w *writer) DestID() string           { return w.run.RunID }
func (w *writer) SetFingerprint(fp string) { w.fp = fp }
func (w *writer) SetMark(mark string)      { w.mark = mark }

// SetCursors implements sinks.CursorKeeper: the document goes into the
// coverage file.
func (w *writer) SetCursors(doc []byte) { w.cov.Cursors = doc }

func (w *writer) check() error {
	if w.done {
		return fault.Permanent(fmt.Errorf("mlflow sink: run %s already committed or aborted", w.src.Origin))
	}
	return nil
}

// WriteMetrics sends one log-batch of at most 1000 points (split further
// to stay under 1 MB). Points MLflow would alter or collapse are recorded
// as fixups (see keyState); points of metrics with a W&B step metric are
// held until Commit (see view).
func (w *writer) WriteMetrics(ctx context.Context, batch []schema.Metric) error {
	if err := w.check(); err != nil {
		return err
	}
	if len(batch) > mlflowapi.MaxMetricsPerBatch {
		return fault.Permanent(fmt.Errorf("mlflow sink: batch of %d points exceeds the limit of %d", len(batch), mlflowapi.MaxMetricsPerBatch))
	}
	out := make([]mlflowapi.Metric, 0, len(batch))
	size := 0
	for _, m := range batch {
		w.cov.Points++
		if _, seen := w.keys[m.Key]; !seen && w.app != nil {
			if why := w.app.point(m); why != "" {
				return sinks.CannotAppend(why)
			}
		}
		if held, err := w.view.hold(m); err != nil || held {
			if err != nil {
				return err
			}
			continue // written at commit (see view)
		}
		st := w.keyState(m.Key)
		if st.core || st.scale != 0 {
			var send bool
			var err error
			if m, send, err = w.systemPoint(st, m); err != nil || !send {
				if err != nil {
					return err
				}
				continue
			}
		}
		send, ok := st.add(m, w.cov)
		if !ok {
			continue // collapsed into an earlier point by a fixup
		}
		if w.takeHeldSummary(m.Key, send) {
			continue // held already: the row of a summary point is this point
		}
		out = append(out, send)
		size += len(send.Key) + 80
		if size > mlflowapi.MaxBatchBytes*8/10 {
			if err := w.logMetrics(ctx, out); err != nil {
				return err
			}
			out, size = out[:0], 0
		}
	}
	return w.logMetrics(ctx, out)
}

// summaryID is the identity MLflow stores a point of a source key under
// (its primary key, besides the run and the MLflow key): step, time and
// the stored value's bits (see storedForm).
type summaryID struct {
	key        string
	step, time int64
	bits       uint64
}

func summaryIDOf(p mlflowconv.SummaryPoint) summaryID {
	_, t, bits := storedForm(float64(p.Value), p.Time)
	return summaryID{key: p.Key, step: p.Step, time: t, bits: bits}
}

// summaryIndex counts points by their stored identity.
func summaryIndex(points []mlflowconv.SummaryPoint) map[summaryID]int {
	if len(points) == 0 {
		return nil
	}
	out := make(map[summaryID]int, len(points))
	for _, p := range points {
		out[summaryIDOf(p)]++
	}
	return out
}

// takeHeldSummary reports whether send, the point to send for source key
// key while appending, is stored already as a summary point the copy
// holds: MLflow stores both as one row (its primary key collapses exact
// duplicates), which the coverage file named a summary point, so that the
// source left it out and the history point was lost (a summary value
// logged by W&B before its history row, in a log cut between the two: the
// copy's summary point then has the step, value and, within the same
// millisecond, the time of the history point appended later). The point
// is not sent, and the row is no longer recorded as a summary point: it
// is this history point.
func (w *writer) takeHeldSummary(key string, send mlflowapi.Metric) bool {
	if len(w.heldSummary) == 0 {
		return false
	}
	_, _, bits := storedForm(float64(send.Value), send.Timestamp)
	id := summaryID{key: key, step: send.Step, time: send.Timestamp, bits: bits}
	if w.heldSummary[id] == 0 {
		return false
	}
	w.heldSummary[id]--
	if i := slices.IndexFunc(w.cov.SummaryPoints, func(p mlflowconv.SummaryPoint) bool { return summaryIDOf(p) == id }); i >= 0 {
		w.cov.SummaryPoints = slices.Delete(w.cov.SummaryPoints, i, i+1)
	}
	return true
}

func (w *writer) logMetrics(ctx context.Context, ms []mlflowapi.Metric) error {
	if len(w.resumed) > 0 {
		keep := ms[:0:0]
		for _, m := range ms {
			held := w.resumed[m.Key]
			if p := heldPointOf(m); held[p] > 0 {
				held[p]--
				w.skipped++
				continue
			}
			keep = append(keep, m)
		}
		ms = keep
	}
	if len(ms) == 0 {
		return nil
	}
	if err := w.api().LogBatch(ctx, mlflowapi.LogBatch{RunID: w.run.RunID, Metrics: ms}); err != nil {
		return fmt.Errorf("log-batch: %w", err)
	}
	return nil
}

// keyState follows one metric key through its current step, to find the
// points MLflow cannot store as given: ±Inf (stored as ±MaxFloat64 by SQL
// stores), -0 (stored as 0), negative times (refused; stored as 0) and
// exact duplicates (collapsed by SQL stores' primary key, so sent once).
// Source histories are non-decreasing in step per key, so the points that
// share a stored identity are all seen within one step.
type keyState struct {
	mlflowKey string
	core      bool    // a per-core CPU series (see cpuFold)
	scale     float64 // a series written in MLflow's unit (see systemPoint)
	step      int64
	started   bool
	at        map[storedPoint]*mlflowconv.Fixup // the current step's points
}

type storedPoint struct {
	time int64
	bits uint64
}

// add returns the point to send for m, or false when m is stored by a point
// already sent.
func (k *keyState) add(m schema.Metric, cov *mlflowconv.Coverage) (mlflowapi.Metric, bool) {
	if !k.started || m.Step != k.step {
		k.flush(cov)
		k.step, k.started, k.at = m.Step, true, map[storedPoint]*mlflowconv.Fixup{}
	}
	stored, t, bits := storedForm(m.Value, m.Time)
	sp := storedPoint{time: t, bits: bits}
	orig := mlflowconv.FixupPoint{Time: m.Time, Value: mlflowapi.Float(m.Value)}
	if f, dup := k.at[sp]; dup {
		f.Points = append(f.Points, orig)
		return mlflowapi.Metric{}, false
	}
	f := &mlflowconv.Fixup{Key: m.Key, Step: m.Step, Time: t, Stored: mlflowapi.Float(stored), Points: []mlflowconv.FixupPoint{orig}}
	k.at[sp] = f
	return mlflowapi.Metric{Key: k.mlflowKey, Value: mlflowapi.Float(stored), Timestamp: t, Step: m.Step}, true
}

// storedForm returns the value and time MLflow stores for a point of value
// v at time t (±Inf as ±MaxFloat64, -0 as 0, a negative time as 0), and
// the bits that identify the stored value (one for every NaN).
func storedForm(v float64, t int64) (stored float64, at int64, bits uint64) {
	switch {
	case math.IsInf(v, 1):
		v = math.MaxFloat64
	case math.IsInf(v, -1):
		v = -math.MaxFloat64
	case v == 0:
		v = 0 // drops the sign of -0
	}
	bits = math.Float64bits(v)
	if math.IsNaN(v) {
		bits = 0x7ff8000000000001
	}
	return v, max(t, 0), bits
}

// flush records the current step's points that need a fixup.
func (k *keyState) flush(cov *mlflowconv.Coverage) {
	for _, f := range k.at {
		p := f.Points[0]
		changed := len(f.Points) > 1 || p.Time != f.Time ||
			math.Float64bits(float64(p.Value)) != math.Float64bits(float64(f.Stored)) && !math.IsNaN(float64(p.Value))
		if !changed {
			continue
		}
		if len(cov.Fixups) >= mlflowconv.MaxFixups {
			cov.FixupsDropped += int64(len(f.Points))
			continue
		}
		cov.Fixups = append(cov.Fixups, *f)
	}
	k.at = nil
}

// spool is a temporary JSON-lines file, uploaded at commit.
type spool struct {
	f *os.File
	b *bufio.Writer
}

func (s *spool) append(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return fault.Permanent(err)
	}
	s.b.Write(line)
	return s.b.WriteByte('\n')
}

func newSpool() (*spool, error) {
	f, err := os.CreateTemp("", "runferry-mlflow-*.jsonl")
	if err != nil {
		return nil, fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	return &spool{f: f, b: bufio.NewWriterSize(f, 1<<16)}, nil
}

func (s *spool) remove() {
	if s != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

// WriteLogs spools console lines; Commit uploads them.
func (w *writer) WriteLogs(_ context.Context, lines []schema.LogLine) error {
	if err := w.check(); err != nil {
		return err
	}
	if w.logs == nil {
		var err error
		if w.logs, err = newSpool(); err != nil {
			return err
		}
	}
	for _, l := range lines {
		if err := w.logs.append(l); err != nil {
			return err
		}
	}
	w.cov.LogLines += int64(len(lines))
	return nil
}

// WriteRichValues spools non-numeric history values; Commit uploads them.
func (w *writer) WriteRichValues(_ context.Context, values []schema.RichValue) error {
	if err := w.check(); err != nil {
		return err
	}
	if w.rich == nil {
		var err error
		if w.rich, err = newSpool(); err != nil {
			return err
		}
	}
	for _, v := range values {
		if err := w.rich.append(v); err != nil {
			return err
		}
		w.noteMedia(v)
	}
	w.cov.RichValues += int64(len(values))
	return nil
}

// smallFile is the size up to which an artifact is read into memory and
// uploaded with retries; larger ones stream once.
const smallFile = 8 << 20

// WriteArtifact uploads one file. Paths under runferry/ are moved below
// runferry/files/, since runferry/ holds the sink's own files, and so are
// paths named as the console's later segments (output.1.log, ...:
// mlflowconv.StoredPath). A file the
// source could not read is recorded in the coverage file with its problem.
// Files under mlflow-logged-models/<model id>/ re-create the source's
// logged model when the server has logged models (see models.go).
func (w *writer) WriteArtifact(ctx context.Context, a schema.Artifact, body io.Reader) error {
	if err := w.check(); err != nil {
		return err
	}
	p := a.Path
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || strings.HasPrefix(p, "../") || p == ".." {
		return fault.Permanent(fmt.Errorf("mlflow sink: artifact path %q is not a clean relative path", a.Path))
	}
	if w.app != nil && strings.HasPrefix(p, mlflowapi.LoggedModelsDir) {
		return sinks.CannotAppend(fmt.Sprintf("file %s: a run with logged models is written anew, not appended to (their ids and linked points are not carried over yet)", p))
	}
	w.written[p] = true
	w.cov.Files++
	if strings.HasPrefix(p, mlflowapi.LoggedModelsDir) {
		if taken, err := w.writeModelFile(ctx, a, p, body); taken || err != nil {
			return err
		}
	}
	if m, ok := strings.CutPrefix(p, mlflowapi.LoggedModelsDir); ok && path.Base(m) == mlflowapi.LoggedModelMeta {
		w.cov.LoggedModelsAsFiles = append(w.cov.LoggedModelsAsFiles, path.Dir(m))
	}
	p = mlflowconv.StoredPath(p)
	if body == nil {
		w.cov.FileProblems[a.Path] = a.Problem
		if a.Problem == "" {
			w.cov.FileProblems[a.Path] = "no content"
		}
		return nil
	}
	if a.Path == sourceOutputLog {
		return w.writeOutputLog(ctx, a, body)
	}
	if w.app != nil {
		if old, had := w.app.files[a.Path]; had {
			return w.sendChanged(ctx, p, a, body, old)
		}
	}
	return w.upload(ctx, w.run.ArtifactURI, p, a, body)
}

// sendChanged uploads body, the content of a, to rel unless its digest is
// old, the digest of the file the run holds at that path (appending): an
// unchanged file is read, to be compared, but not sent again (counted in
// FileDelta).
func (w *writer) sendChanged(ctx context.Context, rel string, a schema.Artifact, body io.Reader, old string) error {
	h := sha256.New()
	if a.Size >= 0 && a.Size <= smallFile {
		b, err := io.ReadAll(io.LimitReader(body, a.Size+1))
		if err != nil {
			return fmt.Errorf("reading %s: %w", a.Path, err)
		}
		if int64(len(b)) != a.Size {
			return fault.Permanent(fmt.Errorf("mlflow sink: artifact %s: got %d bytes or more, expected %d", a.Path, len(b), a.Size))
		}
		h.Write(b)
		d := "sha256:" + hex.EncodeToString(h.Sum(nil))
		w.cov.FileDigests[a.Path] = d
		if d == old {
			w.keptFiles, w.keptBytes = w.keptFiles+1, w.keptBytes+a.Size
			return nil
		}
		return w.api().UploadBytes(ctx, w.run.ArtifactURI, rel, b)
	}
	tmp, d, err := w.spoolArtifact(a, body)
	if err != nil {
		return err
	}
	defer tmp.Close()
	if d == old {
		w.keptFiles, w.keptBytes = w.keptFiles+1, w.keptBytes+tmp.Size
		return nil
	}
	return w.api().UploadFile(ctx, w.run.ArtifactURI, rel, tmp.Name())
}

// spoolArtifact copies body, the content of a, into a temporary file,
// hashing it on the way; it checks the size the source gave and records
// the digest in the coverage file's FileDigests. The caller closes the
// file, which removes it; on an error there is none. No temporary file
// can be made: a fatal error.
func (w *writer) spoolArtifact(a schema.Artifact, body io.Reader) (tmp *hashspool.File, digest string, err error) {
	tmp, err = hashspool.New("", "runferry-mlflow-file-*", body)
	var te *hashspool.TempFileError
	switch {
	case errors.As(err, &te) && te.Op == "create":
		return nil, "", fault.Fatal(fmt.Errorf("mlflow sink: %w", err))
	case err != nil:
		return nil, "", fmt.Errorf("reading %s: %w", a.Path, err)
	}
	if a.Size >= 0 && tmp.Size != a.Size {
		tmp.Close()
		return nil, "", fault.Permanent(fmt.Errorf("mlflow sink: artifact %s: got %d bytes, expected %d", a.Path, tmp.Size, a.Size))
	}
	digest = "sha256:" + tmp.SHA256
	w.cov.FileDigests[a.Path] = digest
	return tmp, digest, nil
}

// deleteGone removes, appending, the files the run holds that the source
// no longer has (recorded in the copy's FileDigests, not written this
// time); FileDelta counts them.
func (w *writer) deleteGone(ctx context.Context) error {
	if w.app == nil {
		return nil
	}
	for _, p := range slices.Sorted(maps.Keys(w.app.files)) {
		if w.written[p] {
			continue
		}
		rel := mlflowconv.StoredPath(p)
		if err := w.api().DeleteArtifact(ctx, w.run.ArtifactURI, rel); err != nil {
			return fmt.Errorf("deleting %s (gone from the source): %w", rel, err)
		}
		w.deletedFiles++
	}
	return nil
}

// Continued implements sinks.ContinueReporter: whether the writer
// continued a first copy cut short (firstCopyCutShort), and how many
// points that copy held that were not sent again.
func (w *writer) Continued() (continued bool, keptPoints int64) {
	return w.continued, w.skipped
}

// deleteGoneContinued removes, continuing a first copy cut short, the
// files that copy held that this writer neither wrote nor generated: the
// files the source no longer has since the earlier attempt. The sink's
// own files under mlflowconv.Dir are written anew at commit and left
// alone. FileDelta counts the files deleted.
func (w *writer) deleteGoneContinued(ctx context.Context) error {
	if !w.continued {
		return nil
	}
	for _, p := range w.heldFiles {
		src := p
		if rest, ok := strings.CutPrefix(p, mlflowconv.FilesDir); ok {
			src = rest
		} else if strings.HasPrefix(p, mlflowconv.Dir) {
			continue
		}
		if w.written[src] || slices.Contains(w.cov.Generated, p) || w.outputSegment(p) {
			continue
		}
		if err := w.api().DeleteArtifact(ctx, w.run.ArtifactURI, p); err != nil {
			return fmt.Errorf("deleting %s (gone from the source since the copy was begun): %w", p, err)
		}
		w.deletedFiles++
	}
	return nil
}

// FileDelta implements sinks.FileDeltaReporter.
func (w *writer) FileDelta() (keptFiles, keptBytes, deletedFiles int64) {
	return w.keptFiles, w.keptBytes, w.deletedFiles
}

// upload sends body, the content of a, to rel below the artifact root
// uri: a small file read whole and sent with retries, a larger one
// streamed once; the size is checked against a's.
func (w *writer) upload(ctx context.Context, uri, p string, a schema.Artifact, body io.Reader) error {
	if a.Size >= 0 && a.Size <= smallFile {
		b, err := io.ReadAll(io.LimitReader(body, a.Size+1))
		if err != nil {
			return fmt.Errorf("reading %s: %w", a.Path, err)
		}
		if int64(len(b)) != a.Size {
			return fault.Permanent(fmt.Errorf("mlflow sink: artifact %s: got %d bytes or more, expected %d", a.Path, len(b), a.Size))
		}
		if uri == w.run.ArtifactURI {
			sum := sha256.Sum256(b)
			w.cov.FileDigests[a.Path] = "sha256:" + hex.EncodeToString(sum[:])
		}
		return w.api().UploadBytes(ctx, uri, p, b)
	}
	cr := &countReader{r: body, h: sha256.New()}
	if err := w.api().UploadArtifact(ctx, uri, p, cr, a.Size); err != nil {
		return err
	}
	if a.Size >= 0 && cr.n != a.Size {
		return fault.Permanent(fmt.Errorf("mlflow sink: artifact %s: sent %d bytes, expected %d", a.Path, cr.n, a.Size))
	}
	if uri == w.run.ArtifactURI {
		w.cov.FileDigests[a.Path] = "sha256:" + hex.EncodeToString(cr.h.Sum(nil))
	}
	return nil
}

type countReader struct {
	r io.Reader
	n int64
	h hash.Hash
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	return n, err
}

// Abort removes the spooled files; the run stays incomplete in MLflow and
// the next OpenRun for its origin supersedes it.
func (w *writer) Abort(ctx context.Context) error {
	w.done = true
	w.logs.remove()
	w.rich.remove()
	w.view.held.remove()
	w.removeFold()
	w.removeModelSpools()
	return w.release(ctx)
}

// release lets the experiment go back to the stage the source wants once
// no run is written into it (expLife); it is done once.
func (w *writer) release(ctx context.Context) error {
	if !w.held {
		return nil
	}
	w.held = false
	return w.sink.releaseExperiment(ctx, w.expID)
}
