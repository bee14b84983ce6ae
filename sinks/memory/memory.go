// Package memory is a sink that keeps what it is given in memory. It is the
// reference implementation of the sinks.Sink contract and drives the
// engine's tests; Source reads back what it holds.
package memory

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// Sink stores experiments and runs keyed by origin.
type Sink struct {
	limits sinks.Limits

	mu    sync.Mutex
	exps  []schema.Experiment
	runs  map[schema.Ref]*stored
	order []schema.Ref
	opens int
	// former maps an origin to its former origins (SetFormerOrigins).
	former map[schema.Ref][]schema.Ref
}

type stored struct {
	data        dataset.RunData
	complete    bool
	fingerprint string
	mark        string // sinks.Marked, stored at commit
	expID       string
}

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.RunFinder = (*Sink)(nil)

	_ sinks.FormerOriginsSetter = (*Sink)(nil)
	_ sinks.Appender            = (*Sink)(nil)
	_ sinks.LateRunSink         = (*Sink)(nil)
)

// TakesRunsLate says the writers of OpenRun take the run's fields until
// Commit (sinks.RunSetter).
func (s *Sink) TakesRunsLate() bool { return true }

// New returns an empty sink declaring limits; WriteMetrics rejects larger
// batches, as a real server would.
func New(limits sinks.Limits) *Sink {
	return &Sink{limits: limits, runs: map[schema.Ref]*stored{}, former: map[schema.Ref][]schema.Ref{}}
}

// SetFormerOrigins records the former origins of origin: FindRun reports a
// run held under one of them, Commit removes it, and an experiment held
// under one of them is removed once no run is left in it.
func (s *Sink) SetFormerOrigins(origin schema.Ref, former []schema.Ref) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.former[origin] = slices.Clone(former)
}

// retireFormer removes the runs held under the former origins of run (when
// given) and the experiments held under the former origins of exp that no
// run is left in. s.mu is held.
func (s *Sink) retireFormer(run, exp schema.Ref) {
	for _, f := range s.former[run] {
		if _, ok := s.runs[f]; ok {
			delete(s.runs, f)
			s.order = slices.DeleteFunc(s.order, func(r schema.Ref) bool { return r == f })
		}
	}
	for _, f := range s.former[exp] {
		id := "exp-" + f.String()
		used := false
		for _, st := range s.runs {
			used = used || st.expID == id
		}
		if !used {
			s.exps = slices.DeleteFunc(s.exps, func(e schema.Experiment) bool { return e.Origin == f })
		}
	}
}

// Limits returns the limits given to New.
func (s *Sink) Limits() sinks.Limits { return s.limits }

