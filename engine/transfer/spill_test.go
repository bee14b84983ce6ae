package transfer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// timing replaces what differs between two jobs run one after the other:
// their times.
var (
	timing   = regexp.MustCompile(`"(started|finished)": "[^"]*"|"(plan_ms|transfer_ms|total_ms)": \d+`)
	duration = regexp.MustCompile(`,?\n *"duration_ms": \d+`) // left out when 0
)

func sameTiming(b []byte) string {
	return duration.ReplaceAllString(timing.ReplaceAllString(string(b), `"$1$2": T`), "")
}

// TestSpilledReportSameBytes: a job run with SpillRuns gives the report a
// job keeping its results in Report.Runs gives: the same JSON bytes
// (WriteJSON, and json.MarshalIndent through MarshalJSON), the same
// results in the same order (Results), the same totals. Two jobs each way,
// the second over the first's ledger and destination, so that the report
// holds committed, failed (a run that cannot be read, with its error),
// damaged and unchanged runs (the plan's, listed first).
func TestSpilledReportSameBytes(t *testing.T) {
	want := dataset.Canonical()
	var bad schema.Ref // a run without damage, not the first
	for _, r := range want.Runs[1:] {
		if len(r.Run.Damage) == 0 {
			bad = r.Run.Origin
			break
		}
	}
	type job struct {
		json    []byte
		results []transfer.RunResult
		totals  transfer.Totals
		verdict transfer.Verdict
	}
	run := func(spill bool) []job {
		l := ledger(t)
		dst := memsink.New(sinks.Limits{})
		var out []job
		for range 2 {
			rep, err := transfer.Copy(context.Background(), failingRun{memsrc.New(want), bad}, dst,
				fast(transfer.Options{Ledger: l, Concurrency: 1, SpillRuns: spill, Source: "memory:a", Sink: "memory:b"}))
			var j job
			j.verdict = rep.Verdict(err)
			j.totals = rep.Totals
			if spill && len(rep.Runs) != 0 {
				t.Errorf("spilled: Report.Runs holds %d results", len(rep.Runs))
			}
			if rep.RunCount() != rep.Totals.Runs {
				t.Errorf("RunCount %d, Totals.Runs %d", rep.RunCount(), rep.Totals.Runs)
			}
			for r, err := range rep.Results() {
				if err != nil {
					t.Fatal(err)
				}
				j.results = append(j.results, r)
			}
			var b bytes.Buffer
			if err := rep.WriteJSON(&b, nil); err != nil {
				t.Fatal(err)
			}
			indented, err := json.MarshalIndent(rep, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			if b.String() != string(indented)+"\n" {
				t.Errorf("spill %v: WriteJSON differs from json.MarshalIndent:\n%s\n----\n%s", spill, b.String(), indented)
			}
			j.json = b.Bytes()
			if err := rep.Close(); err != nil {
				t.Fatal(err)
			}
			out = append(out, j)
		}
		return out
	}
	held, spilled := run(false), run(true)
	for i := range held {
		h, s := held[i], spilled[i]
		if got, want := sameTiming(s.json), sameTiming(h.json); got != want {
			t.Errorf("job %d: the spilled report's JSON differs:\n%s\n---- held in Runs:\n%s", i+1, got, want)
		}
		for k := range h.results {
			h.results[k].DurationMS = 0
		}
		for k := range s.results {
			s.results[k].DurationMS = 0
		}
		if !reflect.DeepEqual(s.results, h.results) || s.totals != h.totals || s.verdict != h.verdict {
			t.Errorf("job %d: spilled %+v %+v %v, held %+v %+v %v", i+1, s.results, s.totals, s.verdict, h.results, h.totals, h.verdict)
		}
	}
	// The jobs hold what the test is for.
	if t1, t2 := held[0].totals, held[1].totals; t1.Committed == 0 || t1.Failed != 1 || t1.Damaged == 0 || t2.Unchanged == 0 || t2.Failed != 1 {
		t.Fatalf("the jobs do not hold committed, failed, damaged and unchanged runs: %+v, %+v", t1, t2)
	}
	if !strings.Contains(string(held[1].json), "corrupt history at offset 42") {
		t.Fatalf("the failed run's error is not in the report:\n%s", held[1].json)
	}
}

// TestWriteJSONNoRuns: a report without runs says "runs": null, as
// json.MarshalIndent says it of a nil Runs ([] of an empty one).
func TestWriteJSONNoRuns(t *testing.T) {
	for _, rep := range []*transfer.Report{{Source: "secret"}, {Source: "secret", Runs: []transfer.RunResult{}}} {
		var b bytes.Buffer
		redact := strings.NewReplacer("secret", "***").Replace
		if err := rep.WriteJSON(&b, redact); err != nil {
			t.Fatal(err)
		}
		want, _ := json.MarshalIndent(rep, "", "  ")
		if b.String() != redact(string(want))+"\n" || strings.Contains(b.String(), "secret") {
			t.Errorf("WriteJSON = %s, want %s", b.String(), want)
		}
	}
}

// genSource yields n runs of one experiment, made as they are asked for:
// it holds nothing a run.
type genSource struct{ n int }

func (s genSource) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		yield(schema.Experiment{Origin: schema.Ref{System: "gen", ID: "e"}, Name: "gen"}, nil)
	}
}

