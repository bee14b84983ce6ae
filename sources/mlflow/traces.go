package mlflow

import (
	"context"
	"maps"
	"slices"
)

// CoverageTraces is the kind under which Omitted counts traces.
const CoverageTraces = "traces not copied (MLflow tracing; they stay in the source server)"

// countTraces adds to out the traces of the experiments whose runs were
// listed: runferry does not copy traces yet, and says so. A search error
// is counted under its own kind, so that it is not silent either.
func (s *Source) countTraces(ctx context.Context, out map[string]int64) {
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.listed))
	s.mu.Unlock()
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
