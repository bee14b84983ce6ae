package mlflow

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.TraceReader = (*Source)(nil)

// CoverageTraces is the kind under which Omitted counts the traces of a
// server without the v3 trace API (before MLflow 3), which runferry cannot
// read.
const CoverageTraces = "traces not copied (the source server is older than MLflow 3's trace API)"

// Traces yields the traces of experiment exp in the order of the server's
// search (newest first), each with its span document as the server's
// trace-data route delivers it (the traces.json document the MLflow UI
// reads, whether the spans are in the tracking store or the artifact
// store). A trace runferry wrote shows the origin and tags of the trace it
// was copied from (keys under "runferry." are bookkeeping, not tags), and
// its Run is the origin of its source run. A server without the v3 trace
// API yields no trace (Omitted counts them).
func (s *Source) Traces(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Trace, error] {
	return func(yield func(schema.Trace, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Trace{}, err)
			return
		}
		expID, err := s.experimentID(ctx, exp)
		if err != nil {
			yield(schema.Trace{}, err)
			return
		}
		runs := map[string]schema.Ref{} // run id -> origin
		for info, err := range s.api.SearchTraces(ctx, []string{expID}) {
			if mlflowapi.IsNotFound(err) {
				return // before MLflow 3: counted by Omitted
			}
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(schema.Trace{}, fmt.Errorf("listing the traces of experiment %s: %w", expID, err))
				return
			}
			t, err := s.convertTrace(ctx, exp, info, runs)
			if err != nil {
				yield(schema.Trace{}, fmt.Errorf("trace %s: %w", info.TraceID, err))
				return
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}

func (s *Source) convertTrace(ctx context.Context, exp schema.Ref, info mlflowapi.TraceInfo, runs map[string]schema.Ref) (schema.Trace, error) {
	t, runID, err := mlflowconv.NativeTrace(info, exp, s.ref("trace/"+info.TraceID))
	if err != nil {
		return t, err
	}
	if t.Run == (schema.Ref{}) && runID != "" {
		ref, err := s.runOriginOf(ctx, runID, runs)
		if err != nil {
			return t, err
		}
		t.Run = ref
	}
	doc, err := s.api.TraceData(ctx, info)
	if err != nil {
		return t, err
	}
	t.Spans = doc
	t.Canonicalize()
	return t, nil
}

// runOriginOf returns the origin under which Runs yields (or would yield)
// the run with MLflow id id: its runferry.origin, else mlflow:INSTANCE/ID
// (also for a run that was purged). runs caches the answers.
func (s *Source) runOriginOf(ctx context.Context, id string, runs map[string]schema.Ref) (schema.Ref, error) {
	if ref, ok := runs[id]; ok {
		return ref, nil
	}
	ref := s.ref(id)
	s.mu.Lock()
	for o, info := range s.runs {
		if info.id == id {
			ref = o
		}
	}
	s.mu.Unlock()
	if ref == s.ref(id) {
		run, err := s.api.GetRun(ctx, id)
		switch {
		case mlflowapi.IsNotFound(err):
		case err != nil:
			return schema.Ref{}, err
		default:
			if o, ok := run.Tag(mlflowconv.TagOrigin); ok {
				if r, ok := schema.ParseRef(o); ok {
					ref = r
				}
			}
		}
	}
	runs[id] = ref
	return ref, nil
}

// countTraces adds to out the traces of the experiments whose runs were
// listed, on a server whose traces Traces cannot read. A search error is
// counted under its own kind, so that it is not silent either.
func (s *Source) countTraces(ctx context.Context, out map[string]int64) {
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.listed))
	s.mu.Unlock()
	if len(ids) == 0 || !s.olderThanTraceAPI(ctx, ids[0]) {
		return // Traces reads them (or says why it cannot)
	}
	for chunk := range slices.Chunk(ids, 100) {
		n, err := s.api.CountTraces(ctx, chunk)
		if err != nil {
			out["experiments whose traces could not be counted (traces not copied)"] += int64(len(chunk))
			continue
		}
		if n > 0 {
			out[CoverageTraces] += n
		}
	}
}

// olderThanTraceAPI reports whether the server answers the v3 trace search
// for experiment expID with 404 (a server before MLflow 3).
func (s *Source) olderThanTraceAPI(ctx context.Context, expID string) bool {
	for _, err := range s.api.SearchTraces(ctx, []string{expID}) {
		return err != nil && mlflowapi.IsNotFound(err)
	}
	return false
}
