package archive

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/runferry/runferry/schema"
)

// RegisteredModelRow is the one row of a registered model's file in
// registered_models/ (since format version 3).
type RegisteredModelRow struct {
	Model        string     `parquet:"model,dict"` // origin "system:id"
	OriginSystem string     `parquet:"origin_system,dict"`
	OriginID     string     `parquet:"origin_id"`
	Name         string     `parquet:"name"`
	Description  string     `parquet:"description"`
	Tags         string     `parquet:"tags"`    // JSON array of {"key","value"}, sorted by key
	Aliases      string     `parquet:"aliases"` // JSON array of {"alias","version"}, sorted by alias
	CreatedAt    *time.Time `parquet:"created_at,optional,timestamp(millisecond)"`
	UpdatedAt    *time.Time `parquet:"updated_at,optional,timestamp(millisecond)"`
	Snapshot     int64      `parquet:"snapshot"`
}

// ModelVersionRow is one row of model_versions/ (since format version 3):
// a version of a registered model, rows sorted by version.
type ModelVersionRow struct {
	Model       string `parquet:"model,dict"` // the registered model's origin
	Name        string `parquet:"name,dict"`  // the registered model's name
	Version     int64  `parquet:"version"`
	Description string `parquet:"description"`
	Stage       string `parquet:"stage,dict"`
	Status      string `parquet:"status,dict"`
	Tags        string `parquet:"tags"` // JSON array of {"key","value"}, sorted by key
	// Source is the URI of the model files as the source gave it.
	Source string `parquet:"source"`
	// Run is the origin of the run the version came from ("" for none):
	// the run column of runs/ when the archive holds that run.
	Run string `parquet:"run,dict"`
	// RunPath is where the model files lie inside that run's files, ""
	// when Source points elsewhere.
	RunPath   string     `parquet:"run_path"`
	CreatedAt *time.Time `parquet:"created_at,optional,timestamp(millisecond)"`
	UpdatedAt *time.Time `parquet:"updated_at,optional,timestamp(millisecond)"`
}

type aliasJSON struct {
	Alias   string `json:"alias"`
	Version int64  `json:"version"`
}

func tagsJSON(tags []schema.Tag) string {
	out := make([]kv, len(tags))
	for i, t := range tags {
		out[i] = kv{t.Key, t.Value}
	}
	return jsonText(out)
}

func parseTags(s string) ([]schema.Tag, error) {
	var kvs []kv
	if err := json.Unmarshal([]byte(s), &kvs); err != nil {
		return nil, err
	}
	var out []schema.Tag
	for _, t := range kvs {
		out = append(out, schema.Tag{Key: t.Key, Value: t.Value})
	}
	return out, nil
}

// ModelToRows converts a canonicalised registered model for
// registered_models/ and model_versions/.
func ModelToRows(m schema.RegisteredModel, snapshot int64) (RegisteredModelRow, []ModelVersionRow) {
	origin := m.Origin.String()
	aliases := make([]aliasJSON, len(m.Aliases))
	for i, a := range m.Aliases {
		aliases[i] = aliasJSON{a.Alias, a.Version}
	}
	b, _ := json.Marshal(aliases)
	row := RegisteredModelRow{Model: origin, OriginSystem: m.Origin.System, OriginID: m.Origin.ID, Name: m.Name,
		Description: m.Description, Tags: tagsJSON(m.Tags), Aliases: string(b),
		CreatedAt: optTime(m.CreatedAt), UpdatedAt: optTime(m.UpdatedAt), Snapshot: snapshot}
	var vs []ModelVersionRow
	for _, v := range m.Versions {
		vs = append(vs, ModelVersionRow{Model: origin, Name: m.Name, Version: v.Version, Description: v.Description,
			Stage: v.Stage, Status: v.Status, Tags: tagsJSON(v.Tags), Source: v.Source, Run: v.Run.String(),
			RunPath: v.RunPath, CreatedAt: optTime(v.CreatedAt), UpdatedAt: optTime(v.UpdatedAt)})
	}
	return row, vs
}

