package mlflowfile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowlocal"
)

// MLflow 3 logged models live in <experiment>/models/<model id>/: meta.yaml,
// params/, tags/, metrics/ (lines of 4 or 6 fields, naming the logging
// run) and, by default, artifacts/.

// readLoggedModel reads the logged model in folder dir. MLflow returns, of
// each metric key, the latest point per dataset (by step, time, value).
func (s *store) readLoggedModel(dir string) (mlflowapi.LoggedModel, modelMeta, error) {
	var m modelMeta
	var x mlflowapi.LoggedModel
	if err := readMeta(filepath.Join(dir, metaFile), &m); err != nil {
		return x, m, err
	}
	x.Info.ModelID, x.Info.ExperimentID, x.Info.Name = m.ModelID, string(m.ExperimentID), m.Name
	x.Info.ArtifactURI, x.Info.Status, x.Info.ModelType = m.ArtifactLocation, modelStatus(m.Status), deref(m.ModelType)
	x.Info.SourceRunID, x.Info.CreationMs = deref(m.SourceRunID), deref(m.CreationTime)
	tags, err := readValues(filepath.Join(dir, "tags"))
	if err != nil {
		return x, m, err
	}
	for _, kv := range tags {
		x.Info.Tags = append(x.Info.Tags, mlflowapi.Tag{Key: kv[0], Value: kv[1]})
	}
	params, err := readValues(filepath.Join(dir, "params"))
	if err != nil {
		return x, m, err
	}
	for _, kv := range params {
		x.Data.Params = append(x.Data.Params, mlflowapi.Param{Key: kv[0], Value: kv[1]})
	}
	mdir := filepath.Join(dir, "metrics")
	keys, err := metricKeys(mdir)
	if err != nil {
		return x, m, err
	}
	for _, k := range keys {
		type group struct{ name, digest string }
		best := map[group]mlflowapi.ModelMetric{}
		var order []group
		path := filepath.Join(mdir, filepath.FromSlash(k))
		f, err := os.Open(path)
		if err != nil {
			return x, m, err
		}
		err = readMetricLines(path, f, true, func(l metricLine) bool {
			g := group{l.DatasetName, l.DatasetDigest}
			p := mlflowapi.ModelMetric{Key: k, Value: mlflowapi.Float(l.Value), Timestamp: l.Time, Step: l.Step,
				DatasetName: l.DatasetName, DatasetDigest: l.DatasetDigest, RunID: l.RunID}
			old, ok := best[g]
			if !ok {
				order = append(order, g)
			}
			if !ok || mlflowlocal.Later(mlflowapi.Metric{Step: p.Step, Timestamp: p.Timestamp, Value: p.Value},
				mlflowapi.Metric{Step: old.Step, Timestamp: old.Timestamp, Value: old.Value}) {
				best[g] = p
			}
			return true
		})
		f.Close()
		if err != nil {
			return x, m, err
		}
		for _, g := range order {
			x.Data.Metrics = append(x.Data.Metrics, best[g])
		}
	}
	s.setNear(x.Info.ArtifactURI, filepath.Join(dir, "artifacts"))
	return x, m, nil
}

// LoggedModelsOf returns the active logged models run runID of experiment
// expID logged, ordered by model id. The experiment's models are indexed
// by logging run once (their meta.yaml only), so that listing the models
// of every run does not read every model again.
func (s *store) LoggedModelsOf(_ context.Context, expID, runID string) ([]mlflowapi.LoggedModel, error) {
	dirs, err := s.modelDirsOf(expID, runID)
	if err != nil {
		return nil, err
	}
	var out []mlflowapi.LoggedModel
	for _, dir := range dirs {
		x, _, err := s.readLoggedModel(dir)
		if err != nil {
			return nil, damaged(err)
		}
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b mlflowapi.LoggedModel) int { return strings.Compare(a.Info.ModelID, b.Info.ModelID) })
	return out, nil
}

