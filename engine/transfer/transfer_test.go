package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/transform"
)

func fast(opt transfer.Options) transfer.Options {
	opt.Backoff = func(int) time.Duration { return time.Millisecond }
	return opt
}

func ledger(t *testing.T) *state.Ledger {
	l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "memory:a", Sink: "memory:b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func mustEqual(t *testing.T, want *dataset.Dataset, dst *memsink.Sink) {
	t.Helper()
	if diff := dataset.Diff(want, dst.Dataset(), dataset.DiffOptions{}); diff != nil {
		t.Fatalf("destination differs:\n%s", strings.Join(diff, "\n"))
	}
	if inc := dst.Incomplete(); len(inc) != 0 {
		t.Fatalf("incomplete runs left: %v", inc)
	}
}

// TestFailureAtEachStepThenRerun: with a ledger, a failure injected at
// each operation of a multi-run copy followed by a re-run ends identical to
// an uninterrupted copy.
func TestFailureAtEachStepThenRerun(t *testing.T) {
	want := dataset.Canonical()
	probe := sinktest.NewFailAt(memsink.New(sinks.Limits{MaxMetricsPerWrite: 700}), 0, nil)
	if _, err := transfer.Copy(context.Background(), memsrc.New(want), probe, fast(transfer.Options{})); err != nil {
		t.Fatal(err)
	}
	total := probe.Ops()
	if total < 15 {
		t.Fatalf("only %d operations: the fixture is too small to test", total)
	}
	for n := 1; n <= total; n++ {
		for _, kind := range []error{fault.Fatal(sinktest.ErrInjected), fault.Permanent(sinktest.ErrInjected)} {
			dst := memsink.New(sinks.Limits{MaxMetricsPerWrite: 700})
			l := ledger(t)
			rep, err := transfer.Copy(context.Background(), memsrc.New(want), sinktest.NewFailAt(dst, n, kind),
				fast(transfer.Options{Ledger: l, Attempts: 1}))
			code := rep.Verdict(err)
			if fault.KindOf(kind) == fault.KindFatal && code != transfer.VerdictFatal ||
				fault.KindOf(kind) == fault.KindPermanent && code != transfer.VerdictRunsFailed {
				t.Fatalf("op %d %v: exit %d (err %v)", n, fault.KindOf(kind), code, err)
			}
			rep, err = transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l}))
			if err != nil || rep.Totals.Failed != 0 {
				t.Fatalf("op %d: re-run exit %d: %v %+v", n, code, err, rep.Runs)
			}
			mustEqual(t, want, dst)
			// Committed runs are skipped by the ledger, not rewritten.
			if rep.Totals.Committed+rep.Totals.Unchanged != len(want.Runs) {
				t.Fatalf("op %d: re-run totals %+v", n, rep.Totals)
			}
		}
	}
}

func TestRetryableFailureIsRetried(t *testing.T) {
	want := dataset.Canonical()
	dst := memsink.New(sinks.Limits{})
	var retries atomic.Int32
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), sinktest.NewFailAt(dst, 4, nil), fast(transfer.Options{
		Observer: func(e transfer.Event) {
			if e.Kind == transfer.EventRetry {
				retries.Add(1)
			}
		}}))
	if err != nil || rep.Totals.Committed != len(want.Runs) || retries.Load() != 1 {
		t.Fatalf("err %v, totals %+v, retries %d", err, rep.Totals, retries.Load())
	}
	mustEqual(t, want, dst)
}

// failingRun is a source one of whose runs always fails to read.
type failingRun struct {
	*memsrc.Source
	bad schema.Ref
}

func (s failingRun) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	if run == s.bad {
		return func(yield func([]schema.Metric, error) bool) {
			yield(nil, fault.Permanent(errors.New("corrupt history at offset 42")))
		}
	}
	return s.Source.Metrics(ctx, run)
}

