package mlflowapi

import (
	"context"
	"fmt"

	"github.com/runferry/runferry/schema"
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

// DatasetInputs maps a run's dataset inputs onto MLflow's, leaving out (and
// naming in cov.InputsNotHeld, as "name@digest: why") those MLflow would
// refuse: an empty name or digest, or a field or input tag longer than the
// server allows. MLflow would not cut them, so they are not cut here.
func DatasetInputs(r schema.Run, cov *Coverage) []DatasetInput {
	var out []DatasetInput
	for _, in := range r.Inputs {
		if why := inputProblem(in); why != "" {
			cov.InputsNotHeld = append(cov.InputsNotHeld, fmt.Sprintf("%s@%s: %s", in.Name, in.Digest, why))
			continue
		}
		d := DatasetInput{Dataset: Dataset{Name: in.Name, Digest: in.Digest, SourceType: in.SourceType,
			Source: in.Source, Schema: in.Schema, Profile: in.Profile}}
		for _, t := range in.Tags {
			d.Tags = append(d.Tags, Tag{Key: t.Key, Value: t.Value})
		}
		out = append(out, d)
	}
	return out
}

func inputProblem(in schema.DatasetInput) string {
	if in.Name == "" || in.Digest == "" {
		return "no name or digest"
	}
	for _, f := range []struct {
		what  string
		value string
		max   int
	}{{"name", in.Name, MaxDatasetNameLength}, {"digest", in.Digest, MaxDatasetDigestLength},
		{"source", in.Source, MaxDatasetSourceLength}, {"schema", in.Schema, MaxDatasetSchemaLength},
		{"profile", in.Profile, MaxDatasetProfileLength}} {
		if runeLen(f.value) > f.max {
			return fmt.Sprintf("%s longer than %d characters", f.what, f.max)
		}
	}
	for _, t := range in.Tags {
		if t.Key == "" || runeLen(t.Key) > MaxInputTagKeyLength || runeLen(t.Value) > MaxInputTagValueLength {
			return fmt.Sprintf("input tag %q too long for MLflow", t.Key)
		}
	}
	return ""
}

// SchemaInputs converts a run's MLflow dataset inputs into the schema's, in
// canonical order.
func SchemaInputs(r Run) []schema.DatasetInput {
	var out []schema.DatasetInput
	for _, d := range r.Inputs.DatasetInputs {
		in := schema.DatasetInput{Name: d.Dataset.Name, Digest: d.Dataset.Digest, SourceType: d.Dataset.SourceType,
			Source: d.Dataset.Source, Schema: d.Dataset.Schema, Profile: d.Dataset.Profile}
		for _, t := range d.Tags {
			in.Tags = append(in.Tags, schema.Tag{Key: t.Key, Value: t.Value})
		}
		out = append(out, in)
	}
	x := schema.Run{Inputs: out}
	x.Canonicalize()
	return x.Inputs
}
