package transfer

import (
	"context"

	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
)

// TraceResult is the report entry of the traces.
type TraceResult struct {
	Copied int `json:"copied"` // traces written or brought up to date (or planned, in a dry run)
	Failed int `json:"failed,omitempty"`
}

// Coverage kinds of traces.
const (
	CoverageTracesNotCopied = "traces not copied (the destination holds no traces)"
	CoverageTracesNoSpans   = "traces without span data in the source (copied without spans)"
)

// copyTraces copies the traces of the selected experiments after the runs
// (and the registry), so that each trace can point at the run the sink
// wrote from its source run. With a filter that selects runs, a trace
// logged in a run is copied only when its run was selected; traces logged
// in no run follow their experiment. A trace whose run failed in this job
// is held back (a problem; a re-run copies it). A trace that fails is a
// problem (exit 3); fatal errors and cancellation stop the job.
func (j *job) copyTraces(ctx context.Context) error {
	tr, ok := j.src.(sources.TraceReader)
	if !ok {
		return nil
	}
	tw, _ := j.dst.(sinks.TraceWriter)
	flusher, _ := j.dst.(sinks.TraceFlusher)
	// Unlike the registry, a run only verified by --force is not counted as
	// held (as before the two shared runsWritten).
	written := j.runsWritten(Committed, Unchanged)
	runs, selected, unfinished := written.dest, written.selected, written.unfinished
	byRun := j.opt.Filter.SelectsRuns()
	res := &TraceResult{}
	cov := map[string]int64{}
	for _, e := range j.exps {
		var expID string
		put := 0 // traces given to PutTrace, held by a TraceFlusher until flushed
		for t, err := range tr.Traces(ctx, e.Origin) {
			if err != nil {
				if stopsJob(err) {
					return err
				}
				j.addProblem("experiment %s (%s): traces: %v", e.Name, e.Origin, err)
				break
			}
			if byRun && !t.Run.IsZero() && !selected[t.Run] {
				continue
			}
			if len(t.Spans) == 0 && tw != nil {
				cov[CoverageTracesNoSpans]++
			}
			switch {
			case tw == nil:
				cov[CoverageTracesNotCopied]++
				continue
			case j.opt.DryRun:
			case unfinished[t.Run]:
				res.Failed++
				j.addProblem("trace %s: not copied, its run %s failed (a re-run copies it)", t.Origin, t.Run)
				continue
			default:
				if expID == "" {
					id, err := j.experimentID(ctx, e)
					if err != nil {
						if stopsJob(err) {
							return err
						}
						j.addProblem("experiment %s (%s): traces: %v", e.Name, e.Origin, err)
						res.Failed++
						continue
					}
					expID = id
				}
				c, err := tw.PutTrace(ctx, expID, t, runs)
				if err != nil {
					if stopsJob(err) {
						return err
					}
					res.Failed++
					j.addProblem("%v", err)
					continue
				}
				for k, n := range c {
					cov[k] += n
				}
				put++
			}
			res.Copied++
		}
		if flusher != nil && put > 0 {
			if err := flusher.FlushTraces(ctx, expID); err != nil {
				if stopsJob(err) {
					return err
				}
				res.Copied -= put
				res.Failed += put
				j.addProblem("experiment %s (%s): writing %d traces: %v", e.Name, e.Origin, put, err)
			}
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if res.Copied+res.Failed > 0 {
		j.rep.Traces = res
	}
	j.rep.traceCoverage = cov
	return nil
}
