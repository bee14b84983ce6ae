// Package sinktest is the conformance suite every sink adapter runs: it
// copies the canonical dataset (sources/dataset.Canonical) into the sink
// through the real engine, reads it back through the adapter's paired
// source, and demands an exact match, also after a failure injected at
// every step and after an interrupted copy.
package sinktest

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// Opt configures the suite for one adapter.
type Opt struct {
	// New returns a fresh, empty sink and a function that opens a source
	// reading back what the sink holds (called after the sink is closed).
	New func(t *testing.T) (sinks.Sink, func() sources.Source)
	// Reopen, when set, returns a second sink writing to the same place as
	// the last one New returned, as a new process would after a crash. When
	// nil, the same sink value is reused for re-runs.
	Reopen func(t *testing.T) sinks.Sink
	// Diff relaxes the comparison for what the sink cannot represent; say
	// why at the call site.
	Diff dataset.DiffOptions
	// FailureStride tests failure at every FailureStride-th operation
	// (default 1: every operation). Slow sinks may raise it.
	FailureStride int
	// FailureFirst is the first operation failed (1-based; default 1).
	// Suites run on several stores with one stride can give each store
	// another first operation, so that together they fail every one.
	FailureFirst int
	// Skip maps a subtest name to the reason it does not apply.
	Skip map[string]string
	// FormerAppendRefused, for an Appender that cannot extend a copy held
	// under a former origin (sinks.Appender), is a text its refusal
	// contains; AppendUnderFormerOrigin then requires every such run to be
	// written whole saying so, instead of appended to.
	FormerAppendRefused string
}

// Run runs the suite.
func Run(t *testing.T, opt Opt) {
	if opt.FailureStride <= 0 {
		opt.FailureStride = 1
	}
	if opt.FailureFirst <= 0 {
		opt.FailureFirst = 1
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Opt)
	}{
		{"RoundTripCanonical", testRoundTrip},
		{"CopyTwiceNoDuplicate", testCopyTwice},
		{"PutExperimentIdempotent", testPutExperimentIdempotent},
		{"OpenRunAgainNoDuplicate", testOpenRunAgain},
		{"FailureAtEveryStepThenResume", testFailureAtEveryStep},
		{"CancelThenResume", testCancel},
		{"FormerOriginsReplaced", testFormerOrigins},
		{"CheckSeesExtraRuns", testCheckSeesExtraRuns},
		{"AppendGrown", testAppendGrown},
		{"AppendFailureThenResume", testAppendFailureThenResume},
		{"AppendUnderFormerOrigin", testAppendUnderFormerOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if why, ok := opt.Skip[tt.name]; ok {
				t.Skip(why)
			}
			tt.fn(t, opt)
		})
	}
}

// failurePoints yields the operations (1-based, up to total) the suite
// fails, with the failure injected at each: every FailureStride-th from
// FailureFirst, the kinds (retryable, permanent, fatal) in turn. The kind
// follows the count of failures injected, not the operation's number: with
// n%3, a stride of 3 injected one kind only (every third operation from
// the first is 1 modulo 3). With stride 1 from 1 the kinds are as n%3 gave.
func failurePoints(opt Opt, total int) iter.Seq2[int, error] {
	kinds := []error{fault.Retryable(ErrInjected, 0), fault.Permanent(ErrInjected), fault.Fatal(ErrInjected)}
	return func(yield func(int, error) bool) {
		for i, n := 0, opt.FailureFirst; n <= total; i, n = i+1, n+opt.FailureStride {
			if !yield(n, kinds[(opt.FailureFirst+i)%len(kinds)]) {
				return
			}
		}
	}
}

func copyAll(t *testing.T, src sources.Source, dst sinks.Sink, attempts int) (*transfer.Report, error) {
	t.Helper()
	return transfer.Copy(context.Background(), src, dst, transfer.Options{
		Attempts: attempts, Backoff: func(int) time.Duration { return time.Millisecond }})
}

func reopen(t *testing.T, opt Opt, last sinks.Sink) sinks.Sink {
	if opt.Reopen == nil {
		return last
	}
	last.Close()
	return opt.Reopen(t)
}

func expectEqual(t *testing.T, opt Opt, want *dataset.Dataset, read func() sources.Source) {
	t.Helper()
	src := read()
	defer src.Close()
	got, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatalf("reading back: %v", err)
	}
	if diff := dataset.Diff(want, got, opt.Diff); diff != nil {
		t.Fatalf("read back differs from what was written (%s vs %s):\n%s", want.Describe(), got.Describe(), strings.Join(diff, "\n"))
	}
}