// modelDirsOf returns the folders of the active logged models of
// experiment expID that run runID logged, indexing the experiment's models
// on first use.
func (s *store) modelDirsOf(expID, runID string) ([]string, error) {
	s.mu.Lock()
	index, ok := s.models[expID]
	s.mu.Unlock()
	if ok {
		return index[runID], nil
	}
	expDir, err := s.experimentDir(expID)
	if mlflowapi.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := subdirs(filepath.Join(expDir, "models"))
	if err != nil {
		return nil, damaged(err)
	}
	index = map[string][]string{}
	for _, n := range names {
		dir := filepath.Join(expDir, "models", n)
		var m modelMeta
		err := readMeta(filepath.Join(dir, metaFile), &m)
		if errors.Is(err, errNoMeta) {
			continue
		}
		if err != nil {
			return nil, damaged(err)
		}
		if m.LifecycleStage == mlflowapi.StageDeleted || string(m.ExperimentID) != expID {
			continue // as MLflow's search leaves them out
		}
		index[deref(m.SourceRunID)] = append(index[deref(m.SourceRunID)], dir)
	}
	s.mu.Lock()
	s.models[expID] = index
	s.mu.Unlock()
	return index[runID], nil
}

// GetLoggedModel returns logged model id from whichever experiment holds
// it; a deleted one only when allowDeleted.
func (s *store) GetLoggedModel(_ context.Context, id string, allowDeleted bool) (mlflowapi.LoggedModel, error) {
	if !mlflowlocal.ValidRel(id) || strings.Contains(id, "/") {
		return mlflowapi.LoggedModel{}, notFound("logged model %q not found", id)
	}
	dirs, err := s.experimentDirs(mlflowapi.ViewAll)
	if err != nil {
		return mlflowapi.LoggedModel{}, damaged(err)
	}
	for _, d := range dirs {
		x, m, err := s.readLoggedModel(filepath.Join(d, "models", id))
		if errors.Is(err, errNoMeta) {
			continue
		}
		if err != nil {
			return x, damaged(err)
		}
		if m.LifecycleStage == mlflowapi.StageDeleted && !allowDeleted {
			break
		}
		return x, nil
	}
	return mlflowapi.LoggedModel{}, notFound("logged model %s not found", id)
}

// The model registry of a file store lives in models/ at the store's root:
// models/<name>/meta.yaml, tags/, aliases/<alias> (body: the version),
// version-<n>/meta.yaml and version-<n>/tags/.

// SearchRegisteredModels yields the registered models ordered by name; a
// damaged one is an error naming its file, after every readable model.
func (s *store) SearchRegisteredModels(ctx context.Context) iter.Seq2[mlflowapi.RegisteredModel, error] {
	return func(yield func(mlflowapi.RegisteredModel, error) bool) {
		names, err := subdirs(filepath.Join(s.root, registryDir))
		if err != nil {
			yield(mlflowapi.RegisteredModel{}, damaged(err))
			return
		}
		var all []mlflowapi.RegisteredModel
		var damage error // yielded after every readable model
		for _, n := range names {
			m, err := s.readRegisteredModel(filepath.Join(s.root, registryDir, n))
			if errors.Is(err, errNoMeta) {
				continue
			}
			if err != nil {
				damage = cmp.Or(damage, damaged(err))
				continue
			}
			all = append(all, m)
		}
		slices.SortFunc(all, func(a, b mlflowapi.RegisteredModel) int { return strings.Compare(a.Name, b.Name) })
		for _, m := range all {
			if !yield(m, nil) {
				return
			}
		}
		if damage != nil {
			yield(mlflowapi.RegisteredModel{}, damage)
		}
	}
}

