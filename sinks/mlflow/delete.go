package mlflow

import (
	"context"
	"fmt"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.RunDeleter = (*Sink)(nil)

// DeleteRun mirrors the deletion of the run with origin at the source
// (sync --propagate-deletes): every active copy the server holds of it,
// found by its origin tag, is moved to MLflow's deleted lifecycle stage
// (runs/delete), as deleting it in MLflow's UI does; its data stays until
// `mlflow gc` purges it, and runs/restore brings it back. destID is not
// needed: the origin tag finds the copy wherever it is. held is false when
// the server holds no copy, or only deleted ones.
func (s *Sink) DeleteRun(ctx context.Context, origin schema.Ref, _ string) (held bool, err error) {
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin.String()), false)
	if err != nil {
		return false, err
	}
	for _, r := range runs {
		if r.Info.LifecycleStage != mlflowapi.StageActive {
			continue
		}
		if err := s.api.DeleteRun(ctx, r.Info.RunID); err != nil {
			return held, fmt.Errorf("mlflow: deleting run %s: %w", r.Info.RunID, err)
		}
		held = true
	}
	return held, nil
}
