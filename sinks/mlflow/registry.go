package mlflow

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.RegistryWriter = (*Sink)(nil)

// Coverage kinds of the model registry.
const (
	CoverageVersionNoRun      = "model versions whose source run is not in the destination (source URI kept, run origin in tag runferry.source_run)"
	CoverageVersionRenumbered = "model versions numbered differently (the source's number in tag runferry.version)"
	CoverageRegistryUpdated   = "registered model and version update times not kept (the server sets its own; creation times are in tag runferry.created_at)"
)

// PutRegisteredModel writes m into the server's model registry under its
// own name (see sinks.RegistryWriter). The model carries runferry.origin: a
// model of the same name from another origin, or not written by runferry,
// is an error, never merged. Each version carries runferry.version (the
// source's number), by which a re-run finds it, and runferry.source_run;
// its run_id is the run this sink wrote from the version's run origin and
// its source URI points at that run's files when the source's did. Versions
// are created in the source's order, so that an empty model gets the
// source's numbers. Creation times are kept in runferry.created_at; the
// update times the source knows are counted as not kept.
func (s *Sink) PutRegisteredModel(ctx context.Context, m schema.RegisteredModel, runs map[schema.Ref]string) (map[string]int64, error) {
	cov := map[string]int64{}
	if !m.UpdatedAt.IsZero() {
		cov[CoverageRegistryUpdated]++
	}
	for _, v := range m.Versions {
		if !v.UpdatedAt.IsZero() {
			cov[CoverageRegistryUpdated]++
		}
	}
	if err := s.putModel(ctx, m); err != nil {
		return nil, err
	}
	have := map[int64]mlflowapi.ModelVersion{}
	for v, err := range s.api.SearchModelVersions(ctx, m.Name) {
		if err != nil {
			return nil, err
		}
		if n, err := strconv.ParseInt(tagText(v.Tags, mlflowconv.TagModelVersion), 10, 64); err == nil {
			have[n] = v
		}
	}
	for _, v := range m.Versions {
		dv, ok := have[v.Version]
		if !ok {
			var noRun bool
			var err error
			dv, noRun, err = s.createVersion(ctx, m.Name, v, runs)
			if err != nil {
				return nil, fmt.Errorf("registered model %q version %d: %w", m.Name, v.Version, err)
			}
			if noRun {
				cov[CoverageVersionNoRun]++
			}
			have[v.Version] = dv
		} else if dv.RunID == "" && !v.Run.IsZero() {
			cov[CoverageVersionNoRun]++
		}
		if dv.Version != strconv.FormatInt(v.Version, 10) {
			cov[CoverageVersionRenumbered]++
		}
		if err := s.updateVersion(ctx, dv, v); err != nil {
			return nil, fmt.Errorf("registered model %q version %d: %w", m.Name, v.Version, err)
		}
	}
	cur, err := s.api.GetRegisteredModel(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	aliases := map[string]string{}
	for _, a := range cur.Aliases {
		aliases[a.Alias] = a.Version
	}
	for _, a := range m.Aliases {
		dv, ok := have[a.Version]
		if !ok {
			return nil, fault.Permanent(fmt.Errorf("registered model %q: alias %q names version %d, which the model lacks", m.Name, a.Alias, a.Version))
		}
		if aliases[a.Alias] != dv.Version {
			if err := s.api.SetRegisteredModelAlias(ctx, m.Name, a.Alias, dv.Version); err != nil {
				return nil, fmt.Errorf("registered model %q alias %q: %w", m.Name, a.Alias, err)
			}
		}
	}
	return cov, nil
}

func createdTag(t time.Time) string {
	if t.IsZero() {
		return mlflowconv.CreatedAtUnknown
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// putModel creates the model or checks that the one of its name is
// runferry's copy of the same origin, then sets its description and tags.
func (s *Sink) putModel(ctx context.Context, m schema.RegisteredModel) error {
	tags := []mlflowapi.Tag{{Key: mlflowconv.TagOrigin, Value: m.Origin.String()},
		{Key: mlflowconv.TagCreatedAt, Value: createdTag(m.CreatedAt)}}
	for _, t := range m.Tags {
		tags = append(tags, mlflowapi.Tag{Key: t.Key, Value: t.Value})
	}
	cur, err := s.api.GetRegisteredModel(ctx, m.Name)
	if mlflowapi.IsNotFound(err) {
		err = s.api.CreateRegisteredModel(ctx, m.Name, m.Description, tags)
		if err == nil {
			return nil
		}
		if !mlflowapi.IsCode(err, mlflowapi.CodeAlreadyExists) { // else created by a retry or another job
			return fmt.Errorf("creating registered model %q: %w", m.Name, err)
		}
		cur, err = s.api.GetRegisteredModel(ctx, m.Name)
	}
	if err != nil {
		return fmt.Errorf("registered model %q: %w", m.Name, err)
	}
	switch o := tagText(cur.Tags, mlflowconv.TagOrigin); {
	case o == "":
		return fault.Permanent(fmt.Errorf("registered model %q exists in the destination and was not written by runferry: rename or delete it there, it is not merged", m.Name))
	case o != m.Origin.String():
		return fault.Permanent(fmt.Errorf("registered model %q exists in the destination as a copy of %s, not of %s: it is not merged", m.Name, o, m.Origin))
	}
	if cur.Description != m.Description {
		if err := s.api.UpdateRegisteredModel(ctx, m.Name, m.Description); err != nil {
			return fmt.Errorf("registered model %q: %w", m.Name, err)
		}
	}
	for _, t := range tags {
		if v, ok := tagValue(cur.Tags, t.Key); !ok || v != t.Value {
			if err := s.api.SetRegisteredModelTag(ctx, m.Name, t.Key, t.Value); err != nil {
				return fmt.Errorf("registered model %q: %w", m.Name, err)
			}
		}
	}
	return nil
}

// tagText returns the value of tag key, "" when absent.
func tagText(tags []mlflowapi.Tag, key string) string {
	v, _ := tagValue(tags, key)
	return v
}

func tagValue(tags []mlflowapi.Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// createVersion creates the version v of model name, pointing it at the
// run this sink wrote from v.Run; noRun reports a version that has a run
// origin the sink does not hold.
func (s *Sink) createVersion(ctx context.Context, name string, v schema.ModelVersion, runs map[schema.Ref]string) (mlflowapi.ModelVersion, bool, error) {
	in := mlflowapi.ModelVersion{Name: name, Source: v.Source, Description: v.Description,
		Tags: []mlflowapi.Tag{{Key: mlflowconv.TagModelVersion, Value: strconv.FormatInt(v.Version, 10)},
			{Key: mlflowconv.TagCreatedAt, Value: createdTag(v.CreatedAt)}}}
	if !v.Run.IsZero() {
		in.Tags = append(in.Tags, mlflowapi.Tag{Key: mlflowconv.TagSourceRun, Value: v.Run.String()})
	}
	for _, t := range v.Tags {
		in.Tags = append(in.Tags, mlflowapi.Tag{Key: t.Key, Value: t.Value})
	}
	noRun := false
	var model *mlflowapi.LoggedModel // the re-created logged model the version names
	if !v.Run.IsZero() {
		id, uri, err := s.destRun(ctx, v.Run, runs)
		if err != nil {
			return mlflowapi.ModelVersion{}, false, err
		}
		in.RunID = id
		noRun = id == ""
		if id != "" && v.RunPath != "" {
			in.Source = strings.TrimSuffix(uri, "/") + "/" + v.RunPath
		}
		if srcModel, ok := strings.CutPrefix(v.Source, "models:/"); ok && id != "" && !strings.Contains(srcModel, "/") {
			m, err := s.recreatedModel(ctx, id, v.Run, srcModel)
			if err != nil {
				return mlflowapi.ModelVersion{}, false, err
			}
			if m.Info.ModelID != "" {
				in.Source, in.ModelID = "models:/"+m.Info.ModelID, m.Info.ModelID
				model = &m
			}
		}
	}
	out, err := s.api.CreateModelVersion(ctx, in)
	if err != nil || model == nil {
		return out, noRun, err
	}
	// The server rewrites the model's list of its versions when a version
	// names the model; it had the source's list, which is set back.
	had, ok := tagValue(model.Info.Tags, mlflowapi.TagModelVersions)
	if ok {
		err = s.api.SetLoggedModelTags(ctx, model.Info.ModelID, []mlflowapi.Tag{{Key: mlflowapi.TagModelVersions, Value: had}})
	} else {
		err = s.api.DeleteLoggedModelTag(ctx, model.Info.ModelID, mlflowapi.TagModelVersions)
	}
	if err != nil {
		return out, noRun, fmt.Errorf("restoring tag %s of logged model %s: %w", mlflowapi.TagModelVersions, model.Info.ModelID, err)
	}
	return out, noRun, nil
}

// recreatedModel returns the logged model this sink re-created in run
// runID from the logged model srcModel of the run with origin run; its id
// is "" when there is none.
func (s *Sink) recreatedModel(ctx context.Context, runID string, run schema.Ref, srcModel string) (mlflowapi.LoggedModel, error) {
	r, err := s.api.GetRun(ctx, runID)
	if err != nil {
		return mlflowapi.LoggedModel{}, fmt.Errorf("reading run %s: %w", runID, err)
	}
	key := mlflowconv.OriginKey(mlflowconv.ModelOrigin(run.String(), srcModel))
	found, err := s.api.SearchLoggedModels(ctx, r.Info.ExperimentID, fmt.Sprintf("tags.`%s` = '%s'", mlflowconv.TagOriginKey, key))
	if err != nil {
		return mlflowapi.LoggedModel{}, err
	}
	for _, m := range found {
		if m.Info.SourceRunID == runID {
			return m, nil
		}
	}
	return mlflowapi.LoggedModel{}, nil
}

// destRun returns the id and artifact URI of the committed run this sink
// wrote from origin, or "" when it holds none.
func (s *Sink) destRun(ctx context.Context, origin schema.Ref, runs map[schema.Ref]string) (string, string, error) {
	id := runs[origin]
	if id == "" {
		found, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin.String()), false)
		if err != nil {
			return "", "", err
		}
		for _, r := range found {
			if completeRun(r) && r.Info.LifecycleStage == mlflowapi.StageActive {
				id = r.Info.RunID
				break
			}
		}
	}
	if id == "" {
		return "", "", nil
	}
	r, err := s.api.GetRun(ctx, id)
	if mlflowapi.IsNotFound(err) {
		return "", "", nil
	}
	if err != nil {
		return "", "", err
	}
	return id, r.Info.ArtifactURI, nil
}

// updateVersion sets the description, tags and stage of the destination
// version dv to v's.
func (s *Sink) updateVersion(ctx context.Context, dv mlflowapi.ModelVersion, v schema.ModelVersion) error {
	if dv.Description != v.Description {
		if err := s.api.UpdateModelVersion(ctx, dv.Name, dv.Version, v.Description); err != nil {
			return err
		}
	}
	for _, t := range v.Tags {
		if cur, ok := tagValue(dv.Tags, t.Key); !ok || cur != t.Value {
			if err := s.api.SetModelVersionTag(ctx, dv.Name, dv.Version, t.Key, t.Value); err != nil {
				return err
			}
		}
	}
	if v.Stage != "" && dv.CurrentStage != v.Stage {
		return s.api.TransitionModelVersionStage(ctx, dv.Name, dv.Version, v.Stage)
	}
	return nil
}
