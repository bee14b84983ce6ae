package transfer

import (
	"slices"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
)

// afterRuns is what the copiers that run after the runs (copyRegistry,
// copyTraces) know of the job's runs, so that what they copy can point at
// the sink's copy of its run, follow the run selection, and wait for a run
// this job failed to write.
type afterRuns struct {
	dest       map[schema.Ref]string // source run → the sink's run id, for the runs the sink holds
	selected   map[schema.Ref]bool   // every run of this job
	unfinished map[schema.Ref]bool   // runs that failed or were interrupted in this job
}

// runsWritten returns the job's runs as afterRuns, counting a run as held
// by the sink when its outcome is one of held and it has a destination id.
func (j *job) runsWritten(held ...Outcome) afterRuns {
	a := afterRuns{dest: map[schema.Ref]string{}, selected: map[schema.Ref]bool{}, unfinished: map[schema.Ref]bool{}}
	j.mu.Lock()
	defer j.mu.Unlock()
	for r, err := range j.rep.Results() {
		if err != nil {
			break // the totals' reading of the results reports it
		}
		ref, ok := schema.ParseRef(r.Origin)
		if !ok {
			continue
		}
		a.selected[ref] = true
		a.unfinished[ref] = r.Outcome == Failed || r.Outcome == Interrupted
		if r.DestID != "" && slices.Contains(held, r.Outcome) {
			a.dest[ref] = r.DestID
		}
	}
	return a
}

// stopsJob reports whether err ends the whole job (fatal, or cancelled)
// rather than being a problem of one item.
func stopsJob(err error) bool {
	k := fault.KindOf(err)
	return k == fault.KindFatal || k == fault.KindCanceled
}
