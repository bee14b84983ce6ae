package mlflowconv

import (
	"fmt"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// DatasetInputs maps a run's dataset inputs onto MLflow's, leaving out (and
// naming in cov.InputsNotHeld, as "name@digest: why") those MLflow would
// refuse: an empty name or digest, or a field or input tag longer than the
// server allows. MLflow would not cut them, so they are not cut here.
func DatasetInputs(r schema.Run, cov *Coverage) []mlflowapi.DatasetInput {
	var out []mlflowapi.DatasetInput
	for _, in := range r.Inputs {
		if why := inputProblem(in); why != "" {
			cov.InputsNotHeld = append(cov.InputsNotHeld, fmt.Sprintf("%s@%s: %s", in.Name, in.Digest, why))
			continue
		}
		d := mlflowapi.DatasetInput{Dataset: mlflowapi.Dataset{Name: in.Name, Digest: in.Digest, SourceType: in.SourceType,
			Source: in.Source, Schema: in.Schema, Profile: in.Profile}}
		for _, t := range in.Tags {
			d.Tags = append(d.Tags, mlflowapi.Tag{Key: t.Key, Value: t.Value})
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
	}{{"name", in.Name, mlflowapi.MaxDatasetNameLength}, {"digest", in.Digest, mlflowapi.MaxDatasetDigestLength},
		{"source", in.Source, mlflowapi.MaxDatasetSourceLength}, {"schema", in.Schema, mlflowapi.MaxDatasetSchemaLength},
		{"profile", in.Profile, mlflowapi.MaxDatasetProfileLength}} {
		if runeLen(f.value) > f.max {
			return fmt.Sprintf("%s longer than %d characters", f.what, f.max)
		}
	}
	for _, t := range in.Tags {
		if t.Key == "" || runeLen(t.Key) > mlflowapi.MaxInputTagKeyLength || runeLen(t.Value) > mlflowapi.MaxInputTagValueLength {
			return fmt.Sprintf("input tag %q too long for MLflow", t.Key)
		}
	}
	return ""
}

// SchemaInputs converts a run's MLflow dataset inputs into the schema's, in
// canonical order.
func SchemaInputs(r mlflowapi.Run) []schema.DatasetInput {
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
