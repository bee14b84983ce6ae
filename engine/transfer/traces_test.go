package transfer_test

import (
	"context"
	"encoding/json"
	"errors"
	"iter"
	"reflect"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// traceSource is the canonical dataset with traces: in each experiment, one
// trace per run and one logged in no run (without spans in the second
// experiment).
type traceSource struct {
	*memsrc.Source
	d *dataset.Dataset
}

func (s traceSource) Traces(_ context.Context, exp schema.Ref) iter.Seq2[schema.Trace, error] {
	return func(yield func(schema.Trace, error) bool) {
		spans := json.RawMessage(`{"spans": []}`)
		if exp != s.d.Experiments[0].Origin {
			spans = nil
		}
		ts := []schema.Trace{{Origin: schema.Ref{System: "memory", ID: "trace/none-" + exp.ID}, Experiment: exp, Spans: spans}}
		for _, r := range s.d.Runs {
			if r.Run.Experiment == exp {
				ts = append(ts, schema.Trace{Origin: schema.Ref{System: "memory", ID: "trace/" + r.Run.Origin.ID},
					Experiment: exp, Run: r.Run.Origin, Spans: spans})
			}
		}
		for _, t := range ts {
			if !yield(t, nil) {
				return
			}
		}
	}
}

// traceSink is a memory sink that records the traces it is given, the
// experiment ids and run ids the engine passed with them, and flushes.
type traceSink struct {
	sinks.Sink
	mu      sync.Mutex
	traces  []string
	exps    map[string]bool
	runs    map[schema.Ref]string
	flushed map[string]int
}

func (s *traceSink) PutTrace(_ context.Context, expID string, t schema.Trace, runs map[schema.Ref]string) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.traces = append(s.traces, t.Origin.ID)
	if s.exps == nil {
		s.exps = map[string]bool{}
	}
	s.exps[expID] = true
	s.runs = runs
	return map[string]int64{"trace kind": 1}, nil
}

func (s *traceSink) FlushTraces(_ context.Context, expID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushed == nil {
		s.flushed = map[string]int{}
	}
	s.flushed[expID]++
	return nil
}

// TestTracesAfterRuns: the engine hands a trace sink every trace of the
// selected experiments after the runs, with the experiment ids the sink
// gave and the destination ids of the committed runs, and flushes each
// experiment once; with a run filter, only traces of selected runs and of
// no run; in a dry run, none (but counts them); traces whose run failed
// wait for the re-run; a sink without traces gets them counted as not
// copied; traces without spans are counted.
func TestTracesAfterRuns(t *testing.T) {
	ctx := context.Background()
	d := dataset.Canonical()
	src := traceSource{memsrc.New(d), d}
	all := 2 + len(d.Runs) // a trace of a run the source leaves out (deleted) is still the experiment's
	noSpans := int64(1)    // the second experiment's
	for _, r := range d.Runs {
		if r.Run.Experiment == d.Experiments[1].Origin {
			noSpans++
		}
	}

	dst := &traceSink{Sink: memsink.New(sinks.Limits{})}
	rep, err := transfer.Copy(ctx, src, dst, fast(transfer.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(dst.traces) != all || *rep.Traces != (transfer.TraceResult{Copied: all}) || len(dst.flushed) != 2 {
		t.Fatalf("traces written %v (want %d), report %+v, flushed %v", dst.traces, all, rep.Traces, dst.flushed)
	}
	for id, n := range dst.flushed {
		if n != 1 || !dst.exps[id] {
			t.Errorf("experiment %s flushed %d times, traces given for %v", id, n, dst.exps)
		}
	}
	if rep.Coverage["trace kind"] != int64(all) || rep.Coverage[transfer.CoverageTracesNoSpans] != noSpans {
		t.Errorf("coverage %v, want the sink's kind %d times and %d traces without spans", rep.Coverage, all, noSpans)
	}
	ids := map[schema.Ref]string{}
	for _, r := range rep.Runs {
		if ref, _ := schema.ParseRef(r.Origin); r.DestID != "" {
			ids[ref] = r.DestID
		}
	}
	if !reflect.DeepEqual(dst.runs, ids) {
		t.Errorf("traces were given run ids %v, the report names %v", dst.runs, ids)
	}

	dst = &traceSink{Sink: memsink.New(sinks.Limits{})}
	rep, err = transfer.Copy(ctx, src, dst, fast(transfer.Options{Filter: transfer.Filter{RunIDs: []string{"run-big"}}}))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"trace/none-" + d.Experiments[0].Origin.ID, "trace/run-big", "trace/none-" + d.Experiments[1].Origin.ID}
	if !reflect.DeepEqual(dst.traces, want) || rep.Traces.Copied != len(want) {
		t.Errorf("run filter: traces written %v, want %v; report %+v", dst.traces, want, rep.Traces)
	}

	dst = &traceSink{Sink: memsink.New(sinks.Limits{})}
	rep, err = transfer.Copy(ctx, src, dst, fast(transfer.Options{DryRun: true}))
	if err != nil {
		t.Fatal(err)
	}
	if len(dst.traces) != 0 || len(dst.flushed) != 0 || *rep.Traces != (transfer.TraceResult{Copied: all}) {
		t.Errorf("dry run: traces written %v, flushed %v, report %+v", dst.traces, dst.flushed, rep.Traces)
	}

	rep, err = transfer.Copy(ctx, src, memsink.New(sinks.Limits{}), fast(transfer.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Coverage[transfer.CoverageTracesNotCopied] != int64(all) || rep.Traces != nil {
		t.Errorf("no traces in the sink: coverage %v, report %+v", rep.Coverage, rep.Traces)
	}

	dst = &traceSink{Sink: sinktest.NewFailAt(memsink.New(sinks.Limits{}), 3, fault.Permanent(errors.New("injected")))}
	rep, err = transfer.Copy(ctx, src, dst, fast(transfer.Options{Concurrency: 1, Attempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for _, r := range rep.Runs {
		if r.Outcome == transfer.Failed {
			failed++
		}
	}
	if failed == 0 || len(dst.traces) != all-failed || rep.Traces.Failed != failed || rep.Traces.Copied != all-failed {
		t.Errorf("%d runs failed: traces written %v, report %+v", failed, dst.traces, rep.Traces)
	}
}