func testRoundTrip(t *testing.T, opt Opt) {
	want := dataset.Canonical()
	dst, read := opt.New(t)
	rep, err := copyAll(t, memsrc.New(want), dst, 1)
	if err != nil || rep.Totals.Committed != len(want.Runs) {
		t.Fatalf("copy: err %v, report %+v", err, rep.Totals)
	}
	dst.Close()
	expectEqual(t, opt, want, read)
}

func testCopyTwice(t *testing.T, opt Opt) {
	want := dataset.Canonical()
	dst, read := opt.New(t)
	if _, err := copyAll(t, memsrc.New(want), dst, 1); err != nil {
		t.Fatal(err)
	}
	dst = reopen(t, opt, dst)
	rep, err := copyAll(t, memsrc.New(want), dst, 1)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("second copy: err %v, %+v", err, rep.Totals)
	}
	if _, ok := dst.(sinks.RunFinder); ok && rep.Totals.Unchanged != len(want.Runs)-1 {
		// every run but the RUNNING one, which is always refreshed
		t.Errorf("second copy rewrote finished runs: %+v", rep.Totals)
	}
	dst.Close()
	expectEqual(t, opt, want, read)
}

func testPutExperimentIdempotent(t *testing.T, opt Opt) {
	dst, _ := opt.New(t)
	defer dst.Close()
	e := dataset.Canonical().Experiments[0]
	ctx := context.Background()
	a, err := dst.PutExperiment(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dst.PutExperiment(ctx, e)
	if err != nil || a != b {
		t.Fatalf("second PutExperiment = %q, %v; first %q", b, err, a)
	}
}

// testOpenRunAgain writes part of a run, abandons it, then writes it whole:
// the result must hold each point once.
func testOpenRunAgain(t *testing.T, opt Opt) {
	want := dataset.Canonical()
	want.Runs = want.Runs[:1]
	rd := want.Runs[0]
	dst, read := opt.New(t)
	ctx := context.Background()
	id, err := dst.PutExperiment(ctx, want.Experiments[0])
	if err != nil {
		t.Fatal(err)
	}
	w, err := dst.OpenRun(ctx, id, rd.Run)
	if err != nil {
		t.Fatal(err)
	}
	limit := dst.Limits().MaxMetricsPerWrite
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	if err := w.WriteMetrics(ctx, rd.Metrics[:limit]); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	dst = reopen(t, opt, dst)
	if _, err := copyAll(t, memsrc.New(want), dst, 1); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	expectEqual(t, opt, want, read)
}

// testFailureAtEveryStep injects a failure at each operation of a copy in
// turn, then re-runs the copy without failures: every outcome must equal an
// uninterrupted copy.
func testFailureAtEveryStep(t *testing.T, opt Opt) {
	probe, _ := opt.New(t)
	counter := NewFailAt(probe, 0, nil)
	if _, err := copyAll(t, memsrc.New(dataset.Canonical()), counter, 1); err != nil {
		t.Fatal(err)
	}
	probe.Close()
	total := counter.Ops()
	for n, kind := range failurePoints(opt, total) {
		want := dataset.Canonical()
		dst, read := opt.New(t)
		rep, err := copyAll(t, memsrc.New(want), NewFailAt(dst, n, kind), 1)
		if fault.KindOf(kind) == fault.KindFatal {
			if err == nil || !errors.Is(err, ErrInjected) {
				t.Fatalf("failure %d (fatal): copy returned %v", n, err)
			}
		} else if err != nil || rep.Totals.Failed != 1 {
			t.Fatalf("failure %d (%v): err %v, totals %+v", n, fault.KindOf(kind), err, rep.Totals)
		}
		dst = reopen(t, opt, dst)
		rep, err = copyAll(t, memsrc.New(want), dst, 1)
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("failure %d: resume: err %v, totals %+v", n, err, rep.Totals)
		}
		dst.Close()
		expectEqual(t, opt, want, read)
	}
	t.Logf("injected a failure at each of %d operations (stride %d, from %d)", total, opt.FailureStride, opt.FailureFirst)
}

// cancelingSource cancels the job after the first page of metrics.
type cancelingSource struct {
	*memsrc.Source
	cancel context.CancelFunc
}

func (s cancelingSource) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		for page, err := range s.Source.Metrics(ctx, run) {
			if !yield(page, err) {
				return
			}
			s.cancel()
		}
	}
}

func testCancel(t *testing.T, opt Opt) {
	want := dataset.Canonical()
	dst, read := opt.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rep, err := transfer.Copy(ctx, cancelingSource{memsrc.New(want), cancel}, dst, transfer.Options{Concurrency: 1})
	if rep.Verdict(err) != transfer.VerdictInterrupted {
		t.Fatalf("canceled copy: exit %d, err %v", rep.Verdict(err), err)
	}
	dst = reopen(t, opt, dst)
	if rep, err := copyAll(t, memsrc.New(want), dst, 1); err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("resume: %v %+v", err, rep.Totals)
	}
	dst.Close()
	expectEqual(t, opt, want, read)
}