func TestPermanentFailureDoesNotStopOthers(t *testing.T) {
	want := dataset.Canonical()
	bad := want.Runs[1].Run.Origin
	dst := memsink.New(sinks.Limits{})
	rep, err := transfer.Copy(context.Background(), failingRun{memsrc.New(want), bad}, dst, fast(transfer.Options{}))
	if code := rep.Verdict(err); code != transfer.VerdictRunsFailed {
		t.Fatalf("exit %d, want 3: %v", code, err)
	}
	if rep.Totals.Committed != len(want.Runs)-1 || rep.Totals.Failed != 1 {
		t.Fatalf("totals %+v", rep.Totals)
	}
	for _, r := range rep.Runs {
		if r.Origin == bad.String() && (r.Outcome != transfer.Failed || !strings.Contains(r.Error, "offset 42") || r.Attempts != 1) {
			t.Fatalf("bad run reported as %+v", r)
		}
	}
	if inc := dst.Incomplete(); len(inc) != 1 || inc[0] != bad {
		t.Fatalf("incomplete = %v", inc)
	}
}

// cancelAfter cancels the job once n metric pages have been read.
type cancelAfter struct {
	*memsrc.Source
	n      *atomic.Int32
	cancel context.CancelFunc
}

func (s cancelAfter) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		for page, err := range s.Source.Metrics(ctx, run) {
			if s.n.Add(-1) == 0 {
				s.cancel()
			}
			if !yield(page, err) {
				return
			}
		}
	}
}

func TestCancelThenResume(t *testing.T) {
	want := dataset.Canonical()
	for pages := int32(1); pages <= 8; pages++ {
		dst := memsink.New(sinks.Limits{})
		l := ledger(t)
		ctx, cancel := context.WithCancel(context.Background())
		var n atomic.Int32
		n.Store(pages)
		rep, err := transfer.Copy(ctx, cancelAfter{memsrc.New(want), &n, cancel}, dst, fast(transfer.Options{Ledger: l, Concurrency: 2}))
		cancel()
		if code := rep.Verdict(err); code != transfer.VerdictInterrupted {
			t.Fatalf("after %d pages: exit %d, err %v", pages, code, err)
		}
		rep, err = transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l}))
		if err != nil || rep.Totals.Failed != 0 || rep.Totals.Interrupted != 0 {
			t.Fatalf("resume: %v %+v", err, rep.Totals)
		}
		mustEqual(t, want, dst)
	}
}

func TestRerunSkipsAndChangedRunIsRewritten(t *testing.T) {
	want := dataset.Canonical()
	dst := memsink.New(sinks.Limits{})
	l := ledger(t)
	if _, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l})); err != nil {
		t.Fatal(err)
	}
	opens := dst.Opens()
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l}))
	if err != nil || rep.Totals.Unchanged != len(want.Runs)-1 || dst.Opens() != opens+1 {
		// the RUNNING run is always refreshed
		t.Fatalf("re-run: %v totals %+v opens %d->%d", err, rep.Totals, opens, dst.Opens())
	}
	changed := want.Clone()
	changed.Runs[0].Run.Summary = []byte(`{"loss":0.2}`)
	changed.Runs[0].Metrics = append(changed.Runs[0].Metrics, schema.Metric{Key: "loss", Value: 0.2, Step: 9999})
	rep, err = transfer.Copy(context.Background(), memsrc.New(changed), dst, fast(transfer.Options{Ledger: l}))
	if err != nil || rep.Totals.Committed != 2 {
		t.Fatalf("changed run: %v totals %+v", err, rep.Totals)
	}
	mustEqual(t, changed, dst)
	// Without a ledger the sink's RunFinder gives the same answer.
	rep, err = transfer.Copy(context.Background(), memsrc.New(changed), dst, fast(transfer.Options{}))
	if err != nil || rep.Totals.Unchanged != len(want.Runs)-1 {
		t.Fatalf("no ledger: %v totals %+v", err, rep.Totals)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	want := dataset.Canonical()
	dst := memsink.New(sinks.Limits{})
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{DryRun: true}))
	if err != nil || rep.Totals.Planned != len(want.Runs) {
		t.Fatalf("dry run: %v %+v", err, rep.Totals)
	}
	var points int64
	for _, r := range want.Runs {
		points += int64(len(r.Metrics))
	}
	if rep.Totals.Points != points || rep.Totals.Files != 4 {
		t.Fatalf("dry run counted %d points %d files, want %d and 4", rep.Totals.Points, rep.Totals.Files, points)
	}
	if d := dst.Dataset(); len(d.Runs) != 0 || len(d.Experiments) != 0 {
		t.Fatalf("dry run wrote %s", d.Describe())
	}
}

