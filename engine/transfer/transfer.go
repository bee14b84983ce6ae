// Package transfer is runferry's engine: it plans a job, moves runs from a
// source to a sink with several runs in flight, re-chunks metric pages to
// the sink's limits, retries runs that failed for passing reasons, and
// records a run in the ledger only after the sink committed it.
//
// Adapters never print, retry runs or keep state; the engine does all three.
package transfer

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/inflight"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// Ledger remembers, per run origin, what earlier jobs committed. The engine
// calls it from several goroutines; implementations serialise.
type Ledger interface {
	Get(origin string) (state.Entry, bool, error)
	Put(e state.Entry) error
}

// Options tune a job. The zero value works: four runs in flight, three
// attempts per run, no ledger, no progress.
type Options struct {
	Concurrency int // runs in flight; capped by the sink's MaxInFlight
	Attempts    int // tries per run for retryable errors
	// Backoff returns the wait before the given retry (1-based); the
	// default doubles from one second up to thirty.
	Backoff func(retry int) time.Duration
	Filter  Filter
	// Shard, when set, narrows the job to the runs of one shard (see
	// Shard); the others are counted in Totals.OtherShards.
	Shard  Shard
	DryRun bool // plan and count, write nothing
	// Transform is applied between reading and writing.
	Transform transform.Chain
	Ledger    Ledger // nil: rely on the sink's RunFinder alone
	Observer  Observer
	// DefaultBatch is the metric batch size when the sink declares none.
	DefaultBatch int
	// Source and Sink are the redacted locations, for the report.
	Source, Sink string
	// Verify, when set (--force), is asked about every run the plan would
	// skip as unchanged: it compares the run in full with its copy in the
	// destination, as check does, and returns "" when they match (the run
	// is reported Verified) or the differences (the run is written again,
	// with the reason "repairing: " and them). Errors of kind fatal or
	// canceled stop the job; others are reported with the run, which is
	// then written again.
	Verify func(ctx context.Context, exp schema.Experiment, run schema.Run) (string, error)
	// Lookback (sync --lookback), when positive, narrows Verify to the
	// runs that changed near the previous sync: those whose change time
	// (sources.ChangeTimer, else the run's start and end) is at or after
	// LastStart minus Lookback, or unknown. Other runs the fingerprints
	// call unchanged are skipped unread. With LastStart zero (no previous
	// sync recorded) no run is verified.
	Lookback time.Duration
	// LastStart is when the previous job of the same source, sink and
	// options started (state.Ledger.PreviousStart).
	LastStart time.Time
	// PropagateDeletes (sync --propagate-deletes) mirrors in the sink
	// (sinks.RunDeleter) the deletion of runs deleted at the source (see
	// job.deletes); without it they are reported and kept.
	PropagateDeletes bool
	// AcceptGaps (--accept-gaps) accepts the source's known gaps: runs
	// read from damaged source data and files the source names but cannot
	// give are still named and counted in the report, but they no longer
	// make the job's verdict VerdictRunsFailed (Report.AcceptedGaps).
	AcceptGaps bool
	// SpillRuns keeps the job's run results in a temporary file instead
	// of Report.Runs, so that what a job holds does not grow with its
	// runs: Report.Results, RunCount and WriteJSON read them back (the
	// report's JSON the same bytes), and Report.Close releases the file.
	SpillRuns bool
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Attempts <= 0 {
		o.Attempts = 3
	}
	if o.Backoff == nil {
		o.Backoff = func(retry int) time.Duration {
			return min(time.Second<<(retry-1), 30*time.Second)
		}
	}
	if o.DefaultBatch <= 0 {
		o.DefaultBatch = 10_000
	}
	if o.Observer == nil {
		o.Observer = func(Event) {}
	}
}

