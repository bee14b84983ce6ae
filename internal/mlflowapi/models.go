package mlflowapi

import (
	"context"
	"fmt"
	"iter"
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
		Params  []Param  `json:"params,omitempty"`
		Metrics []Metric `json:"metrics,omitempty"`
	} `json:"data"`
}

// LoggedModelsOf returns the logged models that run runID of experiment
// expID logged, ordered by model id. A server without logged models
// (before MLflow 3) has none: its "endpoint not found" is no error.
func (c *Client) LoggedModelsOf(ctx context.Context, expID, runID string) ([]LoggedModel, error) {
	var all []LoggedModel
	token := ""
	for {
		body := map[string]any{"experiment_ids": []string{expID}, "max_results": 100,
			"filter": fmt.Sprintf("source_run_id = '%s'", strings.ReplaceAll(runID, "'", ""))}
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
			return nil, fmt.Errorf("searching the logged models of run %s: %w", runID, err)
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
