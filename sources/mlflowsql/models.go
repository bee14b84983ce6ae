package mlflowsql

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// modelStatus maps logged_models.status (MLflow's LoggedModelStatus.to_int)
// onto the REST API's enum names.
var modelStatus = map[int64]string{0: "LOGGED_MODEL_STATUS_UNSPECIFIED", 1: mlflowapi.ModelPending,
	2: mlflowapi.ModelReady, 3: mlflowapi.ModelFailed}

// LoggedModelsOf returns the active MLflow 3 logged models run runID of
// experiment expID logged, with their tags, params and metrics, ordered by
// id; none before the logged_models table.
func (s *store) LoggedModelsOf(ctx context.Context, expID, runID string) ([]mlflowapi.LoggedModel, error) {
	if !s.has(revLoggedModels) {
		return nil, nil
	}
	models, _, err := s.loggedModels(ctx, "logged models of run "+runID,
		"experiment_id = ? AND source_run_id = ? AND (lifecycle_stage IS NULL OR lifecycle_stage <> 'deleted')", expID, runID)
	return models, err
}

// GetLoggedModel returns logged model id; a deleted one only when
// allowDeleted.
func (s *store) GetLoggedModel(ctx context.Context, id string, allowDeleted bool) (mlflowapi.LoggedModel, error) {
	if !s.has(revLoggedModels) {
		return mlflowapi.LoggedModel{}, notFound("logged model %s not found", id)
	}
	models, deleted, err := s.loggedModels(ctx, "logged model "+id, "model_id = ?", id)
	if err != nil {
		return mlflowapi.LoggedModel{}, err
	}
	if len(models) == 0 || (deleted[0] && !allowDeleted) {
		return mlflowapi.LoggedModel{}, notFound("logged model %s not found", id)
	}
	return models[0], nil
}

// loggedModels reads the logged models the condition where selects, with
// their tags, params and metrics, into the REST API's form, ordered by id;
// deleted tells which are deleted.
func (s *store) loggedModels(ctx context.Context, what, where string, args ...any) ([]mlflowapi.LoggedModel, []bool, error) {
	rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT model_id, experiment_id, {name}, artifact_location, creation_timestamp_ms, {status}, model_type, source_run_id, lifecycle_stage
		FROM logged_models WHERE `+where+` ORDER BY model_id`), args...)
	if err != nil {
		return nil, nil, dbErr(ctx, what, err)
	}
	var (
		out     []mlflowapi.LoggedModel
		deleted []bool
	)
	for rows.Next() {
		var (
			m                    mlflowapi.LoggedModel
			exp, created         int64
			status               sql.NullInt64
			mtype, srcRun, stage sql.NullString
		)
		if err := rows.Scan(&m.Info.ModelID, &exp, &m.Info.Name, &m.Info.ArtifactURI, &created, &status, &mtype, &srcRun, &stage); err != nil {
			rows.Close()
			return nil, nil, dbErr(ctx, what, err)
		}
		m.Info.ExperimentID = fmt.Sprint(exp)
		m.Info.CreationMs = created
		m.Info.Status = modelStatus[status.Int64]
		m.Info.ModelType, m.Info.SourceRunID = mtype.String, srcRun.String
		out = append(out, m)
		deleted = append(deleted, stage.String == mlflowapi.StageDeleted)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, nil, dbErr(ctx, what, err)
	}
	for i := range out {
		m := &out[i]
		tags, err := s.keyValues(ctx, "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?", what, m.Info.ModelID)
		if err != nil {
			return nil, nil, err
		}
		for _, t := range tags {
			m.Info.Tags = append(m.Info.Tags, mlflowapi.Tag(t))
		}
		params, err := s.keyValues(ctx, "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?", what, m.Info.ModelID)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range params {
			m.Data.Params = append(m.Data.Params, mlflowapi.Param(p))
		}
		if m.Data.Metrics, err = s.modelMetrics(ctx, m.Info.ModelID, what); err != nil {
			return nil, nil, err
		}
	}
	return out, deleted, nil
}

func (s *store) modelMetrics(ctx context.Context, modelID, what string) ([]mlflowapi.ModelMetric, error) {
	rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT metric_name, metric_value, metric_timestamp_ms, metric_step, dataset_name, dataset_digest, run_id
		FROM logged_model_metrics WHERE model_id = ?`), modelID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var out []mlflowapi.ModelMetric
	for rows.Next() {
		var (
			m          mlflowapi.ModelMetric
			v          sql.NullFloat64
			ds, digest sql.NullString
		)
		if err := rows.Scan(&m.Key, &v, &m.Timestamp, &m.Step, &ds, &digest, &m.RunID); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		m.Value, m.DatasetName, m.DatasetDigest = mlflowapi.Float(v.Float64), ds.String, digest.String
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	return out, nil
}