func TestFiltersAndBatchLimit(t *testing.T) {
	want := dataset.Canonical()
	dst := memsink.New(sinks.Limits{MaxMetricsPerWrite: 3, MaxInFlight: 1})
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{
		Filter: transfer.Filter{Include: []string{"vis*"}, RunIDs: []string{"run-big", "run-special"},
			Since: want.Runs[0].Run.Start}}))
	if err != nil {
		t.Fatal(err)
	}
	got := dst.Dataset()
	if len(got.Runs) != 2 || rep.Totals.Committed != 2 {
		t.Fatalf("filtered copy wrote %s", got.Describe())
	}
	want.Runs = want.Runs[:2]
	want.Experiments = want.Experiments[:1]
	mustEqual(t, want, dst)
	rep, _ = transfer.Copy(context.Background(), memsrc.New(dataset.Canonical()), memsink.New(sinks.Limits{}),
		fast(transfer.Options{Filter: transfer.Filter{Exclude: []string{"vision"}}}))
	if rep.Totals.Runs != 2 {
		t.Fatalf("exclude: %d runs", rep.Totals.Runs)
	}
}

func TestVerdicts(t *testing.T) {
	cases := []struct {
		rep  transfer.Report
		err  error
		want transfer.Verdict
	}{
		{transfer.Report{}, nil, transfer.VerdictOK},
		{transfer.Report{Totals: transfer.Totals{Failed: 1}}, nil, transfer.VerdictRunsFailed},
		{transfer.Report{Totals: transfer.Totals{Damaged: 1}}, nil, transfer.VerdictRunsFailed},
		{transfer.Report{Problems: []string{"p"}}, nil, transfer.VerdictRunsFailed},
		{transfer.Report{Totals: transfer.Totals{FilesNotCopied: 1}}, nil, transfer.VerdictRunsFailed},
		// --accept-gaps: the source's gaps are still counted, not failed on.
		{transfer.Report{AcceptedGaps: true, Totals: transfer.Totals{Damaged: 1, FilesNotCopied: 1}}, nil, transfer.VerdictOK},
		{transfer.Report{AcceptedGaps: true, Totals: transfer.Totals{Failed: 1}}, nil, transfer.VerdictRunsFailed},
		{transfer.Report{Fatal: "x"}, fmt.Errorf("x"), transfer.VerdictFatal},
		{transfer.Report{Canceled: true}, context.Canceled, transfer.VerdictInterrupted},
	}
	for _, c := range cases {
		if got := c.rep.Verdict(c.err); got != c.want {
			t.Errorf("Verdict(%+v, %v) = %d, want %d", c.rep, c.err, got, c.want)
		}
	}
}

func TestTransformApplied(t *testing.T) {
	want := dataset.Canonical()
	dst := memsink.New(sinks.Limits{})
	_, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{
		Transform: transform.Chain{transform.PrefixExperiments("wb/"), transform.DropMetrics{"system/*"}}}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want.Experiments {
		want.Experiments[i].Name = "wb/" + want.Experiments[i].Name
	}
	big := want.Runs[0]
	big.Metrics = big.Metrics[:len(big.Metrics)-3] // the three system/gpu.0.temp points
	mustEqual(t, want, dst)
}

func TestDamagedSourceRunsExit3(t *testing.T) {
	want := dataset.Canonical() // run-special carries a damage note
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), memsink.New(sinks.Limits{}), fast(transfer.Options{}))
	if err != nil || rep.Totals.Committed != len(want.Runs) || rep.Totals.Damaged != 1 || rep.Verdict(err) != transfer.VerdictRunsFailed {
		t.Fatalf("err %v totals %+v exit %d", err, rep.Totals, rep.Verdict(err))
	}
}