// PutExperiment stores e, or finds the experiment stored from e.Origin, and
// returns its id ("exp-<origin>").
func (s *Sink) PutExperiment(_ context.Context, e schema.Experiment) (string, error) {
	if err := e.Validate(); err != nil {
		return "", fault.Permanent(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := "exp-" + e.Origin.String()
	s.retireFormer(schema.Ref{}, e.Origin)
	for i, have := range s.exps {
		if have.Origin == e.Origin {
			s.exps[i] = e
			return id, nil
		}
	}
	s.exps = append(s.exps, e)
	return id, nil
}

// OpenRun starts r, or re-opens it: whatever an earlier attempt stored is
// replaced by what this writer is given, and Commit removes what is held
// under r's former origins.
func (s *Sink) OpenRun(_ context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.ContainsFunc(s.exps, func(e schema.Experiment) bool { return "exp-"+e.Origin.String() == expID }) {
		return nil, fault.Permanent(fmt.Errorf("memory sink: unknown experiment id %q", expID))
	}
	s.opens++
	st, ok := s.runs[r.Origin]
	if !ok {
		st = &stored{}
		s.runs[r.Origin] = st
		s.order = append(s.order, r.Origin)
	}
	*st = stored{data: dataset.RunData{Run: r}, expID: expID}
	return &writer{sink: s, st: st}, nil
}

// AppendRun re-opens the committed run from r.Origin to extend it
// (sinks.Appender): the run must be complete in experiment expID with the
// mark base.Mark. It becomes incomplete at once; its metrics are kept and
// the points written are added after them, while its metadata, console
// output, rich values and files are replaced by what this writer is given.
func (s *Sink) AppendRun(_ context.Context, expID string, r schema.Run, base sinks.AppendBase) (sinks.RunWriter, error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.runs[r.Origin]
	if !ok {
		// Held under a former origin: that copy is extended and re-keyed
		// (its experiment is the one under the new origin now).
		for _, f := range s.former[r.Origin] {
			if held, found := s.runs[f]; found && held.complete && held.mark == base.Mark {
				delete(s.runs, f)
				s.runs[r.Origin] = held
				s.order[slices.Index(s.order, f)] = r.Origin
				held.expID, st, ok = expID, held, true
				break
			}
		}
	}
	switch {
	case !ok:
		return nil, sinks.CannotAppend("the destination does not hold the run")
	case !st.complete || st.mark == "":
		return nil, sinks.CannotAppend("the destination holds an incomplete copy (an earlier write was cut short)")
	case st.mark != base.Mark:
		return nil, sinks.CannotAppend("the destination holds another copy than the ledger recorded")
	case st.expID != expID:
		return nil, sinks.CannotAppend("the run moved to another experiment")
	}
	s.opens++
	st.complete, st.mark = false, ""
	prev := map[string]dataset.File{}
	for _, f := range st.data.Files {
		if f.Problem == "" {
			prev[f.Path] = f
		}
	}
	st.data = dataset.RunData{Run: r, Metrics: st.data.Metrics}
	return &writer{sink: s, st: st, prev: prev}, nil
}

// FindRun reports whether the run from origin is missing, incomplete or
// complete, and the fingerprint committed with it.
func (s *Sink) FindRun(_ context.Context, origin schema.Ref) (sinks.RunState, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.runs[origin]
	switch {
	case !ok:
		for _, f := range s.former[origin] {
			if _, ok := s.runs[f]; ok {
				return sinks.RunUnderFormerOrigin, "", nil
			}
		}
		return sinks.RunMissing, "", nil
	case !st.complete:
		return sinks.RunIncomplete, "", nil
	}
	return sinks.RunComplete, st.fingerprint, nil
}

// Opens returns how many times OpenRun succeeded, for tests.
func (s *Sink) Opens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opens
}

// Dataset returns a copy of everything stored, complete or not, runs in the
// order first opened.
func (s *Sink) Dataset() *dataset.Dataset {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &dataset.Dataset{Experiments: slices.Clone(s.exps)}
	for _, ref := range s.order {
		rd := s.runs[ref].data
		d.Runs = append(d.Runs, &rd)
	}
	return d.Clone()
}

// Incomplete returns the origins of runs opened but not committed.
func (s *Sink) Incomplete() []schema.Ref {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []schema.Ref
	for _, ref := range s.order {
		if !s.runs[ref].complete {
			out = append(out, ref)
		}
	}
	return out
}

// Source returns a source reading back what the sink holds now.
func (s *Sink) Source() *memsrc.Source { return memsrc.New(s.Dataset()) }

// Close does nothing; the data stays readable.
func (s *Sink) Close() error { return nil }

type writer struct {
	sink *Sink
	st   *stored
	mark string
	done bool
	// prev holds, appending, the files the run held, by path (see
	// FileDelta); kept and keptBytes count those given again unchanged.
	prev            map[string]dataset.File
	kept, keptBytes int64
}

var (
	_ sinks.RunSetter         = (*writer)(nil)
	_ sinks.RunWriter         = (*writer)(nil)
	_ sinks.ArtifactWriter    = (*writer)(nil)
	_ sinks.LogWriter         = (*writer)(nil)
	_ sinks.RichValueWriter   = (*writer)(nil)
	_ sinks.Fingerprinted     = (*writer)(nil)
	_ sinks.Marked            = (*writer)(nil)
	_ sinks.FileDeltaReporter = (*writer)(nil)
)

func (w *writer) check() error {
	if w.done {
		return fault.Permanent(fmt.Errorf("memory sink: run %s already committed or aborted", w.st.data.Run.Origin))
	}
	return nil
}

func (w *writer) WriteMetrics(_ context.Context, batch []schema.Metric) error {
	if err := w.check(); err != nil {
		return err
	}
	if max := w.sink.limits.MaxMetricsPerWrite; max > 0 && len(batch) > max {
		return fault.Permanent(fmt.Errorf("memory sink: batch of %d points exceeds the limit of %d", len(batch), max))
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.st.data.Metrics = append(w.st.data.Metrics, batch...)
	return nil
}

func (w *writer) WriteRichValues(_ context.Context, values []schema.RichValue) error {
	if err := w.check(); err != nil {
		return err
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.st.data.RichValues = append(w.st.data.RichValues, values...)
	return nil
}

func (w *writer) WriteLogs(_ context.Context, lines []schema.LogLine) error {
	if err := w.check(); err != nil {
		return err
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.st.data.Logs = append(w.st.data.Logs, lines...)
	return nil
}

func (w *writer) WriteArtifact(_ context.Context, a schema.Artifact, body io.Reader) error {
	if err := w.check(); err != nil {
		return err
	}
	f := dataset.File{Path: a.Path, Problem: a.Problem}
	if body != nil {
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, body); err != nil {
			return err
		}
		if a.Size >= 0 && int64(buf.Len()) != a.Size {
			return fault.Permanent(fmt.Errorf("memory sink: artifact %s: got %d bytes, expected %d", a.Path, buf.Len(), a.Size))
		}
		f.Content = buf.Bytes()
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	if old, ok := w.prev[a.Path]; ok && body != nil && bytes.Equal(old.Content, f.Content) &&
		!slices.ContainsFunc(w.st.data.Files, func(g dataset.File) bool { return g.Path == a.Path }) {
		w.kept, w.keptBytes = w.kept+1, w.keptBytes+int64(len(f.Content))
	}
	files := slices.DeleteFunc(w.st.data.Files, func(g dataset.File) bool { return g.Path == a.Path })
	files = append(files, f)
	slices.SortFunc(files, func(a, b dataset.File) int { return strings.Compare(a.Path, b.Path) })
	w.st.data.Files = files
	return nil
}

// FileDelta implements sinks.FileDeltaReporter: appending, the files
// given again with the content held are counted kept, and those held but
// not given again deleted.
func (w *writer) FileDelta() (keptFiles, keptBytes, deletedFiles int64) {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	for p := range w.prev {
		if !slices.ContainsFunc(w.st.data.Files, func(g dataset.File) bool { return g.Path == p }) {
			deletedFiles++
		}
	}
	return w.kept, w.keptBytes, deletedFiles
}

func (w *writer) SetFingerprint(fp string) {
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.st.fingerprint = fp
}

// SetMark stores mark with the commit (sinks.Marked).
func (w *writer) SetMark(mark string) { w.mark = mark }

// SetRun replaces the run's fields before Commit (sinks.RunSetter).
func (w *writer) SetRun(r schema.Run) error {
	if err := w.check(); err != nil {
		return err
	}
	if err := r.Validate(); err != nil {
		return fault.Permanent(err)
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	if cur := w.st.data.Run; r.Origin != cur.Origin || r.Experiment != cur.Experiment {
		return fault.Permanent(fmt.Errorf("memory sink: SetRun given run %s of experiment %s for run %s", r.Origin, r.Experiment, cur.Origin))
	}
	w.st.data.Run = r
	return nil
}

func (w *writer) Commit(context.Context) error {
	if err := w.check(); err != nil {
		return err
	}
	w.sink.mu.Lock()
	defer w.sink.mu.Unlock()
	w.st.complete, w.st.mark = true, w.mark
	w.done = true
	r := w.st.data.Run
	w.sink.retireFormer(r.Origin, r.Experiment)
	return nil
}

func (w *writer) Abort(context.Context) error {
	w.done = true
	return nil
}
