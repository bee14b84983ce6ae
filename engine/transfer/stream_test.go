package transfer_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// slowListing is a source whose listing, after its first run, waits (as
// for its next page) until released or for up to a while; then it yields
// the other runs, or fails with after when set.
type slowListing struct {
	*memsrc.Source
	release chan struct{}
	once    sync.Once
	// released is set when the listing went on because release was
	// closed, not because it waited its longest.
	released bool
	after    error
}

func (s *slowListing) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		first := true
		for r, err := range s.Source.Runs(ctx, exp) {
			if !first {
				waited := false
				s.once.Do(func() {
					waited = true
					select {
					case <-s.release:
						s.released = true
					case <-time.After(10 * time.Second):
					}
				})
				if waited && s.after != nil {
					yield(schema.Run{}, s.after)
					return
				}
			}
			first = false
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// releaseOnCommit returns an observer that closes s.release when a run is
// committed, recording the events' kinds in order.
func releaseOnCommit(s *slowListing, kinds *[]transfer.EventKind, mu *sync.Mutex) transfer.Observer {
	var once sync.Once
	return func(e transfer.Event) {
		mu.Lock()
		*kinds = append(*kinds, e.Kind)
		mu.Unlock()
		if e.Kind == transfer.EventRunDone && e.Result.Outcome == transfer.Committed {
			once.Do(func() { close(s.release) })
		}
	}
}

// TestTransferStartsWhileListing: a copy commits the first run listed
// while the listing waits for the rest (as a W&B cloud project's listing
// waits for its next page), instead of planning every run first; the
// destination, the totals and EventPlanned are those of a copy that
// planned first.
func TestTransferStartsWhileListing(t *testing.T) {
	want := dataset.Canonical()
	src := &slowListing{Source: memsrc.New(want), release: make(chan struct{})}
	dst := memsink.New(sinks.Limits{})
	var mu sync.Mutex
	var kinds []transfer.EventKind
	var plannedRuns int
	obs := releaseOnCommit(src, &kinds, &mu)
	rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: ledger(t), Observer: func(e transfer.Event) {
		if e.Kind == transfer.EventPlanned {
			plannedRuns = e.Runs
		}
		obs(e)
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if !src.released {
		t.Fatal("the listing waited 10 s for a run to be committed: the job planned every run before transferring any")
	}
	mustEqual(t, want, dst)
	if rep.Totals.Committed != len(want.Runs) || plannedRuns != len(want.Runs) {
		t.Fatalf("totals %+v, EventPlanned runs %d, want %d", rep.Totals, plannedRuns, len(want.Runs))
	}
	if kinds[0] == transfer.EventPlanned {
		t.Fatalf("EventPlanned came first (events %v): no run was transferred while planning", kinds)
	}
	// A dry run still counts every run, and plans them first.
	var dryKinds []transfer.EventKind
	rep, err = transfer.Copy(context.Background(), memsrc.New(want), memsink.New(sinks.Limits{}), fast(transfer.Options{DryRun: true,
		Observer: func(e transfer.Event) {
			mu.Lock()
			dryKinds = append(dryKinds, e.Kind)
			mu.Unlock()
		}}))
	if err != nil || rep.Totals.Planned != len(want.Runs) || dryKinds[0] != transfer.EventPlanned {
		t.Fatalf("dry run: err %v, totals %+v, events %v", err, rep.Totals, dryKinds)
	}
}

// TestSkippedRunsReportedFirst: in a job that transfers while it plans,
// the runs the plan skips come first in the report, in listing order, as
// when the plan ended before any transfer.
func TestSkippedRunsReportedFirst(t *testing.T) {
	want := dataset.Canonical()
	l := ledger(t)
	dst := memsink.New(sinks.Limits{})
	if _, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l})); err != nil {
		t.Fatal(err)
	}
	// The first listed run changes: it is committed while the listing
	// waits, before the other runs are listed and found unchanged.
	changed := want.Clone()
	changed.Runs[0].Run.Notes += " (edited)"
	src := &slowListing{Source: memsrc.New(changed), release: make(chan struct{})}
	var mu sync.Mutex
	var kinds []transfer.EventKind
	rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: l, Observer: releaseOnCommit(src, &kinds, &mu)}))
	if err != nil || !src.released {
		t.Fatalf("err %v, released %v", err, src.released)
	}
	var got []string
	for _, r := range rep.Runs {
		got = append(got, string(r.Outcome)+" "+r.Origin)
	}
	// Unchanged: every run but the edited one and the running one (always
	// written again), in listing order; then those two, in the order they
	// ended.
	var wantOrder []string
	written := map[string]bool{}
	for _, e := range changed.Experiments {
		for _, rd := range changed.Runs {
			switch {
			case rd.Run.Experiment != e.Origin:
			case rd == changed.Runs[0] || rd.Run.Status == schema.StatusRunning:
				written["committed "+rd.Run.Origin.String()] = true
			default:
				wantOrder = append(wantOrder, "unchanged "+rd.Run.Origin.String())
			}
		}
	}
	if len(written) != 2 || len(got) != len(wantOrder)+len(written) {
		t.Fatalf("report runs %q, want %q then %v", got, wantOrder, written)
	}
	for i := range got {
		if i < len(wantOrder) && got[i] != wantOrder[i] || i >= len(wantOrder) && !written[got[i]] {
			t.Fatalf("report runs %q, want %q then %v", got, wantOrder, written)
		}
	}
}

