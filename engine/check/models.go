package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// An MLflow 3 logged model travels as run files: its files under
// mlflow-logged-models/<model id>/ and its metadata there as
// logged_model.json. Its files are compared as any file; when the metadata
// differs, the check names the fields that differ.

// isModelMeta reports whether p is a logged model's metadata file.
func isModelMeta(p string) bool {
	rest, ok := strings.CutPrefix(p, mlflowapi.LoggedModelsDir)
	return ok && path.Base(rest) == mlflowapi.LoggedModelMeta && path.Dir(rest) != "."
}

// compareModelMeta compares the logged model metadata file p of both sides
// by field (name, type, state, params, tags, metrics, and the identity
// fields), adding a difference for each, and reports whether it could
// (false: a body that does not decode, compared as a plain file).
func (res *Result) compareModelMeta(ctx context.Context, run schema.Ref, p string, want, got *schema.Artifact) bool {
	w, err := readModel(ctx, want)
	if err != nil {
		return false
	}
	g, err := readModel(ctx, got)
	if err != nil {
		return false
	}
	id := "logged model " + path.Base(path.Dir(p)) + " "
	before := len(res.Differences)
	field := func(name, a, b string) {
		if a != b {
			res.add(run, id+name, a, b)
		}
	}
	field("name", w.Info.Name, g.Info.Name)
	field("type", w.Info.ModelType, g.Info.ModelType)
	field("state", w.Info.Status, g.Info.Status)
	field("id", w.Info.ModelID, g.Info.ModelID)
	field("experiment", w.Info.ExperimentID, g.Info.ExperimentID)
	field("source run", w.Info.SourceRunID, g.Info.SourceRunID)
	field("artifact root", w.Info.ArtifactURI, g.Info.ArtifactURI)
	field("creation time", fmt.Sprint(w.Info.CreationMs), fmt.Sprint(g.Info.CreationMs))
	kv := func(what string, a, b map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(a)) {
			if v, ok := b[k]; !ok {
				res.add(run, id+what+" "+k+" missing", a[k], "")
			} else if v != a[k] {
				res.add(run, id+what+" "+k, a[k], v)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(b)) {
			if _, ok := a[k]; !ok {
				res.add(run, id+what+" "+k+" unexpected", "", b[k])
			}
		}
	}
	tags := func(ts []mlflowapi.Tag) map[string]string {
		out := map[string]string{}
		for _, t := range ts {
			out[t.Key] = t.Value
		}
		return out
	}
	params := func(ps []mlflowapi.Param) map[string]string {
		out := map[string]string{}
		for _, p := range ps {
			out[p.Key] = p.Value
		}
		return out
	}
	kv("tag", tags(w.Info.Tags), tags(g.Info.Tags))
	kv("param", params(w.Data.Params), params(g.Data.Params))
	metrics := func(ms []mlflowapi.ModelMetric) map[string]string {
		out := map[string]string{}
		for _, m := range ms {
			k := fmt.Sprintf("%s@%d", m.Key, m.Step)
			b, _ := json.Marshal(m)
			out[k] = strings.TrimSpace(out[k] + " " + string(b))
		}
		return out
	}
	kv("metric", metrics(w.Data.Metrics), metrics(g.Data.Metrics))
	if len(res.Differences) == before { // equal fields, other bytes
		res.add(run, "file "+p, "", "same fields, other bytes")
	}
	return true
}

func readModel(ctx context.Context, a *schema.Artifact) (mlflowapi.LoggedModel, error) {
	var m mlflowapi.LoggedModel
	rc, err := a.Open(ctx)
	if err != nil {
		return m, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, 64<<20))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}
