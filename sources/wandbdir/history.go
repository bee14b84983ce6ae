package wandbdir

import (
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// SystemPrefix starts the key of every system metric (stats records).
const SystemPrefix = "system/"

// stepper assigns steps to the rows of a run in file order, across its
// segments. Rows without a step get the previous step plus one (W&B's shared
// mode leaves steps to the server); rows whose step is lower than one
// already seen are dropped (as W&B's own handler does), which keeps every
// key's steps non-decreasing.
type stepper struct {
	last    int64
	seen    bool
	dropped int // rows dropped for going backwards
}

// next returns the step to give a row, or ok=false when the row is dropped.
func (s *stepper) next(r *wandbfile.RowValues) (step int64, ok bool) {
	step = r.Step
	if !r.HasStep {
		step = 0
		if s.seen {
			step = s.last + 1
		}
	}
	if s.seen && step < s.last {
		s.dropped++
		return 0, false
	}
	s.last, s.seen = step, true
	return step, true
}

// appendPoints adds the points of a converted row (conv: a RowConverter
// after Convert, or a row converted ahead) to p, at step and time (Unix
// ms), filling the pages in place.
func appendPoints(p *pager[schema.Metric], conv pointSource, step, time int64) error {
	n := conv.NumPoints()
	for from := 0; from < n; {
		dst := p.extend(n - from)
		conv.PutPoints(dst, from, step, time)
		from += len(dst)
		if err := p.flushFull(); err != nil {
			return err
		}
	}
	return nil
}
