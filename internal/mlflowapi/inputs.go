package mlflowapi

import (
	"context"
)

// MLflow's limits on dataset inputs, in code points (mlflow/utils/validation.py).
const (
	MaxDatasetNameLength    = 500
	MaxDatasetDigestLength  = 36
	MaxDatasetSourceLength  = 65_535
	MaxDatasetSchemaLength  = 1_048_575
	MaxDatasetProfileLength = 16_777_215
	MaxInputTagKeyLength    = 255
	MaxInputTagValueLength  = 500
)

// LogInputs links datasets to a run (runs/log-inputs). The server keeps one
// dataset per experiment, name and digest and one link per dataset and run,
// so a repeat adds nothing. The server reads, then inserts the dataset: two
// runs of one experiment logging the same dataset at once make one of them
// lose a unique-key race, and that write is repeated (see raceRetry).
func (c *Client) LogInputs(ctx context.Context, runID string, inputs []DatasetInput) error {
	if len(inputs) == 0 {
		return nil
	}
	return raceRetry(func() error {
		return c.post(ctx, idempotent, api+"runs/log-inputs", map[string]any{"run_id": runID, "datasets": inputs}, nil)
	})
}