func TestExperimentWithoutRunsIsCopied(t *testing.T) {
	want := dataset.Canonical()
	want.Experiments = append(want.Experiments, schema.Experiment{Origin: schema.Ref{System: "memory", ID: "exp-empty"}, Name: "empty"})
	dst := memsink.New(sinks.Limits{})
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{}))
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatal(err, rep.Totals)
	}
	mustEqual(t, want, dst)
	// A dry run writes no experiment either.
	dry := memsink.New(sinks.Limits{})
	if _, err := transfer.Copy(context.Background(), memsrc.New(want), dry, fast(transfer.Options{DryRun: true})); err != nil {
		t.Fatal(err)
	}
	if n := len(dry.Dataset().Experiments); n != 0 {
		t.Fatalf("dry run wrote %d experiments", n)
	}
}

// concurrentWrites wraps a memory sink and records the most WriteMetrics
// calls in flight at once. Each call waits up to join for a second call to
// be in flight with it, so that calls the engine lets overlap do overlap,
// and signals overload (as an MLflow client meeting a 429 does) when
// overload is set.
type concurrentWrites struct {
	*memsink.Sink
	join      time.Duration
	overload  bool
	now, most atomic.Int32
}

func (s *concurrentWrites) OpenRun(ctx context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	w, err := s.Sink.OpenRun(ctx, expID, r)
	if err != nil {
		return nil, err
	}
	return &countingWriter{fullWriter: w.(fullWriter), s: s}, nil
}

// fullWriter is every interface the memory sink's writer implements.
type fullWriter interface {
	sinks.RunWriter
	sinks.ArtifactWriter
	sinks.LogWriter
	sinks.RichValueWriter
	sinks.Fingerprinted
}

type countingWriter struct {
	fullWriter
	s *concurrentWrites
}

func (w *countingWriter) WriteMetrics(ctx context.Context, batch []schema.Metric) error {
	n := w.s.now.Add(1)
	defer w.s.now.Add(-1)
	for {
		m := w.s.most.Load()
		if n <= m || w.s.most.CompareAndSwap(m, n) {
			break
		}
	}
	for end := time.Now().Add(w.s.join); time.Now().Before(end) && w.s.now.Load() < 2; {
		time.Sleep(time.Millisecond)
	}
	if w.s.overload {
		fault.SignalOverload(ctx)
	}
	return w.fullWriter.WriteMetrics(ctx, batch)
}

// TestAdaptiveWrites: a sink asking for AdaptiveWrites starts with as many
// metric writes in flight as runs (the limit moves only after two windows
// of three busy seconds, longer than this copy takes) and the report says
// so; writes that meet overload halve the limit down to one, which the
// report gives as the limit held longest; a sink not asking gets no limit
// and no report field. Every copy is whole. The climb itself is tested in
// engine/inflight.
func TestAdaptiveWrites(t *testing.T) {
	for _, tc := range []struct {
		name               string
		adaptive, overload bool
		report             int
	}{
		{"adaptive", true, false, 4},
		{"adaptive, overloaded", true, true, 1},
		{"not adaptive", false, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := dataset.Canonical()
			dst := &concurrentWrites{join: 2 * time.Second, overload: tc.overload,
				Sink: memsink.New(sinks.Limits{MaxMetricsPerWrite: 200, AdaptiveWrites: tc.adaptive})}
			if tc.overload {
				dst.join = 20 * time.Millisecond // at one in flight, no second write comes
			}
			rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Concurrency: 4}))
			if err != nil {
				t.Fatal(err)
			}
			mustEqual(t, want, dst.Sink)
			if rep.WritesInFlight != tc.report {
				t.Errorf("report says %d writes in flight, want %d", rep.WritesInFlight, tc.report)
			}
			if most := dst.most.Load(); !tc.overload && most < 2 {
				t.Errorf("at most %d write in flight, want several", most)
			}
		})
	}
}

