package archive

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/runferry/runferry/schema"
)

// ArtifactVersionRow is one row of artifact_versions/: an artifact version
// (W&B Artifacts) the run logged or used. The rows index the manifests the
// run carries as files (schema.IsManifestPath, schema.UsedArtifactsFile):
// those files stay the record, the tables make them queryable, and a run
// whose files hold no manifest has no rows.
type ArtifactVersionRow struct {
	Run         string  `parquet:"run,dict"`
	Role        string  `parquet:"role,dict"` // logged or used
	Name        string  `parquet:"name,dict"`
	Type        string  `parquet:"type,dict"`
	Version     string  `parquet:"version"` // "" when the source did not know it
	Digest      string  `parquet:"digest"`
	Aliases     string  `parquet:"aliases"` // JSON array of strings
	Tags        string  `parquet:"tags"`    // JSON array of strings
	Description string  `parquet:"description"`
	Metadata    *string `parquet:"metadata,optional"` // JSON text
	ID          string  `parquet:"id"`
	Manifest    string  `parquet:"manifest"` // the run file holding the manifest
}

// ArtifactEntryRow is one row of artifact_entries/: one entry of a logged
// version's manifest, with the run file carrying its content.
type ArtifactEntryRow struct {
	Run     string `parquet:"run,dict"`
	Name    string `parquet:"name,dict"`
	Version string `parquet:"version"`
	Digest  string `parquet:"digest"` // the version's
	Path    string `parquet:"path"`
	Size    int64  `parquet:"size"`
	// EntryDigest is the entry's digest as the source records it (W&B:
	// base64 MD5).
	EntryDigest string `parquet:"entry_digest"`
	Ref         string `parquet:"ref"`  // external reference, "" for none
	File        string `parquet:"file"` // the run file carrying the content; "" for a reference
}

// manifestRows turns a run's manifests into rows; manifest is the run file
// each came from.
func manifestRows(run, manifest string, ms []schema.ArtifactManifest) ([]ArtifactVersionRow, []ArtifactEntryRow) {
	var vs []ArtifactVersionRow
	var es []ArtifactEntryRow
	for _, m := range ms {
		aliases, tags := m.Aliases, m.Tags
		if aliases == nil {
			aliases = []string{}
		}
		if tags == nil {
			tags = []string{}
		}
		vs = append(vs, ArtifactVersionRow{Run: run, Role: string(m.Role), Name: m.Name, Type: m.Type,
			Version: m.Version, Digest: m.Digest, Aliases: jsonText(aliases), Tags: jsonText(tags),
			Description: m.Description, Metadata: optJSON(m.Metadata), ID: m.ID, Manifest: manifest})
		for _, e := range m.Entries {
			file := ""
			if e.Ref == "" {
				file = m.Folder() + "/" + e.Path
			}
			es = append(es, ArtifactEntryRow{Run: run, Name: m.Name, Version: m.Version, Digest: m.Digest,
				Path: e.Path, Size: e.Size, EntryDigest: e.Digest, Ref: e.Ref, File: file})
		}
	}
	return vs, es
}

// artifactTables reads the manifests among the run's files (their bodies
// are already blobs) and returns the rows of both tables.
func (rw *RunWriter) artifactTables() ([]ArtifactVersionRow, []ArtifactEntryRow, error) {
	return manifestTables(rw.w.st, rw.origin, rw.arts)
}

