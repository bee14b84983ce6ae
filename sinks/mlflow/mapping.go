package mlflow

import (
	"github.com/runferry/runferry/internal/mlflowapi"
)

// entityBatches splits params and tags into log-batch requests within the
// server's limits: 100 params, 100 tags, 1000 entities and under 1 MB each.
func entityBatches(runID string, params []mlflowapi.Param, tags []mlflowapi.Tag) []mlflowapi.LogBatch {
	const budget = mlflowapi.MaxBatchBytes * 8 / 10
	var out []mlflowapi.LogBatch
	cur := mlflowapi.LogBatch{RunID: runID}
	size := 0
	flush := func() {
		if len(cur.Params)+len(cur.Tags) > 0 {
			out = append(out, cur)
		}
		cur, size = mlflowapi.LogBatch{RunID: runID}, 0
	}
	for _, p := range params {
		n := len(p.Key) + len(p.Value)*2 + 32 // escaping may double a value
		if len(cur.Params) == mlflowapi.MaxParamsTagsPerBatch || size+n > budget {
			flush()
		}
		cur.Params = append(cur.Params, p)
		size += n
	}
	for _, t := range tags {
		n := len(t.Key) + len(t.Value)*2 + 32
		if len(cur.Tags) == mlflowapi.MaxParamsTagsPerBatch || size+n > budget {
			flush()
		}
		cur.Tags = append(cur.Tags, t)
		size += n
	}
	flush()
	return out
}
