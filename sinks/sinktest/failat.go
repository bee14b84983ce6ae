package sinktest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// FailAt wraps a sink so that its n-th operation (1-based, counting
// PutExperiment, OpenRun, every write, Commit) fails with err instead of
// reaching the sink. n = 0 never fails; Ops counts what passed through.
// Writes of the failing kind after that one succeed again.
type FailAt struct {
	sinks.Sink
	N   int
	Err error

	mu  sync.Mutex
	ops int
}

// NewFailAt wraps s to fail its n-th operation with err.
func NewFailAt(s sinks.Sink, n int, err error) *FailAt { return &FailAt{Sink: s, N: n, Err: err} }

// ErrInjected is the default injected failure: retryable.
var ErrInjected = errors.New("sinktest: injected failure")

// Ops returns how many operations were attempted so far.
func (f *FailAt) Ops() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ops
}

func (f *FailAt) step(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops++
	if f.ops == f.N {
		err := f.Err
		if err == nil {
			err = fault.Retryable(ErrInjected, 0)
		}
		return fmt.Errorf("%s (operation %d): %w", op, f.ops, err)
	}
	return nil
}

// PutExperiment counts, then forwards.
func (f *FailAt) PutExperiment(ctx context.Context, e schema.Experiment) (string, error) {
	if err := f.step("PutExperiment"); err != nil {
		return "", err
	}
	return f.Sink.PutExperiment(ctx, e)
}

// OpenRun counts, then forwards and wraps the writer.
func (f *FailAt) OpenRun(ctx context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	if err := f.step("OpenRun"); err != nil {
		return nil, err
	}
	w, err := f.Sink.OpenRun(ctx, expID, r)
	if err != nil {
		return nil, err
	}
	return &failWriter{RunWriter: w, f: f}, nil
}

// AppendRun counts, then forwards to the wrapped sink's Appender and wraps
// the writer; a wrapped sink that cannot append says so
// (sinks.ErrCannotAppend), and the engine writes the run whole.
func (f *FailAt) AppendRun(ctx context.Context, expID string, r schema.Run, base sinks.AppendBase) (sinks.RunWriter, error) {
	a, ok := f.Sink.(sinks.Appender)
	if !ok {
		return nil, sinks.CannotAppend("the sink cannot append")
	}
	if err := f.step("AppendRun"); err != nil {
		return nil, err
	}
	w, err := a.AppendRun(ctx, expID, r, base)
	if err != nil {
		return nil, err
	}
	return &failWriter{RunWriter: w, f: f}, nil
}

// FindBase forwards to the wrapped sink's BaseFinder, if any.
func (f *FailAt) FindBase(ctx context.Context, origin schema.Ref) (string, string, []byte, bool, error) {
	if bf, ok := f.Sink.(sinks.BaseFinder); ok {
		return bf.FindBase(ctx, origin)
	}
	return "", "", nil, false, nil
}

// FindRun forwards to the wrapped sink's RunFinder, if any.
func (f *FailAt) FindRun(ctx context.Context, origin schema.Ref) (sinks.RunState, string, error) {
	if rf, ok := f.Sink.(sinks.RunFinder); ok {
		return rf.FindRun(ctx, origin)
	}
	return sinks.RunMissing, "", nil
}

type failWriter struct {
	sinks.RunWriter
	f *FailAt
}

var errUnsupported = fault.Permanent(errors.ErrUnsupported)

func (w *failWriter) WriteMetrics(ctx context.Context, b []schema.Metric) error {
	if err := w.f.step("WriteMetrics"); err != nil {
		return err
	}
	return w.RunWriter.WriteMetrics(ctx, b)
}

func (w *failWriter) WriteRichValues(ctx context.Context, v []schema.RichValue) error {
	rw, ok := w.RunWriter.(sinks.RichValueWriter)
	if !ok {
		return errUnsupported
	}
	if err := w.f.step("WriteRichValues"); err != nil {
		return err
	}
	return rw.WriteRichValues(ctx, v)
}

func (w *failWriter) WriteLogs(ctx context.Context, l []schema.LogLine) error {
	lw, ok := w.RunWriter.(sinks.LogWriter)
	if !ok {
		return errUnsupported
	}
	if err := w.f.step("WriteLogs"); err != nil {
		return err
	}
	return lw.WriteLogs(ctx, l)
}

func (w *failWriter) WriteArtifact(ctx context.Context, a schema.Artifact, body io.Reader) error {
	aw, ok := w.RunWriter.(sinks.ArtifactWriter)
	if !ok {
		return errUnsupported
	}
	if err := w.f.step("WriteArtifact"); err != nil {
		return err
	}
	return aw.WriteArtifact(ctx, a, body)
}

func (w *failWriter) SetFingerprint(fp string) {
	if fw, ok := w.RunWriter.(sinks.Fingerprinted); ok {
		fw.SetFingerprint(fp)
	}
}

func (w *failWriter) SetMark(mark string) {
	if m, ok := w.RunWriter.(sinks.Marked); ok {
		m.SetMark(mark)
	}
}

// SetCursors forwards to the wrapped writer's sinks.CursorKeeper, if any.
func (w *failWriter) SetCursors(doc []byte) {
	if c, ok := w.RunWriter.(sinks.CursorKeeper); ok {
		c.SetCursors(doc)
	}
}

// FileDelta forwards to the wrapped writer's sinks.FileDeltaReporter, if
// any.
func (w *failWriter) FileDelta() (keptFiles, keptBytes, deletedFiles int64) {
	if d, ok := w.RunWriter.(sinks.FileDeltaReporter); ok {
		return d.FileDelta()
	}
	return 0, 0, 0
}

func (w *failWriter) DestID() string {
	if d, ok := w.RunWriter.(sinks.Identified); ok {
		return d.DestID()
	}
	return ""
}

func (w *failWriter) Commit(ctx context.Context) error {
	if err := w.f.step("Commit"); err != nil {
		return err
	}
	return w.RunWriter.Commit(ctx)
}
