package mlflowconv

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// Trace tags and metadata MLflow sets itself, which describe where the
// store keeps a trace rather than the trace: they are not yielded, and a
// sink does not write them.
var (
	SystemTraceTags     = []string{mlflowapi.TraceTagArtifactLocation, mlflowapi.TraceTagSpansLocation}
	SystemTraceMetadata = []string{mlflowapi.TraceMetaInfoFinalized, mlflowapi.TraceMetaSourceRun}
)

// NativeTrace maps the info of a trace of experiment exp, as the REST API
// gives it, onto the schema, shared by every reader of MLflow: the trace
// without its spans, under origin unless runferry wrote it (then under the
// origin of the trace it was copied from; keys under "runferry." are
// bookkeeping, not tags), with Run set when runferry's bookkeeping names
// the origin of its source run. runID is the MLflow id of the run the
// trace was logged in ("" for none), for the caller to map to that run's
// origin when Run is not set. A malformed time is a permanent error. The
// caller sets Spans and canonicalises.
func NativeTrace(info mlflowapi.TraceInfo, exp, origin schema.Ref) (t schema.Trace, runID string, err error) {
	t = schema.Trace{Origin: origin, ID: info.TraceID, Experiment: exp,
		State: info.State, RequestPreview: info.RequestPreview, ResponsePreview: info.ResponsePreview,
		ClientRequestID: info.ClientRequestID, Assessments: len(info.Assessments)}
	if info.RequestTime != "" {
		rt, err := time.Parse(time.RFC3339Nano, info.RequestTime)
		if err != nil {
			return t, "", fault.Permanent(fmt.Errorf("request_time %q: %w", info.RequestTime, err))
		}
		t.RequestTime = rt
	}
	if info.ExecutionDuration != "" {
		d, err := time.ParseDuration(info.ExecutionDuration)
		if err != nil {
			return t, "", fault.Permanent(fmt.Errorf("execution_duration %q: %w", info.ExecutionDuration, err))
		}
		t.Duration = d
	}
	own := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(info.Tags)) {
		v := info.Tags[k]
		switch {
		case Bookkeeping(k):
			own[k] = v
		case !slices.Contains(SystemTraceTags, k):
			t.Tags = append(t.Tags, schema.Tag{Key: k, Value: v})
		}
	}
	for _, k := range slices.Sorted(maps.Keys(info.TraceMetadata)) {
		if !slices.Contains(SystemTraceMetadata, k) && !Bookkeeping(k) {
			t.Metadata = append(t.Metadata, schema.Tag{Key: k, Value: info.TraceMetadata[k]})
		}
	}
	if ref, ok := schema.ParseRef(own[TagOrigin]); ok {
		t.Origin = ref
	}
	if ref, ok := schema.ParseRef(own[TagSourceRun]); ok {
		t.Run = ref
	}
	return t, info.TraceMetadata[mlflowapi.TraceMetaSourceRun], nil
}
