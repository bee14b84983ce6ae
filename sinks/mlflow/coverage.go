package mlflow

import (
	"unicode/utf8"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var (
	_ sinks.CoverageReporter = (*writer)(nil)
	_ sinks.CoveragePlanner  = (*Sink)(nil)
)

// The coverage kinds of the MLflow sink. Each says where the original is.
const (
	covMetricKeys   = "metric keys MLflow rejects, renamed (originals in runferry/coverage.json)"
	covParamKeys    = "param keys MLflow rejects, renamed (originals in runferry/run.json)"
	covTagKeys      = "tag keys MLflow rejects, renamed (originals in runferry/run.json)"
	covTruncated    = "values longer than MLflow allows, cut (whole in runferry/run.json)"
	covConfig       = "config keys not written as params (whole in runferry/run.json and config.json)"
	covFixups       = "metric points MLflow stores differently: ±Inf, -0, negative times, duplicates (originals in runferry/coverage.json)"
	covFixupsLost   = "metric points stored differently beyond the fixup limit (stored form only: originals lost)"
	covFileProblems = "files the source could not read (named in runferry/coverage.json)"
	covModels       = "MLflow logged models held as run files, not re-created as logged models: the server has none before MLflow 3 (files and logged_model.json under mlflow-logged-models/<model id>/)"
	covModelIDs     = "MLflow logged models re-created with new ids and creation times (the source's id, experiment, artifact root, run and time in tag runferry.source_model)"
	covModelMetrics = "logged-model metric points logged by another run, not linked to the re-created model (kept in its tag runferry.source_model)"
	covInputs       = "dataset inputs MLflow refuses: too long or without name or digest (whole in runferry/run.json)"
	covSystemKeys   = "metric series of system metrics renamed as MLflow names its own (W&B keys in runferry/coverage.json; docs/MLFLOW-MAPPING.md)"
	covConverted    = "metric series of system metrics written in MLflow's names and units, bytes and GiB as MB (W&B's points exact in runferry/folded_metrics.jsonl; docs/MLFLOW-MAPPING.md)"
	covFolded       = "metric points of per-core CPU series folded into system/cpu_utilization_percentage (exact in runferry/folded_metrics.jsonl; ?per-core-cpu=true writes them as series)"
)

// Coverage counts what the run's writes did not hold as given, by kind.
// It is complete once Commit returned.
func (w *writer) Coverage() map[string]int64 { return coverageCounts(w.cov) }

// PlanCoverage counts what of r's metadata MLflow would not hold as given,
// as Coverage would after a copy (metric-level kinds need the points and
// are not planned).
func (s *Sink) PlanCoverage(r schema.Run) map[string]int64 {
	cov := &mlflowconv.Coverage{MetricKeys: map[string]string{}, ParamKeys: map[string]string{}, TagKeys: map[string]string{}}
	if _, _, err := mlflowconv.RunEntities(r, cov); err != nil {
		return nil // the copy reports it as the run's error
	}
	mlflowconv.DatasetInputs(r, cov)
	if utf8.RuneCountInString(r.Name) > mlflowapi.MaxRunNameLength {
		cov.Truncated = append(cov.Truncated, mlflowconv.Truncation{What: "run name"})
	}
	return coverageCounts(cov)
}

func coverageCounts(cov *mlflowconv.Coverage) map[string]int64 {
	out := map[string]int64{}
	add := func(kind string, n int) {
		if n > 0 {
			out[kind] += int64(n)
		}
	}
	add(covMetricKeys, len(cov.MetricKeys))
	add(covSystemKeys, len(cov.SystemMetricKeys))
	add(covConverted, len(cov.ConvertedMetrics))
	add(covFolded, int(cov.FoldedPoints-cov.ConvertedPoints))
	add(covParamKeys, len(cov.ParamKeys))
	add(covTagKeys, len(cov.TagKeys))
	add(covTruncated, len(cov.Truncated))
	add(covConfig, len(cov.ConfigNotParams))
	fixed := 0
	for _, f := range cov.Fixups {
		fixed += len(f.Points)
	}
	add(covFixups, fixed)
	add(covFixupsLost, int(cov.FixupsDropped))
	add(covFileProblems, len(cov.FileProblems))
	add(covInputs, len(cov.InputsNotHeld))
	add(covModels, len(cov.LoggedModelsAsFiles))
	add(covModelIDs, len(cov.LoggedModels))
	add(covModelMetrics, len(cov.ModelMetricsNotLinked))
	return out
}