func (s genSource) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for i := range s.n {
			start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute)
			r := schema.Run{Origin: schema.Ref{System: "gen", ID: fmt.Sprintf("e/run%06d", i)}, Experiment: exp,
				Name: fmt.Sprintf("generated run %d", i), Status: schema.StatusFinished, Start: start, End: start.Add(time.Minute),
				Params: []schema.Param{{Key: "lr", Value: fmt.Sprint(i)}}}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (s genSource) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		var page []schema.Metric
		for k := range 10 {
			for step := range 10 {
				page = append(page, schema.Metric{Key: fmt.Sprintf("m%02d", k), Value: float64(step), Step: int64(step), Time: 1700000000000})
			}
		}
		yield(page, nil)
	}
}

func (s genSource) Close() error { return nil }

// heapSink discards what it is given and, when the last of n runs
// commits, collects the garbage and notes the heap in use: what the job
// holds at its end, besides the run being committed.
type heapSink struct {
	n         int
	mu        sync.Mutex
	committed int
	heap      uint64
}

func (s *heapSink) PutExperiment(ctx context.Context, e schema.Experiment) (string, error) {
	return "x", nil
}
func (s *heapSink) OpenRun(ctx context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	return heapWriter{s}, nil
}
func (s *heapSink) Limits() sinks.Limits { return sinks.Limits{} }
func (s *heapSink) Close() error         { return nil }

type heapWriter struct{ s *heapSink }

func (w heapWriter) WriteMetrics(ctx context.Context, batch []schema.Metric) error { return nil }
func (w heapWriter) Abort(ctx context.Context) error                               { return nil }
func (w heapWriter) Commit(ctx context.Context) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if w.s.committed++; w.s.committed == w.s.n {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.s.heap = m.HeapAlloc
	}
	return nil
}

// TestJobHoldsLittlePerRun: what a job of N runs holds at its last commit
// (the heap in use after a collection) grows by less than perRun bytes a
// run from N to 10N runs, with SpillRuns and a ledger (a first copy: every
// run new to the ledger). Before the report's results were spilled and the
// ledger's new entries written through, each run kept its report row and
// ledger entry to the end of the job (688 bytes a run; docs/WANDB-CLOUD.md
// gap 6); before the plan's notes of the origins it listed (to tell a
// second run of the same origin, and the runs deleted at the source) went
// to a temporary database, 203 bytes a run; 24-29 since. The database's
// page cache is SQLite's, outside the Go heap, and bounded (2 MB).
func TestJobHoldsLittlePerRun(t *testing.T) {
	if testing.Short() {
		t.Skip("copies 5,500 runs")
	}
	const perRun = 64
	heapAt := func(n int, spill bool) uint64 {
		l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "gen:", Sink: "heap:"}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		dst := &heapSink{n: n}
		rep, err := transfer.Copy(context.Background(), genSource{n}, dst, fast(transfer.Options{Ledger: l, SpillRuns: spill}))
		if err != nil || rep.Totals.Committed != n || dst.heap == 0 {
			t.Fatalf("%d runs: %v, %+v, heap %d", n, err, rep.Totals, dst.heap)
		}
		rep.Close()
		return dst.heap
	}
	const n = 500
	small, large := heapAt(n, true), heapAt(10*n, true)
	grew := (float64(large) - float64(small)) / (9 * n)
	t.Logf("heap in use at the last commit: %d runs %.1f MB, %d runs %.1f MB: %.0f bytes a run", n, float64(small)/1e6, 10*n, float64(large)/1e6, grew)
	if grew > perRun {
		t.Errorf("the job holds %.0f bytes more a run from %d to %d runs, want at most %d", grew, n, 10*n, perRun)
	}
}
