package mlflowconv

import (
	"cmp"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// A re-created logged model carries, in tag TagModelSource, what MLflow
// assigns itself and the destination therefore cannot hold of the source's
// model: its id, experiment, artifact root, logging run and creation time,
// and the metric points of it that another run logged (not linked in the
// destination, see Coverage.ModelMetricsNotLinked).

// ModelSource is the content of TagModelSource.
type ModelSource struct {
	ModelID      string                  `json:"model_id"`
	ExperimentID string                  `json:"experiment_id"`
	ArtifactURI  string                  `json:"artifact_uri"`
	SourceRunID  string                  `json:"source_run_id,omitempty"`
	CreationMs   int64                   `json:"creation_timestamp_ms,omitempty"`
	OtherMetrics []mlflowapi.ModelMetric `json:"other_metrics,omitempty"`
}

// CanonicalModel orders m's tags and params by key and its metrics by key,
// step, time, value, dataset and run, so that two readings of equal models
// encode to equal bytes.
func CanonicalModel(m *mlflowapi.LoggedModel) {
	slices.SortFunc(m.Info.Tags, func(a, b mlflowapi.Tag) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	slices.SortFunc(m.Data.Params, func(a, b mlflowapi.Param) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.Value, b.Value))
	})
	slices.SortFunc(m.Data.Metrics, func(a, b mlflowapi.ModelMetric) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.Step, b.Step), cmp.Compare(a.Timestamp, b.Timestamp),
			cmp.Compare(math.Float64bits(float64(a.Value)), math.Float64bits(float64(b.Value))),
			strings.Compare(a.DatasetName, b.DatasetName), strings.Compare(a.DatasetDigest, b.DatasetDigest),
			strings.Compare(a.RunID, b.RunID))
	})
}

// SourceModel returns the source's logged model that m, a logged model
// runferry re-created for run destRunID, stands for: name, type, state,
// params, tags (without runferry's) and metrics as the destination holds
// them, and the identity fields and unlinked metrics from TagModelSource
// (metrics run destRunID logged are shown as logged by the source's run).
// It is false when m carries no TagModelSource (not runferry's copy).
func SourceModel(m mlflowapi.LoggedModel, destRunID string) (mlflowapi.LoggedModel, bool) {
	var src ModelSource
	found := false
	var tags []mlflowapi.Tag
	for _, t := range m.Info.Tags {
		if t.Key == TagModelSource {
			found = json.Unmarshal([]byte(t.Value), &src) == nil && src.ModelID != ""
		}
		if !Bookkeeping(t.Key) {
			tags = append(tags, t)
		}
	}
	if !found {
		return m, false
	}
	out := m
	out.Info.Tags = tags
	out.Info.ModelID, out.Info.ExperimentID, out.Info.ArtifactURI = src.ModelID, src.ExperimentID, src.ArtifactURI
	out.Info.SourceRunID, out.Info.CreationMs = src.SourceRunID, src.CreationMs
	out.Data.Metrics = nil
	for _, x := range m.Data.Metrics {
		if x.RunID == destRunID {
			x.RunID = src.SourceRunID
		}
		out.Data.Metrics = append(out.Data.Metrics, x)
	}
	out.Data.Metrics = append(out.Data.Metrics, src.OtherMetrics...)
	out.Data.Params = slices.Clone(m.Data.Params)
	CanonicalModel(&out)
	return out, true
}
