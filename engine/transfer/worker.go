package transfer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/inflight"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// transfer runs the plan with up to Concurrency runs in flight. Only fatal
// errors and cancellation end it early; run failures go into the report.
func (j *job) transfer(ctx context.Context, plan []planned) error {
	pool := j.newRunPool(ctx)
	for _, p := range plan {
		pool.start(p)
	}
	return pool.wait(ctx)
}

// runPool transfers the runs it is given, each with runWithRetries, with
// up to Concurrency in flight (fewer when the destination's MaxInFlight is
// lower), and adapts the writes in flight when the destination asks for
// it (Limits.AdaptiveWrites). It serves both the planned-first transfer
// and the streamed one (planAndTransfer).
type runPool struct {
	j   *job
	g   *errgroup.Group
	ctx context.Context // ends with a run's fatal error or the job's cancellation
}

func (j *job) newRunPool(ctx context.Context) *runPool {
	limit := j.opt.Concurrency
	if m := j.dst.Limits().MaxInFlight; m > 0 {
		limit = min(limit, m)
	}
	if j.dst.Limits().AdaptiveWrites {
		j.writes = inflight.New(1, limit, limit)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	return &runPool{j: j, g: g, ctx: gctx}
}

// start transfers p, waiting for a slot; once the pool's context has
// ended, p is reported interrupted instead.
func (r *runPool) start(p planned) {
	if r.ctx.Err() != nil {
		r.j.interrupted(p)
		return
	}
	r.g.Go(func() error { return r.j.runWithRetries(r.ctx, p) })
}

// wait waits for every run started and returns the first fatal error, or
// ctx's error when the job was interrupted; it records the writes in
// flight the adaptive limit settled on.
func (r *runPool) wait(ctx context.Context) error {
	err := r.g.Wait()
	if r.j.writes != nil {
		r.j.rep.WritesInFlight = r.j.writes.Settled()
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

func (j *job) interrupted(p planned) {
	j.release(p.run.Origin)
	j.addResult(RunResult{Origin: p.run.Origin.String(), Experiment: p.exp.Name, Name: p.run.Name,
		Outcome: Interrupted, Reason: p.reason})
}

// release tells the source that the job will ask nothing more of run
// (sources.RunReleaser).
func (j *job) release(run schema.Ref) {
	if r, ok := j.src.(sources.RunReleaser); ok {
		r.ReleaseRun(run)
	}
}

// runWithRetries transfers one run, retrying retryable failures. It returns
// an error only when the whole job must stop.
func (j *job) runWithRetries(ctx context.Context, p planned) error {
	res := RunResult{Origin: p.run.Origin.String(), Experiment: p.exp.Name, Name: p.run.Name,
		Reason: p.reason, Restored: p.restored}
	res.Damage, res.InheritedDamage = p.run.SplitDamage()
	j.opt.Observer(Event{Kind: EventRunStarted, Run: res.Origin, Name: p.run.Name})
	began := time.Now()
	var err error
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		res.resetCounts()
		err = j.runOnce(ctx, p, &res)
		if err == nil || attempt >= j.opt.Attempts || fault.KindOf(err) != fault.KindRetryable || ctx.Err() != nil {
			break
		}
		wait := max(fault.RetryAfter(err), j.opt.Backoff(attempt))
		j.opt.Observer(Event{Kind: EventRetry, Run: res.Origin, Name: p.run.Name, Wait: wait, Err: err})
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	res.DurationMS = time.Since(began).Milliseconds()
	kind := fault.KindOf(err)
	switch {
	case err == nil && j.opt.DryRun:
		res.Outcome = Planned
	case err == nil && res.sameAsHeld:
		res.Outcome = Unchanged
	case err == nil:
		res.Outcome = Committed
	case kind == fault.KindCanceled || ctx.Err() != nil:
		res.Outcome = Interrupted
	default:
		res.Outcome, res.Error, res.ErrorKind = Failed, err.Error(), kind.String()
		res.Unreachable = fault.Unreachable(err)
	}
	if !j.opt.DryRun && j.opt.Ledger != nil && res.Outcome != Interrupted {
		status := res.Outcome
		if res.sameAsHeld {
			status = Committed // the copy the destination holds, as committed before
		}
		e := state.Entry{Origin: res.Origin, DestID: res.DestID, Status: string(status),
			Attempts: res.Attempts, LastError: res.Error, Name: res.Name}
		if status == Committed {
			e.Fingerprint = p.fingerprint
			e.Mark, e.Keys = res.mark, res.keys
			// The copy is incomplete while the source has these gaps: a
			// later job that finds the run unchanged reports them again.
			e.Damage, e.FileProblems, e.InheritedDamage = res.Damage, res.FileProblem, res.InheritedDamage
		}
		if lerr := j.opt.Ledger.Put(e); lerr != nil {
			j.addResult(res)
			return fault.Fatal(fmt.Errorf("state: %w", lerr))
		}
	}
	j.release(p.run.Origin)
	j.addResult(res)
	j.opt.Observer(Event{Kind: EventRunDone, Run: res.Origin, Name: p.run.Name, Result: &res})
	switch {
	case res.Outcome == Interrupted:
		return ctx.Err()
	case kind == fault.KindFatal:
		return err
	}
	return nil
}

// fileProblem records a's problem, if any: as inherited when the source
// only carries it (schema.Artifact.Inherited), else as a file not copied.
func (res *RunResult) fileProblem(a schema.Artifact) {
	switch {
	case a.Problem == "":
	case a.Inherited:
		res.InheritedFileProblems = append(res.InheritedFileProblems, a.Path+": "+a.Problem)
	default:
		res.FileProblem = append(res.FileProblem, a.Path+": "+a.Problem)
	}
}

// resetCounts clears what an attempt counted, before the next one.
func (res *RunResult) resetCounts() {
	res.Points, res.Files, res.Bytes, res.LogLines, res.RichValues, res.FileProblem, res.Coverage = 0, 0, 0, 0, 0, nil, nil
	res.InheritedFileProblems = nil
	res.Appended, res.Continued, res.KeptPoints, res.keys, res.mark = false, false, 0, nil, ""
	res.KeptFiles, res.DeletedFiles, res.KeptLogLines = 0, 0, 0
	res.sameAsHeld = false
}

// runOnce makes one attempt at a run: open, stream everything, commit. On
// failure the writer is aborted and the run stays incomplete in the sink.
// A run planned for appending that the sink cannot append to (or whose
// copied history changed in the source) is written whole, and its reason
// says why.
func (j *job) runOnce(ctx context.Context, p planned, res *RunResult) error {
	if j.opt.DryRun {
		return j.count(ctx, p, res)
	}
	expID, err := j.experimentID(ctx, p.exp)
	if err != nil {
		return err
	}
	if p.base != nil {
		err := j.writeRun(ctx, p, expID, p.base, res)
		if !errors.Is(err, sinks.ErrCannotAppend) {
			return err
		}
		res.resetCounts()
		if err := j.appendFromSink(ctx, p, expID, res); !errors.Is(err, sinks.ErrCannotAppend) {
			return err
		}
		res.Reason = "changed since last transfer, written whole: " + err.Error()
		if !p.baseFormer.IsZero() {
			res.Reason = underFormer(p.baseFormer) + ": " + err.Error()
		}
	}
	return j.writeRun(ctx, p, expID, nil, res)
}

// appendFromSink appends p's run from the cursors the sink keeps with its
// copy (sinks.BaseFinder) when they carry another mark than the ledger's
// entry p.base, which the sink refused: a job stopped between the sink's
// commit and the ledger's record (a kill, a full disk) leaves the ledger
// one commit behind, and writing the run whole would needlessly replace
// the copy (in MLflow, under a new run id). It returns an error wrapping
// sinks.ErrCannotAppend, with nothing written, when there is no such
// base, and what writeRun returns otherwise (the counts reset after a
// refusal).
func (j *job) appendFromSink(ctx context.Context, p planned, expID string, res *RunResult) error {
	q := p
	q.base, q.reason = nil, ""
	if err := j.baseFromSink(ctx, &q, false); err != nil {
		return err
	}
	if q.base == nil || q.base.Mark == p.base.Mark {
		return sinks.ErrCannotAppend
	}
	err := j.writeRun(ctx, q, expID, q.base, res)
	switch {
	case err == nil:
		res.Reason = p.reason + " (from the cursors kept in the destination: the ledger's record was older than the copy)"
	case errors.Is(err, sinks.ErrCannotAppend):
		res.resetCounts()
	}
	return err
}

// writeRun writes the run once: whole (OpenRun) when base is nil, else
// appended to the copy the ledger entry base describes (sinks.Appender).
func (j *job) writeRun(ctx context.Context, p planned, expID string, base *state.Entry, res *RunResult) (err error) {
	var w sinks.RunWriter
	cur := newCursors(nil)
	if base != nil {
		ab := sinks.AppendBase{DestID: base.DestID, Mark: base.Mark, LastStep: make(map[string]int64, len(base.Keys))}
		for _, k := range base.Keys {
			ab.LastStep[k.Key] = k.LastStep
		}
		cur = newCursors(base.Keys)
		if tc := j.tailCursors(ctx, p.run.Origin, base.Keys); tc != nil {
			cur = tc
		}
		w, err = j.dst.(sinks.Appender).AppendRun(ctx, expID, j.transformRun(p.run, res), ab)
		if err != nil {
			return fmt.Errorf("reopening run to append: %w", err)
		}
	} else if w, err = j.dst.OpenRun(ctx, expID, j.openedRun(p, res)); err != nil {
		return fmt.Errorf("opening run: %w", err)
	}
	if _, ok := j.src.(sources.TailReader); ok {
		cur.keepState = true
	}
	defer func() {
		if err != nil {
			// Abort with a fresh context: ctx may be the reason we stopped.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = w.Abort(actx)
			cancel()
		}
	}()
	if f, ok := w.(sinks.Fingerprinted); ok {
		f.SetFingerprint(p.fingerprint)
	}
	if err := j.copyMetrics(ctx, p.run.Origin, w, cur, res); err != nil {
		return err
	}
	keys, mark, err := cur.finish()
	if err != nil {
		return err
	}
	if me, ok := w.(sinks.MetricsEnder); ok {
		if err := me.EndMetrics(ctx); err != nil {
			return err
		}
	}
	if m, ok := w.(sinks.Marked); ok {
		m.SetMark(mark)
		res.keys, res.mark = keys, mark
		if ck, ok := w.(sinks.CursorKeeper); ok {
			doc, err := json.Marshal(cursorDoc{Mark: mark, Keys: keys})
			if err != nil {
				return fault.Permanent(err)
			}
			ck.SetCursors(doc)
		}
	}
	if err := j.copyRichValues(ctx, p.run.Origin, w, res); err != nil {
		return err
	}
	if err := j.copyLogs(ctx, p.run.Origin, w, res); err != nil {
		return err
	}
	if err := j.copyArtifacts(ctx, p.run.Origin, w, res); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		// A source that stopped early on cancellation without saying so
		// must not get a partial run committed.
		return err
	}
	if p.light {
		if err := j.setFullRun(ctx, p, w, res); err != nil {
			return err
		}
	}
	if err := w.Commit(ctx); err != nil {
		return fmt.Errorf("committing run: %w", err)
	}
	if d, ok := w.(sinks.Identified); ok {
		res.DestID = d.DestID()
	}
	if u, ok := w.(sinks.UnchangedReporter); ok && u.Unchanged() {
		// The sink found the run equal to its copy and wrote nothing: the
		// run is reported unchanged (its damage and files not copied named
		// again, as for a run the plan finds unchanged).
		res.sameAsHeld = true
		res.Points, res.Files, res.Bytes, res.LogLines, res.RichValues, res.Coverage = 0, 0, 0, 0, 0, nil
		res.Reason += "; the destination's copy holds the same (nothing written)"
		return nil
	}
	if base != nil {
		res.Appended, res.KeptPoints = true, cur.kept
	} else if cr, ok := w.(sinks.ContinueReporter); ok {
		if cont, kept := cr.Continued(); cont {
			res.Continued, res.KeptPoints = true, kept
			res.Points = max(0, res.Points-kept)
			res.Reason += fmt.Sprintf("; continued in place (a first copy cut short: %d points it held not sent again)", kept)
		}
	}
	if fd, ok := w.(sinks.FileDeltaReporter); ok {
		kept, keptBytes, deleted := fd.FileDelta()
		res.Files, res.Bytes = res.Files-kept, res.Bytes-keptBytes
		res.KeptFiles, res.DeletedFiles = kept, deleted
	}
	if ld, ok := w.(sinks.LogDeltaReporter); ok {
		kept := ld.LogDelta()
		res.LogLines, res.KeptLogLines = res.LogLines-kept, kept
	}
	if cr, ok := w.(sinks.CoverageReporter); ok {
		for k, n := range cr.Coverage() {
			addCoverage(res, k, n)
		}
	}
	return nil
}

// tailCursors returns cursors that go on from base without reading the
// points it covers, when the source reads a run's history from a step on
// (sources.TailReader) and can for this run, the job's transform passes
// metric points unchanged (the cursors are of the transformed points, the
// source's tail of the untransformed ones), and the ledger kept every key's
// digest state; else nil, and the run's history is read whole.
func (j *job) tailCursors(ctx context.Context, run schema.Ref, base []state.KeyCursor) *cursors {
	tr, ok := j.src.(sources.TailReader)
	if !ok || j.opt.Transform.ChangesMetrics() {
		return nil
	}
	c, ok := newTailCursors(base)
	if !ok {
		return nil
	}
	if _, ok := tr.MetricsTail(ctx, run, c.held()); !ok {
		return nil
	}
	return c
}

// openedRun is the run OpenRun is given for p: transformed, what the
// transform left out counted, unless p is still its light header (see
// lateRun): then what the transform leaves out of the full run is counted
// when it is set (setFullRun).
func (j *job) openedRun(p planned, res *RunResult) schema.Run {
	if p.light {
		r, _ := j.opt.Transform.Run(p.run)
		return r
	}
	return j.transformRun(p.run, res)
}

// setFullRun gives w the run p in full, read after its streams
// (sources.StreamedRunReader), for a run opened with its light header
// (see lateRun); the result's damage is the full run's.
func (j *job) setFullRun(ctx context.Context, p planned, w sinks.RunWriter, res *RunResult) error {
	full, err := j.src.(sources.StreamedRunReader).RunAfterStreams(ctx, p.run.Origin)
	if err != nil {
		return fmt.Errorf("reading run: %w", err)
	}
	rs, ok := w.(sinks.RunSetter)
	if !ok {
		return fault.Permanent(fmt.Errorf("the destination's run writer takes no run after opening it"))
	}
	if err := rs.SetRun(j.transformRun(full, res)); err != nil {
		return fmt.Errorf("writing run: %w", err)
	}
	res.Damage, res.InheritedDamage = full.SplitDamage()
	// The run is reported, and recorded in the ledger, by the name its
	// copy holds: a header may name it otherwise (sources.HeaderLister).
	res.Name = full.Name
	return nil
}

// transformRun applies the job's transform to r, counting what it left
// out as coverage.
func (j *job) transformRun(r schema.Run, res *RunResult) schema.Run {
	r, left := j.opt.Transform.Run(r)
	for _, item := range left {
		addCoverage(res, item+" left out by "+j.opt.Transform.String()+" (not copied)", 1)
	}
	return r
}

// droppedKind is the coverage kind of metric points the job's transform
// left out.
func (j *job) droppedKind() string {
	return "metric points left out by " + j.opt.Transform.String() + " (not copied)"
}

func addCoverage(res *RunResult, kind string, n int64) {
	if n == 0 {
		return
	}
	if res.Coverage == nil {
		res.Coverage = map[string]int64{}
	}
	res.Coverage[kind] += n
}

// experimentID writes the experiment once per job and caches its id.
func (j *job) experimentID(ctx context.Context, e schema.Experiment) (string, error) {
	j.mu.Lock()
	once, ok := j.expIDs[e.Origin]
	if !ok {
		once = &expOnce{}
		j.expIDs[e.Origin] = once
	}
	j.mu.Unlock()
	once.mu.Lock()
	defer once.mu.Unlock()
	if once.id != "" {
		return once.id, nil
	}
	id, err := j.dst.PutExperiment(ctx, j.opt.Transform.Experiment(e))
	if err != nil {
		return "", fmt.Errorf("writing experiment %q: %w", e.Name, err)
	}
	once.id, once.name = id, e.Name
	return id, nil
}

// copyMetrics streams the run's history, re-chunked to the sink's batch
// limit, reusing one batch buffer.
func (j *job) copyMetrics(ctx context.Context, run schema.Ref, w sinks.RunWriter, cur *cursors, res *RunResult) error {
	size := j.dst.Limits().MaxMetricsPerWrite
	if size <= 0 {
		size = j.opt.DefaultBatch
	}
	write := func(b []schema.Metric) error {
		if err := j.writeMetrics(ctx, w, b); err != nil {
			return fmt.Errorf("writing metrics: %w", err)
		}
		res.Points += int64(len(b))
		j.opt.Observer(Event{Kind: EventProgress, Run: res.Origin, Points: int64(len(b))})
		return nil
	}
	batch := make([]schema.Metric, 0, size)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := write(batch)
		batch = batch[:0]
		return err
	}
	pages := prefetch(ctx, 4, func(ctx context.Context) iter.Seq2[[]schema.Metric, error] {
		if cur.tail {
			seq, _ := j.src.(sources.TailReader).MetricsTail(ctx, run, cur.held())
			return seq
		}
		return j.src.Metrics(ctx, run)
	})
	for page, err := range pages {
		if errors.Is(err, sources.ErrTailChanged) {
			return sinks.CannotAppend(err.Error())
		}
		if err != nil {
			return fmt.Errorf("reading metrics: %w", err)
		}
		n := len(page)
		page = j.opt.Transform.Metrics(page)
		if dropped := n - len(page); dropped > 0 {
			addCoverage(res, j.droppedKind(), int64(dropped))
		}
		page, err := cur.filter(page)
		if err != nil {
			return err
		}
		if len(batch) == 0 && len(page) == size {
			// A page of exactly the batch size goes through uncopied.
			if err := write(page); err != nil {
				return err
			}
			continue
		}
		for len(page) > 0 {
			n := min(len(page), size-len(batch))
			batch = append(batch, page[:n]...)
			page = page[n:]
			if len(batch) == size {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// writeMetrics writes one batch, within the adaptive limit when the sink
// asked for one; a 429 or 503 the sink's client met (see
// fault.SignalOverload) halves the limit.
func (j *job) writeMetrics(ctx context.Context, w sinks.RunWriter, batch []schema.Metric) error {
	if j.writes == nil {
		return w.WriteMetrics(ctx, batch)
	}
	t, err := j.writes.Acquire(ctx)
	if err != nil {
		return err
	}
	rctx, overloaded := fault.WithOverloadSignal(ctx)
	err = w.WriteMetrics(rctx, batch)
	work := len(batch)
	if err != nil {
		work = 0
	}
	t.Done(work, overloaded())
	return err
}

func (j *job) copyRichValues(ctx context.Context, run schema.Ref, w sinks.RunWriter, res *RunResult) error {
	r, ok := j.src.(sources.RichValueReader)
	if !ok {
		return nil
	}
	rw, canWrite := w.(sinks.RichValueWriter)
	for page, err := range r.RichValues(ctx, run) {
		if err != nil {
			return fmt.Errorf("reading rich values: %w", err)
		}
		if !canWrite {
			return fault.Permanent(errors.New("the sink cannot store non-numeric history values"))
		}
		if err := rw.WriteRichValues(ctx, page); err != nil {
			return fmt.Errorf("writing rich values: %w", err)
		}
		res.RichValues += int64(len(page))
	}
	return nil
}

func (j *job) copyLogs(ctx context.Context, run schema.Ref, w sinks.RunWriter, res *RunResult) error {
	r, ok := j.src.(sources.LogReader)
	if !ok {
		return nil
	}
	lw, canWrite := w.(sinks.LogWriter)
	for page, err := range r.Logs(ctx, run) {
		if err != nil {
			return fmt.Errorf("reading console output: %w", err)
		}
		if !canWrite {
			return fault.Permanent(errors.New("the sink cannot store console output"))
		}
		if err := lw.WriteLogs(ctx, page); err != nil {
			return fmt.Errorf("writing console output: %w", err)
		}
		res.LogLines += int64(len(page))
	}
	return nil
}

func (j *job) copyArtifacts(ctx context.Context, run schema.Ref, w sinks.RunWriter, res *RunResult) error {
	r, ok := j.src.(sources.ArtifactLister)
	if !ok {
		return nil
	}
	aw, canWrite := w.(sinks.ArtifactWriter)
	for a, err := range r.Artifacts(ctx, run) {
		if err != nil {
			return fmt.Errorf("listing files: %w", err)
		}
		if !canWrite {
			return fault.Permanent(errors.New("the sink cannot store files"))
		}
		res.fileProblem(a)
		a, left, err := j.opt.Transform.Artifact(ctx, a)
		if err != nil {
			return fmt.Errorf("file %s: %w", a.Path, err)
		}
		for _, item := range left {
			addCoverage(res, item+" left out by "+j.opt.Transform.String()+" (not copied)", 1)
		}
		if err := j.copyArtifact(ctx, a, aw, res); err != nil {
			return fmt.Errorf("file %s: %w", a.Path, err)
		}
	}
	return nil
}

// copyArtifact streams one file, counting bytes for progress and checking
// the digest the source announced.
func (j *job) copyArtifact(ctx context.Context, a schema.Artifact, aw sinks.ArtifactWriter, res *RunResult) error {
	if a.Open == nil {
		return aw.WriteArtifact(ctx, a, nil)
	}
	rc, err := a.Open(ctx)
	if err != nil {
		return fmt.Errorf("reading: %w", err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc, h: sha256.New(), report: func(n int64) {
		j.opt.Observer(Event{Kind: EventProgress, Run: res.Origin, Bytes: n})
	}}
	if err := aw.WriteArtifact(ctx, a, cr); err != nil {
		return err
	}
	if a.Size >= 0 && cr.n != a.Size {
		return fmt.Errorf("read %d bytes, source announced %d", cr.n, a.Size)
	}
	if want, ok := cutPrefix(a.Digest, "sha256:"); ok && cr.n == a.Size {
		if got := hex.EncodeToString(cr.h.Sum(nil)); got != want {
			return fault.Permanent(fmt.Errorf("content changed while reading: sha256 %s, source announced %s", got, want))
		}
	}
	res.Files++
	res.Bytes += cr.n
	return nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}

type countingReader struct {
	r      io.Reader
	h      hash.Hash
	n      int64
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.h.Write(p[:n])
		c.n += int64(n)
		c.report(int64(n))
	}
	return n, err
}

// dropsMetrics reports whether a step of c may leave metric points out.
func dropsMetrics(c transform.Chain) bool {
	return slices.ContainsFunc(c, func(s transform.Step) bool {
		_, ok := s.(transform.DropMetrics)
		return ok
	})
}

// keptAsHeld reports whether an append would keep h, the file the copy
// holds at a's path, as it is: a's size (unless h's is unknown, -1) and
// SHA-256 equal h's (the
// digest the source announces, else, when the sink compares bodies, that
// of a's body, read).
func keptAsHeld(ctx context.Context, a schema.Artifact, h sinks.HeldFile) (bool, error) {
	if h.Size >= 0 && (a.Size < 0 || a.Size != h.Size) {
		return false, nil
	}
	digest := a.Digest
	if _, ok := cutPrefix(digest, "sha256:"); !ok {
		if h.ByAnnounced {
			return false, nil
		}
		rc, err := a.Open(ctx)
		if err != nil {
			return false, fmt.Errorf("reading: %w", err)
		}
		defer rc.Close()
		hash := sha256.New()
		if _, err := io.Copy(hash, rc); err != nil {
			return false, fmt.Errorf("reading: %w", err)
		}
		digest = "sha256:" + hex.EncodeToString(hash.Sum(nil))
	}
	return digest == "sha256:"+h.SHA256, nil
}

// countLogs counts, for a dry run, the console lines the copy would send
// (as copyLogs, which counts them all, and the sink's LogDelta): every
// line the source gives, less those held (the plan of the sink's
// HeldLogs, when it gave one).
func (j *job) countLogs(ctx context.Context, run schema.Ref, held sinks.LogPlanner, res *RunResult) error {
	r, ok := j.src.(sources.LogReader)
	if !ok {
		return nil
	}
	for page, err := range r.Logs(ctx, run) {
		if err != nil {
			return fmt.Errorf("reading console output: %w", err)
		}
		res.LogLines += int64(len(page))
		if held != nil {
			if err := held.Add(page); err != nil {
				return err
			}
		}
	}
	if held != nil {
		res.KeptLogLines = held.Kept()
		res.LogLines -= res.KeptLogLines
	}
	return nil
}

// count is the dry run of one run: it reads the streams to count what would
// be written, and writes nothing. A run planned for appending (p.base, the
// ledger's cursors of the copy) counts only the points the append would
// send: its points go through the same cursors as writeRun's (the points
// held are digested, not counted), and the run is marked Appended with
// KeptPoints; when the cursors show that the copied history changed (the
// sync would write the run whole), every point is counted and the reason
// says why, as the sync's would.
func (j *job) count(ctx context.Context, p planned, res *RunResult) error {
	if est, ok := j.src.(sources.Estimator); ok && !dropsMetrics(j.opt.Transform) {
		// When no transform leaves metrics out, the source's estimate
		// stands for reading them.
		if points, bytes, ok := est.Estimate(ctx, p.run); ok {
			res.Points, res.Bytes, res.Estimated = points, bytes, true
			res.FilesNotEstimated = true
			if fe, ok := j.src.(sources.FileEstimator); ok {
				if files, ok := fe.EstimateFiles(ctx, p.run); ok {
					res.Files, res.FilesNotEstimated = files, false
				}
			}
			if p.base != nil {
				// The estimate is of the whole history; the append
				// sends what follows the points held.
				var held int64
				for _, k := range p.base.Keys {
					held += k.Count
				}
				res.Points = max(0, points-held)
				res.Appended, res.KeptPoints = true, min(held, points)
			}
			run := j.transformRun(p.run, res)
			if cp, ok := j.dst.(sinks.CoveragePlanner); ok {
				for k, n := range cp.PlanCoverage(run) {
					addCoverage(res, k, n)
				}
			}
			return nil
		}
	}
	var cur *cursors // with a base: what the append would send
	if p.base != nil {
		cur = newCursors(p.base.Keys)
	}
	var whole error // why the run would be written whole after all
	for page, err := range j.src.Metrics(ctx, p.run.Origin) {
		if err != nil {
			return fmt.Errorf("reading metrics: %w", err)
		}
		n := len(page)
		page = j.opt.Transform.Metrics(page)
		res.Points += int64(len(page))
		if dropped := n - len(page); dropped > 0 {
			addCoverage(res, j.droppedKind(), int64(dropped))
		}
		if cur != nil && whole == nil {
			if _, err := cur.filter(page); err != nil {
				whole = err
			}
		}
	}
	if cur != nil && whole == nil {
		_, _, whole = cur.finish()
	}
	var held map[string]sinks.HeldFile // files the append would keep
	var heldLogs sinks.LogPlanner      // console lines it would keep
	switch {
	case cur != nil && whole == nil:
		res.Points -= cur.kept
		res.Appended, res.KeptPoints = true, cur.kept
		ab := sinks.AppendBase{DestID: p.base.DestID, Mark: p.base.Mark}
		if hl, ok := j.dst.(sinks.HeldFilesLister); ok {
			files, ok, err := hl.HeldFiles(ctx, p.run.Origin, ab)
			if err != nil {
				return fmt.Errorf("listing the files of the copy: %w", err)
			}
			if ok {
				held = files
			}
		}
		if hl, ok := j.dst.(sinks.HeldLogsLister); ok {
			plan, ok, err := hl.HeldLogs(ctx, p.run.Origin, ab)
			if err != nil {
				return fmt.Errorf("reading what the copy holds of the console output: %w", err)
			}
			if ok {
				heldLogs = plan
			}
		}
	case cur != nil && errors.Is(whole, sinks.ErrCannotAppend):
		// As runOnce after a refusal (without asking the sink for
		// cursors of its own, which a dry run does not do).
		res.Reason = "changed since last transfer, written whole: " + whole.Error()
		if !p.baseFormer.IsZero() {
			res.Reason = underFormer(p.baseFormer) + ": " + whole.Error()
		}
	case cur != nil:
		return whole
	}
	run := j.transformRun(p.run, res)
	if cp, ok := j.dst.(sinks.CoveragePlanner); ok {
		for k, n := range cp.PlanCoverage(run) {
			addCoverage(res, k, n)
		}
	}
	if err := j.countLogs(ctx, p.run.Origin, heldLogs, res); err != nil {
		return err
	}
	if r, ok := j.src.(sources.ArtifactLister); ok {
		for a, err := range r.Artifacts(ctx, p.run.Origin) {
			if err != nil {
				return fmt.Errorf("listing files: %w", err)
			}
			// As copyArtifacts: the problem as the source gave it, and a
			// file counted only when it has a body to copy (a file the
			// source names but cannot give is not copied).
			res.fileProblem(a)
			a, left, err := j.opt.Transform.Artifact(ctx, a)
			if err != nil {
				return fmt.Errorf("file %s: %w", a.Path, err)
			}
			for _, item := range left {
				addCoverage(res, item+" left out by "+j.opt.Transform.String()+" (not copied)", 1)
			}
			if a.Open == nil {
				continue
			}
			if h, ok := held[a.Path]; ok {
				kept, err := keptAsHeld(ctx, a, h)
				if err != nil {
					return fmt.Errorf("file %s: %w", a.Path, err)
				}
				if kept {
					res.KeptFiles++
					continue
				}
			}
			res.Files++
			if a.Size > 0 {
				res.Bytes += a.Size
			}
		}
	}
	return nil
}
