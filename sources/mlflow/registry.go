package mlflow

import (
	"context"
	"iter"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.RegistryReader = (*Source)(nil)

// RegisteredModels yields the server's model registry ordered by model
// name: each model with its tags, aliases and versions. A version's Run is
// the origin its run_id has as a run of this source (the runferry.origin
// of a run runferry wrote, else mlflow:RUN_ID); a version without run_id
// keeps the origin runferry recorded when it wrote the version. RunPath is
// set when the version's source lies under that run's artifacts (or is a
// runs:/ URI). A version runferry wrote shows the number it had in its
// source (runferry.version; aliases follow), and its creation time there.
// Keys under "runferry." are bookkeeping, not tags. With a RegistryPrefix,
// only models whose name starts with it are yielded.
func (s *Source) RegisteredModels(ctx context.Context) iter.Seq2[schema.RegisteredModel, error] {
	return func(yield func(schema.RegisteredModel, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.RegisteredModel{}, err)
			return
		}
		runs := map[string]runOrigin{}
		for listed, err := range s.api.SearchRegisteredModels(ctx) {
			if mlflowapi.IsNotFound(err) {
				return // a server without the registry's endpoints holds none
			}
			if err != nil {
				yield(schema.RegisteredModel{}, err)
				return
			}
			if !strings.HasPrefix(listed.Name, s.cfg.RegistryPrefix) {
				continue
			}
			m, err := s.api.GetRegisteredModel(ctx, listed.Name) // search answers lack aliases
			if err != nil {
				yield(schema.RegisteredModel{}, err)
				return
			}
			x := s.registeredModel(m)
			numbers := map[int64]int64{} // the server's version number -> the one shown
			for v, err := range s.api.SearchModelVersions(ctx, m.Name) {
				if err != nil {
					yield(schema.RegisteredModel{}, err)
					return
				}
				mv, err := s.modelVersion(ctx, v, runs)
				if err != nil {
					yield(schema.RegisteredModel{}, err)
					return
				}
				n, _ := strconv.ParseInt(v.Version, 10, 64)
				numbers[n] = mv.Version
				x.Versions = append(x.Versions, mv)
			}
			for i, a := range x.Aliases {
				if n, ok := numbers[a.Version]; ok {
					x.Aliases[i].Version = n
				}
			}
			x.Canonicalize()
			if !yield(x, nil) {
				return
			}
		}
	}
}

// runOrigin is what a version needs of its run.
type runOrigin struct {
	origin      schema.Ref
	artifactURI string
}

func (s *Source) registeredModel(m mlflowapi.RegisteredModel) schema.RegisteredModel {
	x := schema.RegisteredModel{Origin: s.ref("model/" + m.Name), Name: m.Name,
		Description: m.Description, CreatedAt: mlflowconv.MsTime(m.CreationTimestamp), UpdatedAt: mlflowconv.MsTime(m.LastUpdatedTimestamp)}
	user, own := mlflowconv.RegistryTags(m.Tags, &x.CreatedAt)
	x.Tags = user
	if ref, ok := schema.ParseRef(own[mlflowconv.TagOrigin]); ok {
		x.Origin = ref
	}
	for _, a := range m.Aliases {
		n, err := strconv.ParseInt(a.Version, 10, 64)
		if err == nil {
			x.Aliases = append(x.Aliases, schema.ModelAlias{Alias: a.Alias, Version: n})
		}
	}
	return x
}

func (s *Source) modelVersion(ctx context.Context, v mlflowapi.ModelVersion, runs map[string]runOrigin) (schema.ModelVersion, error) {
	n, err := strconv.ParseInt(v.Version, 10, 64)
	if err != nil {
		return schema.ModelVersion{}, err
	}
	x := schema.ModelVersion{Version: n, Description: v.Description, Stage: v.CurrentStage, Status: v.Status,
		Source: v.Source, CreatedAt: mlflowconv.MsTime(v.CreationTimestamp), UpdatedAt: mlflowconv.MsTime(v.LastUpdatedTimestamp)}
	user, own := mlflowconv.RegistryTags(v.Tags, &x.CreatedAt)
	x.Tags = user
	if n, err := strconv.ParseInt(own[mlflowconv.TagModelVersion], 10, 64); err == nil {
		x.Version = n // written by runferry: the number the version had in its source
	}
	if ref, ok := schema.ParseRef(own[mlflowconv.TagSourceRun]); ok {
		x.Run = ref
	}
	if id, ok := strings.CutPrefix(v.Source, "models:/"); ok && own[mlflowconv.TagModelVersion] != "" && !strings.Contains(id, "/") {
		// runferry pointed the version at the logged model it re-created:
		// shown as the source's model it stands for (also when that copy
		// was deleted since, its run written again: MLflow cannot change a
		// version's source, like its run).
		m, err := s.api.GetLoggedModel(ctx, id, true)
		if err != nil && !mlflowapi.IsNotFound(err) {
			return schema.ModelVersion{}, err
		}
		if src, ok := mlflowconv.SourceModel(m, m.Info.SourceRunID); ok {
			x.Source = "models:/" + src.Info.ModelID
		}
	}
	if v.RunID == "" {
		return x, nil
	}
	r, ok := runs[v.RunID]
	if !ok {
		r.origin = s.ref(v.RunID)
		run, err := s.api.GetRun(ctx, v.RunID)
		switch {
		case mlflowapi.IsNotFound(err): // the run was purged: its id is all there is
		case err != nil:
			return schema.ModelVersion{}, err
		default:
			r.artifactURI = run.Info.ArtifactURI
			if o, ok := run.Tag(mlflowconv.TagOrigin); ok {
				if ref, ok := schema.ParseRef(o); ok {
					r.origin = ref
				}
			}
		}
		runs[v.RunID] = r
	}
	x.Run = r.origin
	x.RunPath = mlflowconv.RunPath(v.Source, v.RunID, r.artifactURI)
	return x, nil
}
