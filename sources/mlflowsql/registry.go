package mlflowsql

import (
	"context"
	"database/sql"
	"iter"
	"strconv"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.RegistryReader = (*Source)(nil)

// Revisions that added registry tables.
const (
	revModelTags    = "728d730b5ebd" // registered_model_tags
	revVersionTags  = "27a6a02d2cf1" // model_version_tags
	revModelAliases = "3500859a5d39" // registered_model_aliases
)

// stageDeletedInternal marks a deleted model version: MLflow's server
// never shows it.
const stageDeletedInternal = "Deleted_Internal"

// RegisteredModels yields the store's model registry ordered by model name,
// mapped as the REST source maps what the server returns: each model with
// its tags, aliases and versions (deleted versions left out); a version's
// Run is its run's origin (runferry.origin when runferry wrote the run,
// else mlflow:INSTANCE/RUN_ID) and RunPath its source inside that run's
// files. Keys under "runferry." are bookkeeping, not tags.
func (s *Source) RegisteredModels(ctx context.Context) iter.Seq2[schema.RegisteredModel, error] {
	return func(yield func(schema.RegisteredModel, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.RegisteredModel{}, err)
			return
		}
		if !s.has(revRegistry) {
			return
		}
		models, err := s.registeredModels(ctx)
		if err != nil {
			yield(schema.RegisteredModel{}, err)
			return
		}
		runs := map[string]runOrigin{}
		for _, m := range models {
			x, err := s.registeredModel(ctx, m, runs)
			if err != nil {
				yield(schema.RegisteredModel{}, err)
				return
			}
			if !yield(x, nil) {
				return
			}
		}
	}
}

type registered struct {
	name, description string
	created, updated  int64
}

func (s *Source) registeredModels(ctx context.Context) ([]registered, error) {
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT {name}, creation_time, last_updated_time, description FROM registered_models ORDER BY {name}"))
	if err != nil {
		return nil, dbErr(ctx, "registered models", err)
	}
	defer rows.Close()
	var out []registered
	for rows.Next() {
		var (
			m                registered
			created, updated sql.NullInt64
			desc             sql.NullString
		)
		if err := rows.Scan(&m.name, &created, &updated, &desc); err != nil {
			return nil, dbErr(ctx, "registered models", err)
		}
		m.created, m.updated, m.description = created.Int64, updated.Int64, desc.String
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "registered models", err)
	}
	return out, nil
}

// runOrigin is what a version needs of its run.
type runOrigin struct {
	origin      schema.Ref
	artifactURI string
}

func (s *Source) registeredModel(ctx context.Context, m registered, runs map[string]runOrigin) (schema.RegisteredModel, error) {
	what := "registered model " + strconv.Quote(m.name)
	x := schema.RegisteredModel{Origin: s.ref("model/" + m.name), Name: m.name, Description: m.description,
		CreatedAt: mlflowconv.MsTime(m.created), UpdatedAt: mlflowconv.MsTime(m.updated)}
	var tags []mlflowapi.Tag
	if s.has(revModelTags) {
		kv, err := s.keyValues(ctx, "SELECT {key}, {value} FROM registered_model_tags WHERE {name} = ?", what, m.name)
		if err != nil {
			return x, err
		}
		for _, t := range kv {
			tags = append(tags, mlflowapi.Tag(t))
		}
	}
	user, own := mlflowconv.RegistryTags(tags, &x.CreatedAt)
	x.Tags = user
	if ref, ok := schema.ParseRef(own[mlflowconv.TagOrigin]); ok {
		x.Origin = ref
	}
	if s.has(revModelAliases) {
		kv, err := s.keyValues(ctx, "SELECT alias, {version} FROM registered_model_aliases WHERE {name} = ?", what, m.name)
		if err != nil {
			return x, err
		}
		for _, a := range kv {
			if n, err := strconv.ParseInt(a.Value, 10, 64); err == nil {
				x.Aliases = append(x.Aliases, schema.ModelAlias{Alias: a.Key, Version: n})
			}
		}
	}
	versions, err := s.modelVersions(ctx, m.name, runs)
	if err != nil {
		return x, err
	}
	numbers := map[int64]int64{}
	for _, v := range versions {
		numbers[v.stored] = v.Version
		x.Versions = append(x.Versions, v.ModelVersion)
	}
	for i, a := range x.Aliases {
		if n, ok := numbers[a.Version]; ok {
			x.Aliases[i].Version = n
		}
	}
	x.Canonicalize()
	return x, nil
}

