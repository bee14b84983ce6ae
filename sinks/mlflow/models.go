package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// A source's MLflow 3 logged models reach the sink as run files: each
// model's files under mlflow-logged-models/<model id>/ and its metadata
// there as logged_model.json (mlflowapi.LoggedModel). On a server with
// logged models the writer re-creates each as a logged model of the run
// (modelCopy); on an older server the files stay run files, counted as
// coverage.

// modelCopy is one source logged model being re-created.
type modelCopy struct {
	srcID string
	meta  *mlflowapi.LoggedModel // the source's, once logged_model.json arrived
	dest  mlflowapi.LoggedModel  // the re-created model, once created
	early []spooledFile          // files that came before the metadata
}

// spooledFile is a model file held on local disk until its model exists.
type spooledFile struct {
	rel, path string
	size      int64
}

// maxModelMeta bounds logged_model.json, which is read whole.
const maxModelMeta = 64 << 20

// loggedModelsSupported reports, once per sink, whether the server has
// logged models (probed on experiment expID).
func (s *Sink) loggedModelsSupported(ctx context.Context, expID string) (bool, error) {
	s.modelsMu.Lock()
	defer s.modelsMu.Unlock()
	if s.modelsProbed {
		return s.modelsOK, nil
	}
	ok, err := s.api.SupportsLoggedModels(ctx, expID)
	if err != nil {
		return false, err
	}
	s.modelsProbed, s.modelsOK = true, ok
	return ok, nil
}