// Renamed returns d with every origin (of experiments, runs, run
// experiments and parents) given a new id, "instance-b/" + the old one, as
// a source does whose origins came to name its instance.
func Renamed(d *dataset.Dataset) *dataset.Dataset {
	d = d.Clone()
	re := func(r schema.Ref) schema.Ref {
		if r.IsZero() {
			return r
		}
		return schema.Ref{System: r.System, ID: "instance-b/" + r.ID}
	}
	for i := range d.Experiments {
		d.Experiments[i].Origin = re(d.Experiments[i].Origin)
	}
	for _, r := range d.Runs {
		r.Run.Origin, r.Run.Experiment, r.Run.Parent = re(r.Run.Origin), re(r.Run.Experiment), re(r.Run.Parent)
	}
	return d
}

// FormerSource is a memory source (over a Renamed dataset) whose origins
// have former origins: the id without "instance-b/".
type FormerSource struct{ *memsrc.Source }

// FormerOrigins implements sources.FormerOriginer.
func (FormerSource) FormerOrigins(ref schema.Ref) []schema.Ref {
	if id, ok := strings.CutPrefix(ref.ID, "instance-b/"); ok {
		return []schema.Ref{{System: ref.System, ID: id}}
	}
	return nil
}

// testFormerOrigins writes the canonical dataset, then copies it again
// from a source whose origins changed (sources.FormerOriginer naming the
// old ones), as after an upgrade that made origins name their instance:
// the sink must find each run under its former origin, and end up holding
// the dataset once, under the new origins only; a third copy changes
// nothing.
func testFormerOrigins(t *testing.T, opt Opt) {
	old := dataset.Canonical()
	want := Renamed(old)
	dst, read := opt.New(t)
	if rep, err := copyAll(t, memsrc.New(old), dst, 1); err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("first copy: %v %+v", err, rep.Totals)
	}
	dst = reopen(t, opt, dst)
	src := FormerSource{memsrc.New(want)}
	setter, ok := dst.(sinks.FormerOriginsSetter)
	if !ok {
		t.Fatal("the sink does not implement sinks.FormerOriginsSetter: a source whose origins changed would be copied twice")
	}
	if finder, ok := dst.(sinks.RunFinder); ok {
		r := want.Runs[0].Run
		setter.SetFormerOrigins(r.Origin, src.FormerOrigins(r.Origin))
		st, _, err := finder.FindRun(context.Background(), r.Origin)
		if err != nil || st != sinks.RunUnderFormerOrigin {
			t.Fatalf("FindRun(%s) with the former origin %v held = %v, %v; want RunUnderFormerOrigin", r.Origin, src.FormerOrigins(r.Origin), st, err)
		}
	}
	rep, err := copyAll(t, src, dst, 1)
	if err != nil || rep.Totals.Failed != 0 || rep.Totals.Committed != len(want.Runs) {
		t.Fatalf("copy under the new origins: %v %+v", err, rep.Totals)
	}
	for _, r := range rep.Runs {
		if !strings.Contains(r.Reason, "former origin") {
			t.Errorf("run %s %s for the reason %q, want one naming its former origin", r.Origin, r.Outcome, r.Reason)
		}
	}
	dst = reopen(t, opt, dst)
	rep, err = copyAll(t, src, dst, 1)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("third copy: %v %+v", err, rep.Totals)
	}
	if _, ok := dst.(sinks.RunFinder); ok && rep.Totals.Unchanged != len(want.Runs)-1 {
		t.Errorf("third copy rewrote finished runs: %+v", rep.Totals)
	}
	dst.Close()
	expectEqual(t, opt, want, read)
}

// testCheckSeesExtraRuns: what the sink holds reads back so that check sees
// a run the source no longer has (deleted at the source, or written by
// another job) as an unexpected run, and no other run as one.
func testCheckSeesExtraRuns(t *testing.T, opt Opt) {
	want := dataset.Canonical()
	dst, read := opt.New(t)
	if _, err := copyAll(t, memsrc.New(want), dst, 1); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	less := want.Clone()
	gone := less.Runs[0].Run.Origin
	less.Runs = less.Runs[1:]
	back := read()
	defer back.Close()
	res, err := check.Run(context.Background(), memsrc.New(less), back, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var extra []string
	for _, d := range res.Differences {
		if strings.Contains(d.What, "unexpected run") {
			extra = append(extra, d.Run)
		}
	}
	if len(extra) != 1 || extra[0] != gone.String() {
		t.Fatalf("unexpected runs found %q, want only %s; all differences: %v", extra, gone, res.Differences)
	}
}