func (s *store) readRegisteredModel(dir string) (mlflowapi.RegisteredModel, error) {
	var m registeredModelMeta
	if err := readMeta(filepath.Join(dir, metaFile), &m); err != nil {
		return mlflowapi.RegisteredModel{}, err
	}
	x := mlflowapi.RegisteredModel{Name: m.Name, CreationTimestamp: deref(m.Creation), LastUpdatedTimestamp: deref(m.LastUpdated),
		Description: deref(m.Description)}
	tags, err := readValues(filepath.Join(dir, "tags"))
	if err != nil {
		return x, err
	}
	for _, kv := range tags {
		x.Tags = append(x.Tags, mlflowapi.Tag{Key: kv[0], Value: kv[1]})
	}
	aliases, err := readValues(filepath.Join(dir, "aliases"))
	if err != nil {
		return x, err
	}
	for _, kv := range aliases {
		x.Aliases = append(x.Aliases, mlflowapi.ModelAlias{Alias: kv[0], Version: strings.TrimSpace(kv[1])})
	}
	return x, nil
}

// GetRegisteredModel returns the registered model name with its aliases.
func (s *store) GetRegisteredModel(_ context.Context, name string) (mlflowapi.RegisteredModel, error) {
	if !mlflowlocal.ValidRel(name) || strings.Contains(name, "/") {
		return mlflowapi.RegisteredModel{}, notFound("registered model %q not found", name)
	}
	m, err := s.readRegisteredModel(filepath.Join(s.root, registryDir, name))
	if errors.Is(err, errNoMeta) {
		return m, notFound("registered model %q not found", name)
	}
	return m, damaged(err)
}

// stageDeletedInternal marks a version MLflow's file registry deleted.
const stageDeletedInternal = "Deleted_Internal"

// SearchModelVersions yields the versions of model name ordered by number,
// leaving out deleted ones.
func (s *store) SearchModelVersions(_ context.Context, name string) iter.Seq2[mlflowapi.ModelVersion, error] {
	return func(yield func(mlflowapi.ModelVersion, error) bool) {
		if !mlflowlocal.ValidRel(name) || strings.Contains(name, "/") {
			return
		}
		dir := filepath.Join(s.root, registryDir, name)
		names, err := subdirs(dir)
		if err != nil {
			yield(mlflowapi.ModelVersion{}, damaged(err))
			return
		}
		type numbered struct {
			n int64
			v mlflowapi.ModelVersion
		}
		var all []numbered
		for _, n := range names {
			num, ok := strings.CutPrefix(n, "version-")
			if !ok {
				continue
			}
			var m modelVersionMeta
			p := filepath.Join(dir, n, metaFile)
			err := readMeta(p, &m)
			if errors.Is(err, errNoMeta) {
				continue
			}
			if err != nil {
				yield(mlflowapi.ModelVersion{}, damaged(err))
				return
			}
			if deref(m.CurrentStage) == stageDeletedInternal {
				continue
			}
			v := mlflowapi.ModelVersion{Name: m.Name, Version: cmp.Or(string(m.Version), num), CreationTimestamp: deref(m.Creation),
				LastUpdatedTimestamp: deref(m.LastUpdated), CurrentStage: deref(m.CurrentStage), Description: deref(m.Description),
				Source: deref(m.Source), RunID: deref(m.RunID), Status: deref(m.Status), ModelID: deref(m.ModelID)}
			tags, err := readValues(filepath.Join(dir, n, "tags"))
			if err != nil {
				yield(v, damaged(err))
				return
			}
			for _, kv := range tags {
				v.Tags = append(v.Tags, mlflowapi.Tag{Key: kv[0], Value: kv[1]})
			}
			k, err := strconv.ParseInt(v.Version, 10, 64)
			if err != nil {
				yield(v, damaged(fmt.Errorf("%s: version %q: not a number", p, v.Version)))
				return
			}
			all = append(all, numbered{k, v})
		}
		slices.SortFunc(all, func(a, b numbered) int { return cmp.Compare(a.n, b.n) })
		for _, x := range all {
			if !yield(x.v, nil) {
				return
			}
		}
	}
}