// writeModelFile takes file a (at p, below mlflow-logged-models/) when the
// server has logged models: the metadata creates the model, other files go
// to its artifact root (spooled until the model exists). It returns false
// for a file the run keeps as its own: an unreadable one, one not inside a
// model's folder, or any on a server without logged models.
func (w *writer) writeModelFile(ctx context.Context, a schema.Artifact, p string, body io.Reader) (bool, error) {
	rest, _ := strings.CutPrefix(p, mlflowapi.LoggedModelsDir)
	srcID, rel, ok := strings.Cut(rest, "/")
	if !ok || srcID == "" || body == nil {
		return false, nil
	}
	if supported, err := w.sink.loggedModelsSupported(ctx, w.expID); err != nil || !supported {
		return false, err
	}
	if w.models == nil {
		w.models = map[string]*modelCopy{}
	}
	mc := w.models[srcID]
	if mc == nil {
		mc = &modelCopy{srcID: srcID}
		w.models[srcID] = mc
	}
	switch {
	case rel == mlflowapi.LoggedModelMeta:
		b, err := io.ReadAll(io.LimitReader(body, maxModelMeta+1))
		if err != nil {
			return true, fmt.Errorf("reading %s: %w", a.Path, err)
		}
		var meta mlflowapi.LoggedModel
		if err := json.Unmarshal(b, &meta); err != nil || len(b) > maxModelMeta {
			return true, fault.Permanent(fmt.Errorf("mlflow sink: %s is not a logged model's metadata (%d bytes): %v", a.Path, len(b), err))
		}
		mc.meta = &meta
		if err := w.createModel(ctx, mc); err != nil {
			return true, err
		}
		for _, f := range mc.early {
			if err := w.api().UploadFile(ctx, mc.dest.Info.ArtifactURI, f.rel, f.path); err != nil {
				return true, fmt.Errorf("uploading %s of logged model %s: %w", f.rel, srcID, err)
			}
		}
		mc.removeSpool()
		return true, nil
	case mc.dest.Info.ModelID == "":
		f, err := os.CreateTemp("", "runferry-model-*")
		if err != nil {
			return true, fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
		}
		n, err := io.Copy(f, body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		mc.early = append(mc.early, spooledFile{rel: rel, path: f.Name(), size: n})
		if err != nil {
			return true, fmt.Errorf("spooling %s: %w", a.Path, err)
		}
		if a.Size >= 0 && n != a.Size {
			return true, fault.Permanent(fmt.Errorf("mlflow sink: artifact %s: got %d bytes, expected %d", a.Path, n, a.Size))
		}
		return true, nil
	}
	return true, w.upload(ctx, mc.dest.Info.ArtifactURI, rel, a, body)
}

// createModel re-creates mc's source model as a logged model of the run:
// name, type, params and tags (with runferry.origin, runferry.origin_key
// and runferry.source_model), in state PENDING until Commit finalizes it.
// Models of the same origin in the experiment, left by an earlier attempt
// or copy (whose run this writer superseded), are deleted first, so the
// experiment shows one.
func (w *writer) createModel(ctx context.Context, mc *modelCopy) error {
	m := mc.meta
	origin := mlflowconv.ModelOrigin(w.src.Origin.String(), mc.srcID)
	key := mlflowconv.OriginKey(origin)
	earlier, err := w.api().SearchLoggedModels(ctx, w.expID, fmt.Sprintf("tags.`%s` = '%s'", mlflowconv.TagOriginKey, key))
	if err != nil {
		return err
	}
	for _, e := range earlier {
		if err := w.api().DeleteLoggedModel(ctx, e.Info.ModelID); err != nil {
			return fmt.Errorf("deleting logged model %s of an earlier copy: %w", e.Info.ModelID, err)
		}
	}
	src := mlflowconv.ModelSource{ModelID: m.Info.ModelID, ExperimentID: m.Info.ExperimentID,
		ArtifactURI: m.Info.ArtifactURI, SourceRunID: m.Info.SourceRunID, CreationMs: m.Info.CreationMs}
	for _, x := range m.Data.Metrics {
		if !ownMetric(x, m) {
			src.OtherMetrics = append(src.OtherMetrics, x)
		}
	}
	srcTag, err := json.Marshal(src)
	if err != nil {
		return fault.Permanent(err)
	}
	if len(srcTag) > mlflowapi.MaxTagValueLength { // too many unlinked points to keep
		src.OtherMetrics = nil
		srcTag, _ = json.Marshal(src)
	}
	tags := []mlflowapi.Tag{
		{Key: mlflowconv.TagOrigin, Value: origin},
		{Key: mlflowconv.TagOriginKey, Value: key},
		{Key: mlflowconv.TagModelSource, Value: string(srcTag)},
	}
	for _, t := range m.Info.Tags {
		if !mlflowconv.Bookkeeping(t.Key) {
			tags = append(tags, t)
		}
	}
	mc.dest, err = w.api().CreateLoggedModel(ctx, mlflowapi.CreateLoggedModel{ExperimentID: w.expID,
		Name: m.Info.Name, ModelType: m.Info.ModelType, SourceRunID: w.run.RunID, Params: m.Data.Params, Tags: tags})
	if err != nil {
		return err
	}
	if w.cov.LoggedModels == nil {
		w.cov.LoggedModels = map[string]string{}
	}
	w.cov.LoggedModels[mc.srcID] = mc.dest.Info.ModelID
	return nil
}

// ownMetric reports whether metric point x of model m was logged by the
// model's own run (a point without a run, from an older archive, counts
// as the model's run's).
func ownMetric(x mlflowapi.ModelMetric, m *mlflowapi.LoggedModel) bool {
	return x.RunID == "" || x.RunID == m.Info.SourceRunID
}

// finishModels completes the logged models at commit: it links the metric
// points the model's run logged (log-batch with the model id; points the
// run holds already are not doubled), records each model as an output of
// the run, and finalizes it with the source's state (a PENDING one stays
// PENDING). Model files that came without metadata are uploaded as run
// files.
func (w *writer) finishModels(ctx context.Context) error {
	for _, id := range slices.Sorted(maps.Keys(w.models)) {
		mc := w.models[id]
		if mc.meta == nil {
			for _, f := range mc.early {
				if err := w.api().UploadFile(ctx, w.run.ArtifactURI, mlflowapi.LoggedModelsDir+id+"/"+f.rel, f.path); err != nil {
					return fmt.Errorf("uploading %s: %w", f.rel, err)
				}
			}
			mc.removeSpool()
			continue
		}
		newID := mc.dest.Info.ModelID
		var own []mlflowapi.ModelMetric
		for _, x := range mc.meta.Data.Metrics {
			if ownMetric(x, mc.meta) {
				own = append(own, x)
			} else {
				w.cov.ModelMetricsNotLinked = append(w.cov.ModelMetricsNotLinked, fmt.Sprintf("%s: %s@%d", id, x.Key, x.Step))
			}
		}
		if err := w.api().LogModelMetrics(ctx, w.run.RunID, newID, own); err != nil {
			return err
		}
		if err := w.api().LogModelOutput(ctx, w.run.RunID, newID, 0); err != nil {
			return fmt.Errorf("recording logged model %s as the run's output: %w", newID, err)
		}
		if st := mc.meta.Info.Status; st == mlflowapi.ModelReady || st == mlflowapi.ModelFailed {
			if err := w.api().FinalizeLoggedModel(ctx, newID, st); err != nil {
				return fmt.Errorf("finalizing logged model %s: %w", newID, err)
			}
		}
	}
	return nil
}

func (mc *modelCopy) removeSpool() {
	for _, f := range mc.early {
		os.Remove(f.path)
	}
	mc.early = nil
}

// removeModelSpools drops every spooled model file (Abort, Commit).
func (w *writer) removeModelSpools() {
	for _, mc := range w.models {
		mc.removeSpool()
	}
}