// decodeModel converts a model's rows back.
func decodeModel(row RegisteredModelRow, versions []ModelVersionRow) (schema.RegisteredModel, error) {
	wrap := func(err error) error { return fmt.Errorf("registered model %s: %w", row.Model, err) }
	m := schema.RegisteredModel{Origin: schema.Ref{System: row.OriginSystem, ID: row.OriginID}, Name: row.Name,
		Description: row.Description, CreatedAt: fromOptTime(row.CreatedAt), UpdatedAt: fromOptTime(row.UpdatedAt)}
	var err error
	if m.Tags, err = parseTags(row.Tags); err != nil {
		return m, wrap(fmt.Errorf("tags: %w", err))
	}
	var aliases []aliasJSON
	if err := json.Unmarshal([]byte(row.Aliases), &aliases); err != nil {
		return m, wrap(fmt.Errorf("aliases: %w", err))
	}
	for _, a := range aliases {
		m.Aliases = append(m.Aliases, schema.ModelAlias{Alias: a.Alias, Version: a.Version})
	}
	for _, vr := range versions {
		if vr.Model != row.Model {
			return m, wrap(fmt.Errorf("%w: a row of model_versions belongs to model %q", ErrDamaged, vr.Model))
		}
		v := schema.ModelVersion{Version: vr.Version, Description: vr.Description, Stage: vr.Stage, Status: vr.Status,
			Source: vr.Source, RunPath: vr.RunPath, CreatedAt: fromOptTime(vr.CreatedAt), UpdatedAt: fromOptTime(vr.UpdatedAt)}
		if v.Tags, err = parseTags(vr.Tags); err != nil {
			return m, wrap(fmt.Errorf("version %d: tags: %w", vr.Version, err))
		}
		if v.Run, err = parseRef(vr.Run); err != nil {
			return m, wrap(fmt.Errorf("version %d: %w", vr.Version, err))
		}
		m.Versions = append(m.Versions, v)
	}
	m.Canonicalize()
	return m, nil
}

// PutModel stores the registered model m (canonicalised, with an origin
// and a name) unless the archive holds it unchanged with its files there
// at their recorded sizes; it reports whether it wrote. The model's row
// and its versions' rows are replaced together: one journal line commits
// both files, so a crash leaves the model as it was or as written.
func (w *Writer) PutModel(m schema.RegisteredModel) (bool, error) {
	origin := m.Origin.String()
	row, versions := ModelToRows(m, 0)
	b, _ := json.Marshal(struct {
		M RegisteredModelRow
		V []ModelVersionRow
	}{row, versions})
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	w.modelMu.Lock()
	defer w.modelMu.Unlock()
	w.mu.Lock()
	i, ok := w.m.modelIndex(origin)
	var files []FileEntry
	same := ok && w.m.Models[i].Digest == digest
	if same {
		files = w.m.Models[i].Files
	}
	w.mu.Unlock()
	if same && filesWhole(w.st, files) {
		return false, nil
	}
	row.Snapshot = w.snapshot
	written, err := writeTable(w.st, TableRegisteredModels, origin, w.snapshot, []RegisteredModelRow{row})
	if err != nil {
		return false, err
	}
	vf, err := writeTable(w.st, TableModelVersions, origin, w.snapshot, versions)
	if err != nil {
		return false, err
	}
	written = append(written, vf...)
	return true, w.commit(journalRecord{Model: &ModelEntry{Origin: origin, Name: m.Name, Snapshot: w.snapshot, Digest: digest, Files: written}})
}

// RegisteredModels returns the archived model registry ordered by name
// (then origin): none for an archive written before format version 3.
func (r *Reader) RegisteredModels() ([]schema.RegisteredModel, error) {
	var out []schema.RegisteredModel
	for _, e := range r.m.Models {
		var rows []RegisteredModelRow
		var versions []ModelVersionRow
		for _, f := range e.Files {
			var err error
			switch f.Table {
			case TableRegisteredModels:
				err = readTable(r.st, f, 16, func(page []RegisteredModelRow) error { rows = append(rows, page...); return nil })
			case TableModelVersions:
				err = readTable(r.st, f, 1024, func(page []ModelVersionRow) error { versions = append(versions, page...); return nil })
			}
			if err != nil {
				return nil, err
			}
		}
		if len(rows) != 1 || rows[0].Model != e.Origin {
			return nil, fmt.Errorf("registered model %s: %w: want its one row in %s/, found %d", e.Origin, ErrDamaged, TableRegisteredModels, len(rows))
		}
		m, err := decodeModel(rows[0], versions)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b schema.RegisteredModel) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Origin.String(), b.Origin.String()))
	})
	return out, nil
}
