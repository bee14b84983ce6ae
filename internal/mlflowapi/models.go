package mlflowapi

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
)

// A run's logged models travel as files of the run: each model's files
// under LoggedModelsDir + <model id> + "/", with LoggedModelMeta beside them
// (name, type, status, params, tags, metrics, the logging run, as JSON).
const (
	LoggedModelsDir = "mlflow-logged-models/"
	LoggedModelMeta = "logged_model.json"
)

// LoggedModel is an MLflow 3 logged model as logged-models/search returns
// it: experiment-scoped, linked to the run that logged it, with files under
// its own artifact root (<experiment>/models/<model id>/artifacts).
type LoggedModel struct {
	Info struct {
		ModelID      string `json:"model_id"`
		ExperimentID string `json:"experiment_id"`
		Name         string `json:"name"`
		ArtifactURI  string `json:"artifact_uri"`
		Status       string `json:"status,omitempty"`
		ModelType    string `json:"model_type,omitempty"`
		SourceRunID  string `json:"source_run_id,omitempty"`
		CreationMs   int64  `json:"creation_timestamp_ms,omitempty"`
		Tags         []Tag  `json:"tags,omitempty"`
	} `json:"info"`
	Data struct {
		Params  []Param       `json:"params,omitempty"`
		Metrics []ModelMetric `json:"metrics,omitempty"`
	} `json:"data"`
}

// The states of a logged model (LoggedModel.Info.Status).
const (
	ModelPending = "LOGGED_MODEL_PENDING"
	ModelReady   = "LOGGED_MODEL_READY"
	ModelFailed  = "LOGGED_MODEL_UPLOAD_FAILED"
)

// ModelMetric is a metric point linked to a logged model: logged by run
// RunID with the model's id, optionally against a dataset.
type ModelMetric struct {
	Key           string `json:"key"`
	Value         Float  `json:"value"`
	Timestamp     int64  `json:"timestamp"`
	Step          int64  `json:"step"`
	DatasetName   string `json:"dataset_name,omitempty"`
	DatasetDigest string `json:"dataset_digest,omitempty"`
	RunID         string `json:"run_id,omitempty"`
}

// CreateLoggedModel is the body of logged-models (create).
type CreateLoggedModel struct {
	ExperimentID string  `json:"experiment_id"`
	Name         string  `json:"name"`
	ModelType    string  `json:"model_type,omitempty"`
	SourceRunID  string  `json:"source_run_id,omitempty"`
	Params       []Param `json:"params,omitempty"`
	Tags         []Tag   `json:"tags,omitempty"`
}

// MaxModelParamsPerRequest is how many params one create or log-params
// request of a logged model carries (the Python client's batch size).
const MaxModelParamsPerRequest = 100

// CreateLoggedModel creates a logged model in state PENDING, with its
// artifact root under the experiment's, and returns it. Params beyond
// the first MaxModelParamsPerRequest are logged by further requests. It is
// never resent once the server may have applied it: after an ambiguous
// failure a model may exist that the caller must find by its tags.
func (c *Client) CreateLoggedModel(ctx context.Context, m CreateLoggedModel) (LoggedModel, error) {
	rest := m.Params
	if len(rest) > MaxModelParamsPerRequest {
		m.Params, rest = rest[:MaxModelParamsPerRequest], rest[MaxModelParamsPerRequest:]
	} else {
		rest = nil
	}
	var out struct {
		Model LoggedModel `json:"model"`
	}
	if err := c.post(ctx, applyOnce, api+"logged-models", m, &out); err != nil {
		return LoggedModel{}, fmt.Errorf("creating logged model %q: %w", m.Name, err)
	}
	id := out.Model.Info.ModelID
	for chunk := range slices.Chunk(rest, MaxModelParamsPerRequest) {
		body := map[string]any{"model_id": id, "params": chunk}
		if err := c.post(ctx, idempotent, api+"logged-models/"+url.PathEscape(id)+"/params", body, nil); err != nil {
			return out.Model, fmt.Errorf("logging the params of logged model %s: %w", id, err)
		}
	}
	return out.Model, nil
}

// GetLoggedModel returns the logged model id; a deleted one only when
// allowDeleted.
func (c *Client) GetLoggedModel(ctx context.Context, id string, allowDeleted bool) (LoggedModel, error) {
	var out struct {
		Model LoggedModel `json:"model"`
	}
	var q url.Values
	if allowDeleted {
		q = url.Values{"allow_deleted": {"true"}}
	}
	err := c.get(ctx, api+"logged-models/"+url.PathEscape(id), q, &out)
	return out.Model, err
}

// FinalizeLoggedModel sets the state of logged model id (ModelReady or
// ModelFailed).
func (c *Client) FinalizeLoggedModel(ctx context.Context, id, status string) error {
	body := map[string]string{"model_id": id, "status": status}
	return c.call(ctx, idempotent, http.MethodPatch, api+"logged-models/"+url.PathEscape(id), nil, body, nil)
}

// SetLoggedModelTags sets (overwrites) tags of logged model id.
func (c *Client) SetLoggedModelTags(ctx context.Context, id string, tags []Tag) error {
	body := map[string]any{"model_id": id, "tags": tags}
	return c.call(ctx, idempotent, http.MethodPatch, api+"logged-models/"+url.PathEscape(id)+"/tags", nil, body, nil)
}

