package parquetdir

import (
	"context"
	"fmt"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var (
	_ sinks.TraceWriter  = (*Sink)(nil)
	_ sinks.TraceFlusher = (*Sink)(nil)
)

// PutTrace holds t for the traces table of experiment expID (the origin
// PutExperiment returned), written by FlushTraces. The archive keeps a
// trace as given: its run is the origin of the run it was logged in,
// whether or not the archive holds that run, so nothing is counted.
func (s *Sink) PutTrace(_ context.Context, expID string, t schema.Trace, _ map[schema.Ref]string) (map[string]int64, error) {
	if t.Origin.IsZero() {
		return nil, fault.Permanent(fmt.Errorf("parquet: a trace of %s has no origin", expID))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.traces == nil {
		s.traces = map[string][]schema.Trace{}
	}
	s.traces[expID] = append(s.traces[expID], t)
	return nil, nil
}

// FlushTraces writes the traces PutTrace held for experiment expID into
// the experiment's traces file, merged with those the archive holds (a
// trace of the same origin is replaced); the file is committed like a run
// (see archive.Writer.PutTraces).
func (s *Sink) FlushTraces(_ context.Context, expID string) error {
	s.mu.Lock()
	traces := s.traces[expID]
	delete(s.traces, expID)
	s.mu.Unlock()
	w, err := s.writer()
	if err != nil {
		return err
	}
	return w.PutTraces(expID, traces)
}
