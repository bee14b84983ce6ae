package transfer

import (
	"context"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
)

// RegistryResult is the report entry of the model registry.
type RegistryResult struct {
	Models   int `json:"models"`   // registered models written (or planned, in a dry run)
	Versions int `json:"versions"` // their versions
	Failed   int `json:"failed,omitempty"`
}

// Coverage kinds of a registry the sink cannot hold.
const (
	CoverageModelsNotCopied   = "registered models not copied (the destination holds no model registry)"
	CoverageVersionsNotCopied = "model versions not copied (the destination holds no model registry)"
)

// copyRegistry copies the source's model registry after the runs, so that
// each version can point at the run the sink wrote from its source run.
// With a filter, only models with a version from a selected run are copied.
// A model with a version whose run failed in this job is held back (a
// problem), since a version cannot be pointed at its run later.
// A model that fails is a problem (exit 3); fatal errors and cancellation
// stop the job.
func (j *job) copyRegistry(ctx context.Context) error {
	rr, ok := j.src.(sources.RegistryReader)
	if !ok {
		return nil
	}
	rw, _ := j.dst.(sinks.RegistryWriter)
	written := j.runsWritten(Committed, Unchanged, Verified)
	runs, selected, unfinished := written.dest, written.selected, written.unfinished
	filtered := j.opt.Filter.Selective()
	res := &RegistryResult{}
	cov := map[string]int64{}
	for m, err := range rr.RegisteredModels(ctx) {
		if err != nil {
			if stopsJob(err) {
				return err
			}
			j.addProblem("model registry: listing registered models: %v", err)
			break
		}
		if filtered && !anyVersionFrom(m, selected) {
			continue
		}
		switch {
		case rw != nil && !j.opt.DryRun && anyVersionFrom(m, unfinished):
			// A version written now could never point at its run, which
			// a re-run may still write: the model waits for that re-run.
			res.Failed++
			j.addProblem("registered model %q: not copied, a run of its versions failed (a re-run copies it)", m.Name)
			continue
		case rw == nil:
			cov[CoverageModelsNotCopied]++
			cov[CoverageVersionsNotCopied] += int64(len(m.Versions))
			continue
		case j.opt.DryRun:
		default:
			c, err := rw.PutRegisteredModel(ctx, m, runs)
			if err != nil {
				if stopsJob(err) {
					return err
				}
				res.Failed++
				j.addProblem("registered model %q: %v", m.Name, err)
				continue
			}
			for k, n := range c {
				cov[k] += n
			}
		}
		res.Models++
		res.Versions += len(m.Versions)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if res.Models+res.Failed > 0 {
		j.rep.Registry = res
	}
	j.rep.registryCoverage = cov
	return nil
}

func anyVersionFrom(m schema.RegisteredModel, runs map[schema.Ref]bool) bool {
	for _, v := range m.Versions {
		if runs[v.Run] {
			return true
		}
	}
	return false
}

// SelectsRuns reports whether the filter can leave out runs of a selected
// experiment (by id or start time).
func (f Filter) SelectsRuns() bool {
	return len(f.RunIDs) > 0 || !f.Since.IsZero() || !f.Until.IsZero()
}

// Selective reports whether the filter can select less than everything.
func (f Filter) Selective() bool {
	return len(f.Include)+len(f.Exclude)+len(f.RunIDs) > 0 || !f.Since.IsZero() || !f.Until.IsZero()
}
