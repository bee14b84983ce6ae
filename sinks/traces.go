package sinks

import (
	"context"

	"github.com/runferry/runferry/schema"
)

// TraceWriter is a sink that holds traces. The engine calls it once per
// trace, after the job's runs were committed, with the experiment id
// PutExperiment returned for the trace's experiment.
type TraceWriter interface {
	// PutTrace writes t into experiment expID, or brings up to date what an
	// earlier call wrote from the same origin: a trace written earlier is
	// found again by t.Origin (never created twice) and its tags are set to
	// t's. The trace points at the run the sink holds from t.Run (runs maps
	// the origins the engine knows to the sink's run ids; the sink looks up
	// the others itself); a trace whose run the sink does not hold loses
	// the link, and that is counted. It returns, by kind, what the sink did
	// not hold as given (the kinds of CoverageReporter).
	PutTrace(ctx context.Context, expID string, t schema.Trace, runs map[schema.Ref]string) (coverage map[string]int64, err error)
}

// TraceFlusher is a TraceWriter that holds the traces PutTrace gives it
// until the engine has handed it every trace of an experiment (an archive
// writes one file of traces per experiment). The engine calls FlushTraces
// once after the traces of each experiment it gave PutTrace; the traces are
// stored when it returns nil.
type TraceFlusher interface {
	FlushTraces(ctx context.Context, expID string) error
}