// manifestTables reads the manifests among a run's files (rows of its
// artifacts table) from their blobs and returns the rows of both tables,
// versions sorted by manifest file and entries in manifest order. A file
// at a manifest's path that is not a runferry manifest is left out of the
// tables (it is still a file of the run).
func manifestTables(root Store, run string, files []ArtifactRow) ([]ArtifactVersionRow, []ArtifactEntryRow, error) {
	var vs []ArtifactVersionRow
	var es []ArtifactEntryRow
	for _, a := range files {
		used := a.Path == schema.UsedArtifactsFile
		if a.SHA256 == nil || !used && !schema.IsManifestPath(a.Path) {
			continue
		}
		body, err := readBlob(root, *a.SHA256)
		if err != nil {
			return nil, nil, fmt.Errorf("artifact manifest %s: %w", a.Path, err)
		}
		var ms []schema.ArtifactManifest
		if used {
			ms, err = schema.ParseUsed(body)
		} else {
			var m schema.ArtifactManifest
			m, err = schema.ParseManifest(body)
			ms = []schema.ArtifactManifest{m}
		}
		if err != nil {
			continue
		}
		v, e := manifestRows(run, a.Path, ms)
		vs, es = append(vs, v...), append(es, e...)
	}
	slices.SortStableFunc(vs, func(a, b ArtifactVersionRow) int { return cmp.Compare(a.Manifest, b.Manifest) })
	return vs, es, nil
}

// readBlob reads a (small) blob whole.
func readBlob(st Store, sha string) ([]byte, error) {
	f, err := st.Open(blobPath(sha))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 256<<20))
}

// Decode converts the version row back, without entries.
func (row ArtifactVersionRow) Decode() (schema.ArtifactManifest, error) {
	m := schema.ArtifactManifest{Role: schema.ArtifactRole(row.Role), Name: row.Name, Type: row.Type,
		Version: row.Version, Digest: row.Digest, Description: row.Description,
		Metadata: fromOptJSON(row.Metadata), ID: row.ID}
	if err := json.Unmarshal([]byte(row.Aliases), &m.Aliases); err != nil {
		return m, fmt.Errorf("artifact version %s of %s: aliases: %w", row.Name, row.Run, err)
	}
	if err := json.Unmarshal([]byte(row.Tags), &m.Tags); err != nil {
		return m, fmt.Errorf("artifact version %s of %s: tags: %w", row.Name, row.Run, err)
	}
	if len(m.Aliases) == 0 {
		m.Aliases = nil
	}
	if len(m.Tags) == 0 {
		m.Tags = nil
	}
	return m, nil
}

// ArtifactManifests returns the artifact versions the run logged or used,
// logged ones first, from its artifact_versions and artifact_entries
// tables; for a run archived before those tables existed, from the
// manifest files among its files, as the tables would hold them.
func (r *Reader) ArtifactManifests(e RunEntry) ([]schema.ArtifactManifest, error) {
	var vs []ArtifactVersionRow
	var es []ArtifactEntryRow
	fv, hasV := e.File(TableArtifactVersions)
	fe, hasE := e.File(TableArtifactEntries)
	if hasV {
		if err := readTable(r.st, fv, 256, func(rows []ArtifactVersionRow) error { vs = append(vs, rows...); return nil }); err != nil {
			return nil, err
		}
	}
	if hasE {
		if err := readTable(r.st, fe, 1024, func(rows []ArtifactEntryRow) error { es = append(es, rows...); return nil }); err != nil {
			return nil, err
		}
	}
	if !hasV && !hasE {
		files, err := r.Artifacts(e)
		if err != nil {
			return nil, err
		}
		if vs, es, err = manifestTables(r.st, e.Origin, files); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
		}
	}
	type key struct{ name, version, digest string }
	entries := map[key][]schema.ArtifactEntry{}
	for _, e := range es {
		k := key{e.Name, e.Version, e.Digest}
		entries[k] = append(entries[k], schema.ArtifactEntry{Path: e.Path, Size: e.Size, Digest: e.EntryDigest, Ref: e.Ref})
	}
	var out []schema.ArtifactManifest
	for _, v := range vs {
		m, err := v.Decode()
		if err != nil {
			return nil, err
		}
		if m.Role == schema.ArtifactLogged {
			m.Entries = entries[key{v.Name, v.Version, v.Digest}]
		}
		m.Canonicalize()
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b schema.ArtifactManifest) int {
		return strings.Compare(string(a.Role), string(b.Role)) // logged before used
	})
	return out, nil
}