// Copy transfers every selected run from src to dst that dst does not
// already hold with the same content. It returns a report even on error;
// the error is non-nil only for a fatal failure or an interruption.
func Copy(ctx context.Context, src sources.Source, dst sinks.Sink, opt Options) (*Report, error) {
	opt.defaults()
	rep := &Report{FormatVersion: ReportFormatVersion, Source: opt.Source, Sink: opt.Sink, DryRun: opt.DryRun, Started: time.Now().UTC(),
		Shard: opt.Shard.String(), AcceptedGaps: opt.AcceptGaps}
	var planEnd time.Time
	defer func() {
		rep.Finished = time.Now().UTC()
		rep.Timings.TotalMS = rep.Finished.Sub(rep.Started).Milliseconds()
		if !planEnd.IsZero() {
			rep.Timings.PlanMS = planEnd.Sub(rep.Started).Milliseconds()
			rep.Timings.TransferMS = rep.Finished.Sub(planEnd).Milliseconds()
		}
		rep.total()
	}()
	if c, ok := src.(sources.Checker); ok {
		if err := c.Check(ctx); err != nil {
			return rep, failJob(rep, fmt.Errorf("source %s: %w", opt.Source, err))
		}
	}
	if c, ok := dst.(sinks.Checker); ok {
		if err := c.Check(ctx); err != nil {
			return rep, failJob(rep, fmt.Errorf("destination %s: %w", opt.Sink, err))
		}
	}
	if opt.SpillRuns {
		spill, err := newSpilledRuns()
		if err != nil {
			return rep, failJob(rep, fault.Fatal(err))
		}
		rep.spill = spill
	}
	rep.Reached = true
	if opt.Filter.seen == nil {
		opt.Filter = opt.Filter.Track()
	}
	j := &job{src: src, dst: dst, opt: opt, rep: rep, expIDs: map[schema.Ref]*expOnce{}}
	defer j.origins.close() // a temporary database: nothing to lose
	// The runs the plan skips come first in the report, in listing order,
	// then the transferred ones as they end, whether or not the job
	// transferred while it planned.
	defer j.mergePlanRuns()
	var err error
	if j.streams() {
		err = j.planAndTransfer(ctx, &planEnd)
	} else {
		var plan []planned
		idle, perr := j.plan(ctx, func(kept []planned) { plan = append(plan, kept...) })
		if perr != nil {
			return rep, failJob(rep, perr)
		}
		rep.Warnings = opt.Filter.Unmatched()
		planEnd = time.Now().UTC()
		var sz runSizes
		for _, p := range plan {
			sz.add(ctx, src, p)
		}
		opt.Observer(Event{Kind: EventPlanned, Runs: len(plan), Skipped: j.planN, TotalPoints: sz.points, TotalBytes: sz.bytes})
		if err := j.putIdle(ctx, idle); err != nil {
			return rep, failJob(rep, err)
		}
		err = j.transfer(ctx, plan)
	}
	j.mergePlanRuns()
	rep.Experiments = j.experimentsWritten()
	if err == nil {
		err = unreachable(rep)
	}
	if err == nil && !opt.Shard.IsZero() {
		// A model version or a trace points at a run another shard may
		// hold, whose destination id this shard does not know.
		j.skipAfterRuns()
	} else {
		if err == nil {
			err = j.copyRegistry(ctx)
		}
		if err == nil {
			err = j.copyTraces(ctx)
		}
	}
	if err == nil {
		err = j.deletes(ctx)
	}
	return rep, failJob(rep, err)
}

// unreachable returns a fatal error when runs were tried, none could be
// written and every one failed because a server could not be reached: the
// job as a whole failed, not some of its runs.
func unreachable(rep *Report) error {
	var first string
	for r, err := range rep.Results() {
		switch {
		case err != nil:
			return fault.Fatal(err)
		case r.Outcome == Committed:
			return nil
		case r.Outcome == Failed && !r.Unreachable:
			return nil
		case r.Outcome == Failed && first == "":
			first = r.Error
		}
	}
	if first == "" {
		return nil
	}
	return fault.Fatal(fmt.Errorf("no run could be written: a server is unreachable: %s", first))
}

// runSizes sums what the planned runs hold, when the source can tell for
// every one of them (sources.Sizer); else points and bytes are zero.
type runSizes struct {
	points, bytes int64
	unknown       bool
}

// add counts planned run p, before it is transferred.
func (z *runSizes) add(ctx context.Context, src sources.Source, p planned) {
	sz, ok := src.(sources.Sizer)
	if z.unknown || !ok {
		z.points, z.bytes, z.unknown = 0, 0, true
		return
	}
	pts, b, ok := sz.Size(ctx, p.run)
	if !ok {
		z.points, z.bytes, z.unknown = 0, 0, true
		return
	}
	z.points, z.bytes = z.points+pts, z.bytes+b
}

// putIdle writes the experiments that have no run to transfer, so that an
// experiment without runs, or whose metadata changed while its runs did
// not, arrives too. Only fatal errors and cancellation stop the job.
func (j *job) putIdle(ctx context.Context, idle []schema.Experiment) error {
	if j.opt.DryRun {
		return nil
	}
	for _, e := range idle {
		if _, err := j.experimentID(ctx, e); err != nil {
			if k := fault.KindOf(err); k == fault.KindFatal || k == fault.KindCanceled {
				return err
			}
			j.addProblem("experiment %s (%s): %v", e.Name, e.Origin, err)
		}
	}
	return nil
}

// failJob records a fatal or canceling err in the report and returns it.
func failJob(rep *Report, err error) error {
	switch {
	case err == nil:
	case fault.KindOf(err) == fault.KindCanceled:
		rep.Canceled = true
	default:
		rep.Fatal = err.Error()
	}
	return err
}