// TestListingFailsAfterStreamedRuns: a fatal listing error after a run was
// committed ends the job as fatal, with that run committed and recorded in
// the ledger; a re-run finds it unchanged and copies the rest.
func TestListingFailsAfterStreamedRuns(t *testing.T) {
	want := dataset.Canonical()
	src := &slowListing{Source: memsrc.New(want), release: make(chan struct{}), after: fault.Fatal(errors.New("listing page 2: 500"))}
	dst := memsink.New(sinks.Limits{})
	l := ledger(t)
	var mu sync.Mutex
	var kinds []transfer.EventKind
	rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: l, Observer: releaseOnCommit(src, &kinds, &mu)}))
	if fault.KindOf(err) != fault.KindFatal || rep.Verdict(err) != transfer.VerdictFatal {
		t.Fatalf("err %v (verdict %d), want the listing's fatal error", err, rep.Verdict(err))
	}
	if !src.released || rep.Totals.Committed != 1 {
		t.Fatalf("released %v, totals %+v: want one run committed before the listing failed", src.released, rep.Totals)
	}
	committed := rep.Runs[0].Origin
	if e, ok, err := l.Get(committed); err != nil || !ok || e.Status != string(transfer.Committed) {
		t.Fatalf("ledger entry of %s: %+v %v %v", committed, e, ok, err)
	}
	rep, err = transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l}))
	if err != nil || rep.Totals.Unchanged != 1 || rep.Totals.Committed != len(want.Runs)-1 {
		t.Fatalf("re-run: err %v, totals %+v", err, rep.Totals)
	}
	mustEqual(t, want, dst)
}

// countedListing is a source whose listing records, at each run it
// yields, how far it is ahead of the runs the sink opened so far.
type countedListing struct {
	*memsrc.Source
	opened *atomic.Int64
	ahead  int64 // the most runs listed and not yet opened
}

func (s *countedListing) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		var listed int64
		for r, err := range s.Source.Runs(ctx, exp) {
			listed++
			s.ahead = max(s.ahead, listed-s.opened.Load())
			if !yield(r, err) || err != nil {
				return
			}
		}
	}
}

// countedSink counts the runs opened, each after a short wait (a
// destination slower than the listing, as a W&B cloud project's pages of
// runs against their histories).
type countedSink struct {
	*memsink.Sink
	opened *atomic.Int64
}

func (s *countedSink) OpenRun(ctx context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	time.Sleep(200 * time.Microsecond)
	s.opened.Add(1)
	return s.Sink.OpenRun(ctx, expID, r)
}

// TestPlanStaysNearTheTransfer: a job that transfers while it plans holds
// a bounded number of listed runs, however many the source lists and
// however much faster than the destination: the listing of 3,000 runs is
// never more than a few hundred runs ahead of the runs opened (the
// queue's limit, a batch being decided, the listing's read-ahead and the
// runs in flight), where it used to list every run before the transfer
// had opened a tenth of them (each held with its metadata to the end).
// Every run still arrives.
func TestPlanStaysNearTheTransfer(t *testing.T) {
	const n = 3000
	exp := schema.Ref{System: "memory", ID: "exp"}
	want := &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "many"}}}
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		want.Runs = append(want.Runs, &dataset.RunData{
			Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-%05d", i)}, Experiment: exp,
				Name: fmt.Sprintf("r%d", i), Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Minute)},
			Metrics: []schema.Metric{{Key: "loss", Value: float64(i), Step: 0, Time: t0.UnixMilli()}},
		})
	}
	opened := &atomic.Int64{}
	src := &countedListing{Source: memsrc.New(want), opened: opened}
	dst := &countedSink{Sink: memsink.New(sinks.Limits{}), opened: opened}
	rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: ledger(t)}))
	if err != nil || rep.Totals.Committed != n {
		t.Fatalf("err %v, totals %+v", err, rep.Totals)
	}
	mustEqual(t, want, dst.Sink)
	// At most: 255 queued when a batch of 256 is added, the next batch
	// of 256 being listed and decided, 64 read ahead by the listing's
	// goroutine and one in its hand, 4 started and not yet opened.
	const bound = 255 + 256 + 256 + 64 + 1 + 4
	t.Logf("the listing was at most %d runs ahead of the runs opened (bound %d, runs %d)", src.ahead, bound, n)
	if src.ahead > bound {
		t.Fatalf("the listing was %d runs ahead of the runs opened: the plan holds more than %d listed runs", src.ahead, bound)
	}
}

