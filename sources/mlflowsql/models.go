package mlflowsql

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// modelStatus maps logged_models.status (MLflow's LoggedModelStatus.to_int)
// onto the REST API's enum names.
var modelStatus = map[int64]string{0: "LOGGED_MODEL_STATUS_UNSPECIFIED", 1: mlflowapi.ModelPending,
	2: mlflowapi.ModelReady, 3: mlflowapi.ModelFailed}

// loggedModelFiles lists the MLflow 3 logged models run info logged as the
// REST source lists them: under mlflow-logged-models/<model id>/, the
// model's metadata as logged_model.json (the same JSON the REST source
// writes from logged-models/search) and its files from its artifact
// location: under the artifacts option for mlflow-artifacts: locations;
// for any other location one entry with the Problem the REST source gives
// (the server's proxy does not serve it either).
func (s *Source) loggedModelFiles(ctx context.Context, info *runInfo) ([]schema.Artifact, error) {
	if !s.has(revLoggedModels) {
		return nil, nil
	}
	models, err := s.loggedModels(ctx, info)
	if err != nil {
		return nil, err
	}
	var out []schema.Artifact
	for _, m := range models {
		mlflowconv.CanonicalModel(&m)
		dir := mlflowapi.LoggedModelsDir + m.Info.ModelID + "/"
		meta, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return nil, err
		}
		out = append(out, schema.Artifact{Path: dir + mlflowapi.LoggedModelMeta, Size: int64(len(meta)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(meta)), nil }})
		uri := m.Info.ArtifactURI
		if !strings.HasPrefix(uri, "mlflow-artifacts:") {
			out = append(out, schema.Artifact{Path: dir + "artifacts", Size: -1, Problem: fmt.Sprintf("logged model %s: files at %s not served by the mlflow-artifacts proxy", m.Info.ModelID, uri)})
			continue
		}
		local, why := s.artifactDir(uri)
		if why != "" {
			s.mu.Lock()
			s.noDir["logged model "+m.Info.ModelID] = why
			s.mu.Unlock()
			continue
		}
		if _, err := os.Stat(local); os.IsNotExist(err) {
			continue
		}
		files, err := walkFiles(ctx, local, dir)
		if err != nil {
			return nil, fmt.Errorf("mlflow run %s: listing the files of logged model %s in %s: %w", info.id, m.Info.ModelID, local, err)
		}
		out = append(out, files...)
	}
	return out, nil
}

// loggedModels reads the active logged models run info logged, with their
// tags, params and metrics, into the REST API's form, ordered by id.
func (s *Source) loggedModels(ctx context.Context, info *runInfo) ([]mlflowapi.LoggedModel, error) {
	what := "logged models of run " + info.id
	rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT model_id, experiment_id, {name}, artifact_location, creation_timestamp_ms, {status}, model_type, source_run_id
		FROM logged_models WHERE experiment_id = ? AND source_run_id = ? AND (lifecycle_stage IS NULL OR lifecycle_stage <> 'deleted')
		ORDER BY model_id`), info.experimentID, info.id)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	var out []mlflowapi.LoggedModel
	for rows.Next() {
		var (
			m             mlflowapi.LoggedModel
			exp, created  int64
			status        sql.NullInt64
			mtype, srcRun sql.NullString
		)
		if err := rows.Scan(&m.Info.ModelID, &exp, &m.Info.Name, &m.Info.ArtifactURI, &created, &status, &mtype, &srcRun); err != nil {
			rows.Close()
			return nil, dbErr(ctx, what, err)
		}
		m.Info.ExperimentID = fmt.Sprint(exp)
		m.Info.CreationMs = created
		m.Info.Status = modelStatus[status.Int64]
		m.Info.ModelType, m.Info.SourceRunID = mtype.String, srcRun.String
		out = append(out, m)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	for i := range out {
		m := &out[i]
		tags, err := s.keyValues(ctx, "SELECT tag_key, tag_value FROM logged_model_tags WHERE model_id = ?", what, m.Info.ModelID)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			m.Info.Tags = append(m.Info.Tags, mlflowapi.Tag(t))
		}
		params, err := s.keyValues(ctx, "SELECT param_key, param_value FROM logged_model_params WHERE model_id = ?", what, m.Info.ModelID)
		if err != nil {
			return nil, err
		}
		for _, p := range params {
			m.Data.Params = append(m.Data.Params, mlflowapi.Param(p))
		}
		if m.Data.Metrics, err = s.modelMetrics(ctx, m.Info.ModelID, what); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Source) modelMetrics(ctx context.Context, modelID, what string) ([]mlflowapi.ModelMetric, error) {
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
