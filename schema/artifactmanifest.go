package schema

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// ArtifactRole says how a run relates to an artifact version.
type ArtifactRole string

// The roles of a run towards an artifact version: it logged (produced) it,
// or it used (consumed) it.
const (
	ArtifactLogged ArtifactRole = "logged"
	ArtifactUsed   ArtifactRole = "used"
)

// ArtifactManifest is one version of a versioned artifact (W&B Artifacts)
// that a run logged or used: a named, typed collection of files described
// by its manifest. The files themselves travel as the run's files under
// ArtifactFolder (see Folder); the manifest names every entry, including
// those whose content is not at hand.
type ArtifactManifest struct {
	Role ArtifactRole `json:"role"`
	// Name is the artifact (collection) name, without version or alias.
	Name string `json:"name"`
	Type string `json:"type"`
	// Version is the version the server assigned ("v3"), or "" when the
	// source does not know it (an artifact logged offline gets its version
	// only when synced).
	Version string `json:"version"`
	// Digest identifies the version's content (W&B: hex MD5 of the
	// manifest); "" when unknown (a used artifact names only its version).
	Digest      string   `json:"digest"`
	Aliases     []string `json:"aliases"`        // sorted, unique
	Tags        []string `json:"tags,omitempty"` // sorted, unique
	Description string   `json:"description,omitempty"`
	// Metadata is the version's metadata as a JSON object, or nil.
	Metadata json.RawMessage `json:"metadata,omitempty"`
	// ID is the source system's id of the version, when known.
	ID string `json:"id,omitempty"`
	// Entries are the manifest's files, sorted by path.
	Entries []ArtifactEntry `json:"entries"`
}

// ArtifactEntry is one file of an artifact manifest.
type ArtifactEntry struct {
	Path   string `json:"path"` // slash-separated, relative to the artifact root
	Size   int64  `json:"size"`
	Digest string `json:"digest"` // as the source records it (W&B: base64 MD5)
	// Ref is an external reference (s3://..., https://...) holding the
	// content instead of the artifact, or "".
	Ref string `json:"ref,omitempty"`
}

// ArtifactFolder is the folder, relative to a run's artifact root, under
// which the files and the manifest of the artifact versions a run logged
// are carried: ArtifactFolder/<name>/<version or digest>/.
const ArtifactFolder = "wandb-artifacts"

// ManifestFile is the name of the manifest JSON inside an artifact
// version's folder.
const ManifestFile = "manifest.json"

// UsedArtifactsFile is the run file listing, as a JSON array of manifests
// (MarshalUsed), the artifact versions the run used. It sits beside
// ArtifactFolder, not in it, where no artifact name can clash with it.
const UsedArtifactsFile = "wandb-used-artifacts.json"

// IsManifestPath reports whether the run file path p is the manifest of a
// logged artifact version: ArtifactFolder/<name>/<label>/ManifestFile.
func IsManifestPath(p string) bool {
	parts := strings.Split(p, "/")
	return len(parts) == 4 && parts[0] == ArtifactFolder && parts[1] != "" && parts[2] != "" && parts[3] == ManifestFile
}

// Label is what names the version in paths: for a logged version its
// Digest when known (the content's name, the same whether the version was
// read from a run folder, where the server has not numbered it yet, or
// from the server), else Version; for a used one Version when known,
// else Digest.
func (m ArtifactManifest) Label() string {
	if m.Role == ArtifactLogged && m.Digest != "" {
		return m.Digest
	}
	return cmp.Or(m.Version, m.Digest)
}

// Folder is the version's folder relative to the run's artifact root:
// "wandb-artifacts/<name>/<label>".
func (m ArtifactManifest) Folder() string {
	return ArtifactFolder + "/" + m.Name + "/" + m.Label()
}

// Canonicalize sorts and de-duplicates the aliases and tags and sorts the
// entries by path.
func (m *ArtifactManifest) Canonicalize() {
	slices.Sort(m.Aliases)
	m.Aliases = slices.Compact(m.Aliases)
	slices.Sort(m.Tags)
	m.Tags = slices.Compact(m.Tags)
	slices.SortStableFunc(m.Entries, func(a, b ArtifactEntry) int { return strings.Compare(a.Path, b.Path) })
}

// ManifestFormat names the layout of the manifest JSON runferry writes.
const ManifestFormat = "runferry.artifact-manifest/1"

// manifestDoc is the manifest JSON: the manifest plus its format name.
type manifestDoc struct {
	Format string `json:"format"`
	ArtifactManifest
}

// MarshalManifest renders m, canonicalised, as the indented manifest JSON
// carried in an artifact version's folder; m itself is left as it is.
// Nil lists become [].
func MarshalManifest(m ArtifactManifest) ([]byte, error) {
	m.Aliases, m.Tags, m.Entries = slices.Clone(m.Aliases), slices.Clone(m.Tags), slices.Clone(m.Entries)
	m.Canonicalize()
	if m.Aliases == nil {
		m.Aliases = []string{}
	}
	if m.Entries == nil {
		m.Entries = []ArtifactEntry{}
	}
	b, err := json.MarshalIndent(manifestDoc{Format: ManifestFormat, ArtifactManifest: m}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ParseManifest is the inverse of MarshalManifest (empty lists come back
// nil). It refuses a document of another format.
func ParseManifest(b []byte) (ArtifactManifest, error) {
	var d manifestDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return ArtifactManifest{}, fmt.Errorf("artifact manifest: %w", err)
	}
	if d.Format != ManifestFormat {
		return ArtifactManifest{}, fmt.Errorf("artifact manifest: format %q, want %q", d.Format, ManifestFormat)
	}
	if len(d.Metadata) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, d.Metadata); err != nil {
			return ArtifactManifest{}, fmt.Errorf("artifact manifest: metadata: %w", err)
		}
		d.Metadata = c.Bytes()
	}
	d.Canonicalize()
	if len(d.Aliases) == 0 {
		d.Aliases = nil
	}
	if len(d.Entries) == 0 {
		d.Entries = nil
	}
	return d.ArtifactManifest, nil
}

// MarshalUsed renders the manifests of used versions as the JSON array held
// in UsedArtifactsFile.
func MarshalUsed(ms []ArtifactManifest) ([]byte, error) {
	body := []byte("[\n")
	for i, m := range ms {
		b, err := MarshalManifest(m)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			body = append(body, ",\n"...)
		}
		body = append(body, bytes.TrimSuffix(b, []byte("\n"))...)
	}
	return append(body, "\n]\n"...), nil
}

// ParseUsed is the inverse of MarshalUsed.
func ParseUsed(b []byte) ([]ArtifactManifest, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("used artifacts: %w", err)
	}
	out := make([]ArtifactManifest, 0, len(raw))
	for _, r := range raw {
		m, err := ParseManifest(r)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}