// DeleteLoggedModelTag removes tag key of logged model id; a tag that is
// not there is no error.
func (c *Client) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	err := c.call(ctx, idempotent, http.MethodDelete, api+"logged-models/"+url.PathEscape(id)+"/tags/"+url.PathEscape(key), nil, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// TagModelVersions is the logged-model tag in which MLflow lists the
// registered versions made from the model (JSON).
const TagModelVersions = "mlflow.modelVersions"

// DeleteLoggedModel marks logged model id deleted: searches and the
// experiment's models page no longer show it.
func (c *Client) DeleteLoggedModel(ctx context.Context, id string) error {
	err := c.call(ctx, idempotent, http.MethodDelete, api+"logged-models/"+url.PathEscape(id), nil, nil, nil)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// LogModelMetrics links metric points to logged model modelID through
// log-batch on run runID (which records them in the run's history too; a
// point the run already has is not doubled). Like any log-batch with
// metrics it is never resent once the server may have applied it.
func (c *Client) LogModelMetrics(ctx context.Context, runID, modelID string, ms []ModelMetric) error {
	type wire struct {
		ModelMetric
		ModelID string `json:"model_id"`
	}
	for chunk := range slices.Chunk(ms, MaxMetricsPerBatch) {
		out := make([]wire, len(chunk))
		for i, m := range chunk {
			m.RunID = runID
			out[i] = wire{ModelMetric: m, ModelID: modelID}
		}
		body := map[string]any{"run_id": runID, "metrics": out}
		if err := c.post(ctx, applyOnce, api+"runs/log-batch", body, nil); err != nil {
			return fmt.Errorf("logging the metrics of logged model %s: %w", modelID, err)
		}
	}
	return nil
}

// LogModelOutput records logged model modelID as an output of run runID
// at step (what the run page lists as its logged models).
func (c *Client) LogModelOutput(ctx context.Context, runID, modelID string, step int64) error {
	body := map[string]any{"run_id": runID, "models": []map[string]any{{"model_id": modelID, "step": step}}}
	return c.post(ctx, idempotent, api+"runs/outputs", body, nil)
}

// SupportsLoggedModels reports whether the server has logged models
// (MLflow 3 and later): it searches experiment expID for one.
func (c *Client) SupportsLoggedModels(ctx context.Context, expID string) (bool, error) {
	body := map[string]any{"experiment_ids": []string{expID}, "max_results": 1}
	err := c.post(ctx, idempotent, api+"logged-models/search", body, nil)
	switch {
	case err == nil:
		return true, nil
	case IsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("probing for logged models: %w", err)
}

// LoggedModelsOf returns the logged models that run runID of experiment
// expID logged, ordered by model id. A server without logged models
// (before MLflow 3) has none: its "endpoint not found" is no error.
func (c *Client) LoggedModelsOf(ctx context.Context, expID, runID string) ([]LoggedModel, error) {
	return c.SearchLoggedModels(ctx, expID, fmt.Sprintf("source_run_id = '%s'", strings.ReplaceAll(runID, "'", "")))
}

// SearchLoggedModels returns the active logged models of experiment expID
// that match filter (MLflow's logged-model search syntax), ordered by
// model id. A server without logged models (before MLflow 3) has none:
// its "endpoint not found" is no error.
func (c *Client) SearchLoggedModels(ctx context.Context, expID, filter string) ([]LoggedModel, error) {
	var all []LoggedModel
	token := ""
	for {
		body := map[string]any{"experiment_ids": []string{expID}, "max_results": 100, "filter": filter}
		if token != "" {
			body["page_token"] = token
		}
		var out struct {
			Models []LoggedModel `json:"models"`
			Next   string        `json:"next_page_token"`
		}
		err := c.post(ctx, idempotent, api+"logged-models/search", body, &out)
		if IsNotFound(err) && len(all) == 0 && token == "" {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("searching the logged models of experiment %s (%s): %w", expID, filter, err)
		}
		all = append(all, out.Models...)
		if out.Next == "" || len(out.Models) == 0 {
			break
		}
		token = out.Next
	}
	slices.SortFunc(all, func(a, b LoggedModel) int { return strings.Compare(a.Info.ModelID, b.Info.ModelID) })
	return slices.CompactFunc(all, func(a, b LoggedModel) bool { return a.Info.ModelID == b.Info.ModelID }), nil
}

// ListProxied yields every file below the artifact root uri (a
// "mlflow-artifacts:" URI, such as a logged model's), recursing into
// directories; paths are relative to uri. A root the proxy does not serve
// is ErrNotProxied.
func (c *Client) ListProxied(ctx context.Context, uri string) iter.Seq2[FileInfo, error] {
	return func(yield func(FileInfo, error) bool) {
		root, ok := proxyPath(uri, "")
		if !ok {
			yield(FileInfo{}, ErrNotProxied)
			return
		}
		c.listProxied(ctx, root, "", yield)
	}
}

func (c *Client) listProxied(ctx context.Context, root, dir string, yield func(FileInfo, error) bool) bool {
	var out struct {
		Files []FileInfo `json:"files"`
	}
	if err := c.get(ctx, "/api/2.0/mlflow-artifacts/artifacts", url.Values{"path": {path.Join(root, dir)}}, &out); err != nil {
		return yield(FileInfo{}, err)
	}
	slices.SortFunc(out.Files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range out.Files {
		rel := path.Join(dir, path.Base(f.Path)) // the proxy lists base names
		if f.IsDir {
			if !c.listProxied(ctx, root, rel, yield) {
				return false
			}
			continue
		}
		f.Path = rel
		if !yield(f, nil) {
			return false
		}
	}
	return true
}