// failAfterFirstPage is a source one of whose runs fails after its first
// metric page was read (and written).
type failAfterFirstPage struct {
	*memsrc.Source
	bad schema.Ref
}

func (s failAfterFirstPage) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	if run != s.bad {
		return s.Source.Metrics(ctx, run)
	}
	return func(yield func([]schema.Metric, error) bool) {
		for page, err := range s.Source.Metrics(ctx, run) {
			if !yield(page, err) || err != nil {
				return
			}
			yield(nil, fault.Permanent(errors.New("corrupt history after the first page")))
			return
		}
	}
}

// TestTotalsCountOnlyCommittedRuns: points a failed run wrote before it
// failed are not reported as copied.
func TestTotalsCountOnlyCommittedRuns(t *testing.T) {
	want := dataset.Canonical()
	bad := want.Runs[0].Run.Origin
	dst := memsink.New(sinks.Limits{MaxMetricsPerWrite: 1})
	rep, err := transfer.Copy(context.Background(), failAfterFirstPage{memsrc.New(want), bad}, dst, fast(transfer.Options{DefaultBatch: 1}))
	if err != nil || rep.Totals.Failed != 1 {
		t.Fatalf("err %v totals %+v", err, rep.Totals)
	}
	var committed, failed int64
	for _, r := range rep.Runs {
		switch r.Outcome {
		case transfer.Committed:
			committed += r.Points
		case transfer.Failed:
			failed += r.Points
		}
	}
	if failed == 0 {
		t.Fatalf("the failed run wrote no point before failing; the test needs one: %+v", rep.Runs)
	}
	if rep.Totals.Points != committed {
		t.Fatalf("totals count %d points, committed runs hold %d (the failed run wrote %d)", rep.Totals.Points, committed, failed)
	}
}

// TestCopyWithoutTransformBringsWhatWasDropped: the transform is recorded
// with the run in the sink (its fingerprint), so a later copy without it,
// even with no ledger, writes the run again with the dropped metrics.
func TestCopyWithoutTransformBringsWhatWasDropped(t *testing.T) {
	want := dataset.Canonical()
	dst := memsink.New(sinks.Limits{})
	drop := transform.Chain{transform.DropMetrics{"system/*"}}
	if _, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Transform: drop})); err != nil {
		t.Fatal(err)
	}
	running := 0 // running runs are always written again
	for _, r := range want.Runs {
		if r.Run.Status == schema.StatusRunning {
			running++
		}
	}
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Transform: drop}))
	if err != nil || rep.Totals.Unchanged != len(want.Runs)-running {
		t.Fatalf("same transform again: %v %+v", err, rep.Totals)
	}
	rep, err = transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{}))
	if err != nil || rep.Totals.Committed != len(want.Runs) {
		t.Fatalf("without the transform: %v %+v", err, rep.Totals)
	}
	mustEqual(t, want, dst)
}

// TestLedgerFindsFormerOrigin: runs the ledger recorded under their former
// origins are recognised when the source now gives them new origins (the
// plan says so), written once under the new origins, and the copies under
// the former ones are gone; a re-run then skips them.
func TestLedgerFindsFormerOrigin(t *testing.T) {
	old := dataset.Canonical()
	want := sinktest.Renamed(old)
	mem := memsink.New(sinks.Limits{})
	l := ledger(t)
	if _, err := transfer.Copy(context.Background(), memsrc.New(old), mem, fast(transfer.Options{Ledger: l})); err != nil {
		t.Fatal(err)
	}
	// The memory sink without its FindRun: only the ledger knows what was
	// written.
	var dst sinks.Sink = struct {
		sinks.Sink
		sinks.FormerOriginsSetter
	}{mem, mem}
	if _, ok := dst.(sinks.RunFinder); ok {
		t.Fatal("the wrapped sink still finds runs")
	}
	src := sinktest.FormerSource{Source: memsrc.New(want)}
	rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: l}))
	if err != nil || rep.Totals.Committed != len(want.Runs) {
		t.Fatalf("copy under new origins: %v %+v", err, rep.Totals)
	}
	for _, r := range rep.Runs {
		ref, _ := schema.ParseRef(r.Origin)
		if f := src.FormerOrigins(ref); len(f) != 1 || !strings.Contains(r.Reason, "former origin "+f[0].String()) {
			t.Errorf("run %s: reason %q, want one naming its former origin", r.Origin, r.Reason)
		}
	}
	mustEqual(t, want, mem)
	rep, err = transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: l}))
	if err != nil || rep.Totals.Unchanged != len(want.Runs)-1 {
		t.Fatalf("re-run: %v %+v", err, rep.Totals)
	}
}

