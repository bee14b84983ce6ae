package sources

import (
	"context"
	"iter"

	"github.com/runferry/runferry/schema"
)

// TraceReader is a source that holds traces (MLflow tracing). Traces belong
// to experiments, not runs: the engine copies them after the runs, so that
// a sink can point each trace at the run it wrote from the trace's Run.
type TraceReader interface {
	// Traces yields every trace of experiment exp (an origin Experiments
	// yielded), canonicalised, in an order that is the same on every call,
	// each with its span document. A trace's Run is the origin under which
	// Runs yields (or would yield) the run it was logged in. A source that
	// holds traces it cannot read (an older server's) yields none of them
	// and counts them in Omitted.
	Traces(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Trace, error]
}
