package schema

import (
	"encoding/json"
	"time"
)

// Trace is one trace of an application (MLflow tracing: a request through
// an LLM app or agent, recorded as a tree of spans). It belongs to an
// experiment and may name the run it was logged in. The engine copies
// traces after the runs, so that a sink can point a trace at the run it
// wrote from the trace's Run.
type Trace struct {
	// Origin identifies the trace in the system it was read from (MLflow:
	// "mlflow:INSTANCE/trace/TRACE_ID" unless runferry wrote it, then the
	// origin it was copied from).
	Origin Ref
	// ID is the trace id the source gave it ("tr-…"); a sink keeps it when
	// it is free there.
	ID string
	// Experiment is the origin of the experiment the trace belongs to, as
	// the source's Experiments yields it.
	Experiment Ref
	// Run is the origin of the run the trace was logged in (MLflow's
	// mlflow.sourceRun); zero when none.
	Run         Ref
	RequestTime time.Time     // when the request arrived, to the millisecond
	Duration    time.Duration // execution time, to the millisecond
	// State is "OK", "ERROR", "IN_PROGRESS" or "STATE_UNSPECIFIED".
	State           string
	RequestPreview  string
	ResponsePreview string
	ClientRequestID string
	// Tags and Metadata are the trace's tags and request metadata, sorted
	// by key, without what the system sets itself (see the adapters) and
	// without Run's link, which is carried by Run.
	Tags     []Tag
	Metadata []Tag
	// Spans is the span document exactly as the source delivered it
	// (MLflow: the traces.json document, {"spans": [...]}, each span as
	// MLflow's Span.to_dict). Nil when the trace has no span data.
	Spans json.RawMessage
	// Assessments counts the trace's assessments (feedback, expectations),
	// which runferry does not copy yet.
	Assessments int
}

// Canonicalize sorts the trace's tags and metadata and truncates its
// request time and duration to the millisecond.
func (t *Trace) Canonicalize() {
	t.Tags = sortedUnique(t.Tags, func(x Tag) string { return x.Key })
	t.Metadata = sortedUnique(t.Metadata, func(x Tag) string { return x.Key })
	t.RequestTime = CanonicalTime(t.RequestTime)
	t.Duration = t.Duration.Truncate(time.Millisecond)
}
