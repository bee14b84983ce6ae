package wandbtest

import (
	"fmt"
	"strings"
	"time"
)

// Grow appends rows to the history of run id of project, as a run still
// logging does between two reads: the rows (each with "_step", after the
// last one held) join the live tail when the run has exports (the files
// already exported stay as they were), the run's summary takes their
// values, and its heartbeat moves to at. It is for tests that change the
// data between two jobs, never while the server answers one.
func (s *Server) Grow(project, id string, rows []map[string]any, at time.Time) error {
	r := s.findRun(project, id)
	if r == nil {
		return fmt.Errorf("wandbtest: no run %s/%s", project, id)
	}
	if r.Generated != nil {
		return fmt.Errorf("wandbtest: run %s/%s: a generated history cannot grow", project, id)
	}
	last := int64(-1)
	if n := len(r.History); n > 0 {
		last = stepOf(r.History[n-1])
	}
	for _, row := range rows {
		st, ok := row["_step"]
		if !ok || stepOf(row) <= last {
			return fmt.Errorf("wandbtest: run %s: row %v does not come after step %d", id, st, last)
		}
		last = stepOf(row)
		r.History = append(r.History, row)
		if r.Summary == nil {
			r.Summary = map[string]any{}
		}
		for k, v := range row {
			if !strings.HasPrefix(k, "_") || k == "_step" || k == "_timestamp" || k == "_runtime" {
				r.Summary[k] = v
			}
		}
	}
	if r.Export != nil {
		r.Export.Live += len(rows)
	}
	r.HeartbeatAt = at
	return nil
}

// findRun returns run id of project, nil when there is none.
func (s *Server) findRun(project, id string) *Run {
	for _, p := range s.data.Projects {
		if p.Name != project {
			continue
		}
		for _, r := range p.Runs {
			if r.ID == id {
				return r
			}
		}
	}
	return nil
}