// failingWrites wraps a memory sink whose writers fail WriteMetrics with
// err for the runs bad selects, counting the calls.
type failingWrites struct {
	*memsink.Sink
	err    error
	bad    func(schema.Run) bool
	atOpen bool // fail OpenRun too, as a sink whose server is gone does
	calls  atomic.Int32
}

func (s *failingWrites) OpenRun(ctx context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	if s.atOpen && s.bad(r) {
		s.calls.Add(1)
		return nil, fault.Retryable(fmt.Errorf("creating run: %w", s.err), 0)
	}
	w, err := s.Sink.OpenRun(ctx, expID, r)
	if err != nil || !s.bad(r) {
		return w, err
	}
	return &failingWriter{fullWriter: w.(fullWriter), s: s}, nil
}

type failingWriter struct {
	fullWriter
	s *failingWrites
}

func (w *failingWriter) WriteMetrics(context.Context, []schema.Metric) error {
	w.s.calls.Add(1)
	return fault.Retryable(fmt.Errorf("writing batch: %w", w.s.err), 0)
}

// TestFullDiskStopsAtOnce: a write that meets a full disk stops the whole
// job after one attempt (exit 1), instead of retrying every remaining run.
func TestFullDiskStopsAtOnce(t *testing.T) {
	want := dataset.Canonical()
	full := &os.PathError{Op: "write", Path: "/archive/.staging/x", Err: syscall.ENOSPC}
	dst := &failingWrites{Sink: memsink.New(sinks.Limits{}), err: full, bad: func(schema.Run) bool { return true }}
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Concurrency: 1, Attempts: 3}))
	if rep.Verdict(err) != transfer.VerdictFatal || !strings.Contains(rep.Fatal, "no space left") {
		t.Fatalf("exit %d, fatal %q, err %v", rep.Verdict(err), rep.Fatal, err)
	}
	if n := dst.calls.Load(); n != 1 {
		t.Fatalf("%d writes tried after the disk was full, want 1", n)
	}
}

// TestUnreachableServer: when every run failed because a server could not
// be reached and none was written, the job failed (exit 1, saying so);
// when some run was written, only the failed runs failed (exit 3).
func TestUnreachableServer(t *testing.T) {
	want := dataset.Canonical()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	dst := &failingWrites{Sink: memsink.New(sinks.Limits{}), err: refused, atOpen: true, bad: func(schema.Run) bool { return true }}
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Attempts: 1}))
	if rep.Verdict(err) != transfer.VerdictFatal || !strings.Contains(rep.Fatal, "no run could be written: a server is unreachable") {
		t.Fatalf("all unreachable: exit %d, fatal %q\n%+v", rep.Verdict(err), rep.Fatal, rep.Runs)
	}
	some := want.Runs[0].Run.Origin
	dst = &failingWrites{Sink: memsink.New(sinks.Limits{}), err: refused, atOpen: true, bad: func(r schema.Run) bool { return r.Origin != some }}
	rep, err = transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Attempts: 1}))
	if rep.Verdict(err) != transfer.VerdictRunsFailed || rep.Totals.Committed != 1 {
		t.Fatalf("one written: exit %d, totals %+v, fatal %q", rep.Verdict(err), rep.Totals, rep.Fatal)
	}
	for _, r := range rep.Runs {
		if r.Outcome == transfer.Failed && !r.Unreachable {
			t.Errorf("failed run not marked unreachable: %+v", r)
		}
	}
}
