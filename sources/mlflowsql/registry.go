package mlflowsql

import (
	"context"
	"database/sql"
	"iter"
	"strconv"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// Revisions that added registry tables.
const (
	revModelTags    = "728d730b5ebd" // registered_model_tags
	revVersionTags  = "27a6a02d2cf1" // model_version_tags
	revModelAliases = "3500859a5d39" // registered_model_aliases
)

// stageDeletedInternal marks a deleted model version: MLflow's server
// never shows it.
const stageDeletedInternal = "Deleted_Internal"

// SearchRegisteredModels yields the registered models ordered by name,
// with their tags and aliases; none before the registry's tables.
func (s *store) SearchRegisteredModels(ctx context.Context) iter.Seq2[mlflowapi.RegisteredModel, error] {
	return func(yield func(mlflowapi.RegisteredModel, error) bool) {
		if !s.has(revRegistry) {
			return
		}
		models, err := s.registeredModels(ctx, "")
		if err != nil {
			yield(mlflowapi.RegisteredModel{}, err)
			return
		}
		for _, m := range models {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// GetRegisteredModel returns registered model name with its tags and
// aliases.
func (s *store) GetRegisteredModel(ctx context.Context, name string) (mlflowapi.RegisteredModel, error) {
	if s.has(revRegistry) {
		models, err := s.registeredModels(ctx, name)
		if err != nil {
			return mlflowapi.RegisteredModel{}, err
		}
		if len(models) > 0 {
			return models[0], nil
		}
	}
	return mlflowapi.RegisteredModel{}, notFound("registered model %q not found", name)
}

// registeredModels reads the registered models (only the one named name
// unless it is ""), ordered by name, with their tags and aliases.
func (s *store) registeredModels(ctx context.Context, name string) ([]mlflowapi.RegisteredModel, error) {
	query, args := "SELECT {name}, creation_time, last_updated_time, description FROM registered_models", []any{}
	if name != "" {
		query, args = query+" WHERE {name} = ?", append(args, name)
	}
	rows, err := s.st.DB.QueryContext(ctx, s.q(query+" ORDER BY {name}"), args...)
	if err != nil {
		return nil, dbErr(ctx, "registered models", err)
	}
	var out []mlflowapi.RegisteredModel
	for rows.Next() {
		var (
			m                mlflowapi.RegisteredModel
			created, updated sql.NullInt64
			desc             sql.NullString
		)
		if err := rows.Scan(&m.Name, &created, &updated, &desc); err != nil {
			rows.Close()
			return nil, dbErr(ctx, "registered models", err)
		}
		m.CreationTimestamp, m.LastUpdatedTimestamp, m.Description = created.Int64, updated.Int64, desc.String
		out = append(out, m)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, dbErr(ctx, "registered models", err)
	}
	for i := range out {
		m := &out[i]
		what := "registered model " + strconv.Quote(m.Name)
		if s.has(revModelTags) {
			kv, err := s.keyValues(ctx, "SELECT {key}, {value} FROM registered_model_tags WHERE {name} = ?", what, m.Name)
			if err != nil {
				return nil, err
			}
			for _, t := range kv {
				m.Tags = append(m.Tags, mlflowapi.Tag(t))
			}
		}
		if s.has(revModelAliases) {
			kv, err := s.keyValues(ctx, "SELECT alias, {version} FROM registered_model_aliases WHERE {name} = ?", what, m.Name)
			if err != nil {
				return nil, err
			}
			for _, a := range kv {
				m.Aliases = append(m.Aliases, mlflowapi.ModelAlias{Alias: a.Key, Version: a.Value})
			}
		}
	}
	return out, nil
}

// SearchModelVersions yields the versions of registered model name ordered
// by number, with their tags; deleted versions (stage Deleted_Internal)
// are left out, as the server leaves them out.
func (s *store) SearchModelVersions(ctx context.Context, name string) iter.Seq2[mlflowapi.ModelVersion, error] {
	return func(yield func(mlflowapi.ModelVersion, error) bool) {
		if !s.has(revRegistry) {
			return
		}
		what := "versions of registered model " + strconv.Quote(name)
		rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT {version}, creation_time, last_updated_time, description, current_stage, {source}, run_id, {status}
		FROM model_versions WHERE {name} = ? AND (current_stage IS NULL OR current_stage <> ?) ORDER BY {version}`), name, stageDeletedInternal)
		if err != nil {
			yield(mlflowapi.ModelVersion{}, dbErr(ctx, what, err))
			return
		}
		var got []mlflowapi.ModelVersion
		for rows.Next() {
			var (
				n                                  int64
				created, updated                   sql.NullInt64
				desc, stage, source, runID, status sql.NullString
			)
			if err := rows.Scan(&n, &created, &updated, &desc, &stage, &source, &runID, &status); err != nil {
				rows.Close()
				yield(mlflowapi.ModelVersion{}, dbErr(ctx, what, err))
				return
			}
			got = append(got, mlflowapi.ModelVersion{Name: name, Version: strconv.FormatInt(n, 10), CreationTimestamp: created.Int64,
				LastUpdatedTimestamp: updated.Int64, CurrentStage: stage.String, Description: desc.String, Source: source.String,
				RunID: runID.String, Status: status.String})
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			yield(mlflowapi.ModelVersion{}, dbErr(ctx, what, err))
			return
		}
		for _, v := range got {
			if s.has(revVersionTags) {
				n, _ := strconv.ParseInt(v.Version, 10, 64)
				kv, err := s.keyValues(ctx, "SELECT {key}, {value} FROM model_version_tags WHERE {name} = ? AND {version} = ?", what, name, n)
				if err != nil {
					yield(mlflowapi.ModelVersion{}, err)
					return
				}
				for _, t := range kv {
					v.Tags = append(v.Tags, mlflowapi.Tag(t))
				}
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}