type job struct {
	src sources.Source
	dst sinks.Sink
	opt Options
	rep *Report

	mu     sync.Mutex // guards rep.Runs, rep.Problems, planRuns and expIDs
	expIDs map[schema.Ref]*expOnce
	// exps are the experiments the filter selected, in listing order.
	exps []schema.Experiment
	// origins names, by origin, each experiment and run the plan listed,
	// to find a second one with the same origin (see sameOrigin), and
	// holds the origins of the runs listed and their former origins (see
	// deletes), mostly on disk; originsMu guards it.
	origins   originIndex
	originsMu sync.Mutex
	// writes bounds the WriteMetrics calls in flight when the sink asks
	// for AdaptiveWrites; nil otherwise.
	writes *inflight.Limiter
	// verifyMu makes the plan's calls of Options.Verify one at a time.
	verifyMu sync.Mutex
	// planRuns are the results of the runs the plan skipped (unchanged,
	// verified), in listing order, until mergePlanRuns puts them before
	// the transferred runs' in the report.
	planRuns []RunResult
	// planN counts the results of the runs the plan skipped.
	planN int
	// emitted counts the runs the plan gave to transfer so far.
	emitted int
	// listing counts, for EventListing, the runs the listings yielded so
	// far and those they yield in all as far as known (see listingEvent).
	listing listingCount
	// streamed is set when the job transfers runs while it plans (see
	// streams).
	streamed bool
}

// expOnce writes one experiment once per job, however many workers need it
// at the same moment; a failed write is tried again by the next worker.
type expOnce struct {
	mu   sync.Mutex
	id   string
	name string // the source's name
}

// experimentsWritten lists the experiments the job wrote, by name, with
// their address when the sink is an ExperimentLinker.
func (j *job) experimentsWritten() []ExperimentResult {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []ExperimentResult
	for origin, once := range j.expIDs {
		once.mu.Lock()
		if once.id != "" {
			e := ExperimentResult{Origin: origin.String(), Name: once.name, DestID: once.id}
			if l, ok := j.dst.(sinks.ExperimentLinker); ok {
				e.URL = l.ExperimentURL(once.id)
			}
			out = append(out, e)
		}
		once.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ExperimentResult) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Origin, b.Origin))
	})
	return out
}

// planned is one run the job will transfer.
type planned struct {
	exp         schema.Experiment
	run         schema.Run
	fingerprint string
	reason      string
	restored    string       // what the sink restored of its copy first (RunResult.Restored)
	former      []schema.Ref // the run's former origins (sources.FormerOriginer)
	// base is the ledger's entry of the copy the sink holds, when the run
	// is to be appended to (sinks.Appender); nil to write it whole.
	base *state.Entry
	// baseFormer is the former origin whose ledger entry base is, when the
	// cursors were carried over from it (zero otherwise).
	baseFormer schema.Ref
	// light is set while run is a light header (sources.HeaderLister), not
	// yet read in full (see readFull).
	light bool
}

// addResult adds r to the report without its cursors (keys, mark): they
// are for the ledger, written before, and kept for every run they were
// most of what a job held per run.
func (j *job) addResult(r RunResult) {
	r.keys, r.mark = nil, ""
	j.mu.Lock()
	defer j.mu.Unlock()
	if s := j.rep.spill; s != nil {
		s.runs.add(r)
		return
	}
	j.rep.Runs = append(j.rep.Runs, r)
}

// addPlanResult records the result of a run the plan skipped (see
// planRuns), without its cursors as addResult.
func (j *job) addPlanResult(r RunResult) {
	r.keys, r.mark = nil, ""
	j.mu.Lock()
	defer j.mu.Unlock()
	j.planN++
	if s := j.rep.spill; s != nil {
		s.plan.add(r)
		return
	}
	j.planRuns = append(j.planRuns, r)
}

// mergePlanRuns puts the plan's results before the transferred runs' in
// the report; it is called once the plan has ended (again: no effect).
// Spilled results are listed so as they are read (Report.Results).
func (j *job) mergePlanRuns() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if len(j.planRuns) > 0 {
		j.rep.Runs = append(j.planRuns, j.rep.Runs...)
		j.planRuns = nil
	}
}

func (j *job) addProblem(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rep.Problems = append(j.rep.Problems, fmt.Sprintf(format, args...))
}

// Fingerprint returns the run's content fingerprint: the source's own when
// it has one, else a digest of the run's metadata. Running runs get ""
// (always transferred again, since their history may have grown).
func Fingerprint(ctx context.Context, src sources.Source, r schema.Run) (string, error) {
	if fp, ok := src.(sources.Fingerprinter); ok {
		return fp.Fingerprint(ctx, r)
	}
	if r.Status == schema.StatusRunning {
		return "", nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return "", fault.Permanent(err)
	}
	sum := sha256.Sum256(b)
	return "meta:" + hex.EncodeToString(sum[:16]), nil
}