// listingDone is a source whose listing records when it has yielded its
// last run; with count set it tells its runs' number up front
// (sources.ListingCounter).
type listingDone struct {
	*memsrc.Source
	ended atomic.Bool
}

func (s *listingDone) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for r, err := range s.Source.Runs(ctx, exp) {
			if !yield(r, err) || err != nil {
				return
			}
		}
		s.ended.Store(true)
	}
}

type listingCounted struct {
	*listingDone
	asked []schema.Ref
}

func (s *listingCounted) ListingCount(ctx context.Context, exp schema.Ref, f sources.RunFilter) (int64, bool) {
	s.asked = append(s.asked, exp)
	var n int64
	for r, err := range s.Source.Runs(ctx, exp) {
		if err != nil {
			return 0, false
		}
		if r.Experiment == exp {
			n++
		}
	}
	return n, true
}

// TestListingProgressBeforePlanEnds: a job that transfers while it plans
// (3,000 runs, so the plan ends near the job's end) tells its progress
// before the listing ends: with a source that counts its listing up front
// (sources.ListingCounter) every EventListing gives the whole count as
// Expected, the first before any run was listed; without one, Expected is
// 0 (not known) until the listing ended. Listed and Runs grow to the
// whole, EventPlanned comes last with the final counts, and what is
// copied is the same.
func TestListingProgressBeforePlanEnds(t *testing.T) {
	const n = 3000
	exp := schema.Ref{System: "memory", ID: "exp"}
	want := &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "many"}}}
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		want.Runs = append(want.Runs, &dataset.RunData{
			Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-%05d", i)}, Experiment: exp,
				Name: fmt.Sprintf("r%d", i), Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Minute)},
			Metrics: []schema.Metric{{Key: "loss", Value: float64(i), Step: 0, Time: t0.UnixMilli()}},
		})
	}
	for _, counts := range []bool{true, false} {
		done := &listingDone{Source: memsrc.New(want)}
		var src sources.Source = done
		counted := &listingCounted{listingDone: done}
		if counts {
			src = counted
		}
		opened := &atomic.Int64{}
		dst := &countedSink{Sink: memsink.New(sinks.Limits{}), opened: opened}
		var mu sync.Mutex
		var listings []transfer.Event // EventListing, with Name "ended" when sent after the listing ended
		var planned *transfer.Event
		var afterPlanned int
		rep, err := transfer.Copy(context.Background(), src, dst, fast(transfer.Options{Ledger: ledger(t), Observer: func(e transfer.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch e.Kind {
			case transfer.EventListing:
				if done.ended.Load() {
					e.Name = "ended"
				}
				if planned != nil {
					afterPlanned++
				}
				listings = append(listings, e)
			case transfer.EventPlanned:
				planned = &e
			}
		}}))
		if err != nil || rep.Totals.Committed != n {
			t.Fatalf("counts %v: err %v, totals %+v", counts, err, rep.Totals)
		}
		mustEqual(t, want, dst.Sink)
		if planned == nil || planned.Runs != n || afterPlanned != 0 {
			t.Fatalf("counts %v: EventPlanned %+v, %d EventListing after it", counts, planned, afterPlanned)
		}
		if len(listings) < 3 {
			t.Fatalf("counts %v: %d EventListing: %+v", counts, len(listings), listings)
		}
		first, last := listings[0], listings[len(listings)-1]
		if first.Listed != 0 || first.Runs != 0 || last.Listed != n || last.Runs != n || last.Expected != n {
			t.Errorf("counts %v: first EventListing %+v, last %+v", counts, first, last)
		}
		beforeEnd := 0
		for i, e := range listings {
			if i > 0 && (e.Listed < listings[i-1].Listed || e.Runs < listings[i-1].Runs) {
				t.Errorf("counts %v: EventListing %d went back: %+v after %+v", counts, i, e, listings[i-1])
			}
			if e.Name == "ended" {
				continue
			}
			beforeEnd++
			switch {
			case counts && e.Expected != n:
				t.Errorf("counts %v: EventListing %d before the listing ended gives Expected %d, want %d: %+v", counts, i, e.Expected, n, e)
			case !counts && e.Expected != 0:
				t.Errorf("counts %v: EventListing %d before the listing ended gives Expected %d, want 0 (not known): %+v", counts, i, e.Expected, e)
			}
		}
		if beforeEnd < 2 {
			t.Errorf("counts %v: only %d EventListing before the listing ended", counts, beforeEnd)
		}
		if counts && (len(counted.asked) != 1 || counted.asked[0] != exp) {
			t.Errorf("ListingCount asked for %v, want once for %v", counted.asked, exp)
		}
		t.Logf("counts %v: %d EventListing, %d before the listing ended", counts, len(listings), beforeEnd)
	}
}