type version struct {
	schema.ModelVersion
	stored int64 // the number in the store
}

func (s *Source) modelVersions(ctx context.Context, name string, runs map[string]runOrigin) ([]version, error) {
	what := "versions of registered model " + strconv.Quote(name)
	rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT {version}, creation_time, last_updated_time, description, current_stage, {source}, run_id, {status}
		FROM model_versions WHERE {name} = ? AND (current_stage IS NULL OR current_stage <> ?) ORDER BY {version}`), name, stageDeletedInternal)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	type row struct {
		v     version
		runID string
	}
	var got []row
	for rows.Next() {
		var (
			r                                     row
			created, updated                      sql.NullInt64
			desc, stage, source, runID, statusStr sql.NullString
		)
		if err := rows.Scan(&r.v.stored, &created, &updated, &desc, &stage, &source, &runID, &statusStr); err != nil {
			rows.Close()
			return nil, dbErr(ctx, what, err)
		}
		r.v.Version = r.v.stored
		r.v.Description, r.v.Stage, r.v.Source, r.v.Status = desc.String, stage.String, source.String, statusStr.String
		r.v.CreatedAt, r.v.UpdatedAt = mlflowconv.MsTime(created.Int64), mlflowconv.MsTime(updated.Int64)
		r.runID = runID.String
		got = append(got, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	out := make([]version, 0, len(got))
	for _, r := range got {
		v := r.v
		var tags []mlflowapi.Tag
		if s.has(revVersionTags) {
			kv, err := s.keyValues(ctx, "SELECT {key}, {value} FROM model_version_tags WHERE {name} = ? AND {version} = ?", what, name, v.stored)
			if err != nil {
				return nil, err
			}
			for _, t := range kv {
				tags = append(tags, mlflowapi.Tag(t))
			}
		}
		user, own := mlflowconv.RegistryTags(tags, &v.CreatedAt)
		v.Tags = user
		if n, err := strconv.ParseInt(own[mlflowconv.TagModelVersion], 10, 64); err == nil {
			v.Version = n // written by runferry: the number the version had in its source
		}
		if ref, ok := schema.ParseRef(own[mlflowconv.TagSourceRun]); ok {
			v.Run = ref
		}
		if r.runID != "" {
			ro, err := s.runOrigin(ctx, r.runID, runs)
			if err != nil {
				return nil, err
			}
			v.Run = ro.origin
			v.RunPath = mlflowconv.RunPath(v.Source, r.runID, ro.artifactURI)
		}
		out = append(out, v)
	}
	return out, nil
}

// runOrigin returns the origin and artifact root of run id (the
// runferry.origin tag when it has one), remembered in runs; a run that is
// gone has only its id.
func (s *Source) runOrigin(ctx context.Context, id string, runs map[string]runOrigin) (runOrigin, error) {
	if r, ok := runs[id]; ok {
		return r, nil
	}
	r := runOrigin{origin: s.ref(id)}
	var uri sql.NullString
	err := s.st.DB.QueryRowContext(ctx, s.q("SELECT artifact_uri FROM runs WHERE run_uuid = ?"), id).Scan(&uri)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return r, dbErr(ctx, "run "+id, err)
	default:
		r.artifactURI = uri.String
		var o string
		err := s.st.DB.QueryRowContext(ctx, s.q("SELECT {value} FROM tags WHERE run_uuid = ? AND {key} = ?"), id, mlflowconv.TagOrigin).Scan(&o)
		if err != nil && err != sql.ErrNoRows {
			return r, dbErr(ctx, "run "+id, err)
		}
		if ref, ok := schema.ParseRef(o); ok {
			r.origin = ref
		}
	}
	runs[id] = r
	return r, nil
}
