package schema

import (
	"cmp"
	"slices"
	"time"
)

// RegisteredModel is a named model of a model registry (MLflow's model
// registry) with its versions. It belongs to no run: each version names
// the run it came from by that run's origin, so that a sink can point it at
// the run it wrote from that origin.
type RegisteredModel struct {
	// Origin identifies the model in the system it was read from (MLflow:
	// "mlflow:model/NAME" unless runferry wrote it, then the origin it was
	// copied from).
	Origin      Ref
	Name        string
	Description string
	Tags        []Tag
	// Aliases name versions ("champion" -> 3), sorted by alias.
	Aliases   []ModelAlias
	CreatedAt time.Time
	// UpdatedAt is when the source last changed the model (zero when
	// unknown). It is informational: writing a copy is a change, so a
	// destination that sets its own times shows the time of the copy, and
	// check does not compare it.
	UpdatedAt time.Time
	// Versions are sorted by Version.
	Versions []ModelVersion
}

// ModelAlias is an alias of a registered model pointing at one version.
type ModelAlias struct {
	Alias   string
	Version int64
}

// ModelVersion is one version of a registered model.
type ModelVersion struct {
	// Version is the version number the source gave it (1, 2, ...).
	Version     int64
	Description string
	Tags        []Tag
	// Stage is MLflow's legacy stage: "None", "Staging", "Production",
	// "Archived".
	Stage  string
	Status string // "READY", "PENDING_REGISTRATION", "FAILED_REGISTRATION"
	// Source is the URI of the model files as the source gave it.
	Source string
	// Run is the origin of the run the version came from; zero when none.
	Run Ref
	// RunPath is the path of the model files inside Run's files when
	// Source points there ("model"), so that a sink can point the version
	// at the files of the run it wrote; "" when Source is elsewhere.
	RunPath   string
	CreatedAt time.Time
	// UpdatedAt is when the source last changed the version (zero when
	// unknown); informational like RegisteredModel.UpdatedAt.
	UpdatedAt time.Time
}

// Canonicalize sorts the model's tags, aliases and versions (and each
// version's tags) and truncates its times to the millisecond.
func (m *RegisteredModel) Canonicalize() {
	m.Tags = sortedUnique(m.Tags, func(t Tag) string { return t.Key })
	slices.SortFunc(m.Aliases, func(a, b ModelAlias) int { return cmp.Compare(a.Alias, b.Alias) })
	slices.SortFunc(m.Versions, func(a, b ModelVersion) int { return cmp.Compare(a.Version, b.Version) })
	m.CreatedAt = CanonicalTime(m.CreatedAt)
	m.UpdatedAt = CanonicalTime(m.UpdatedAt)
	for i := range m.Versions {
		v := &m.Versions[i]
		v.Tags = sortedUnique(v.Tags, func(t Tag) string { return t.Key })
		v.CreatedAt = CanonicalTime(v.CreatedAt)
		v.UpdatedAt = CanonicalTime(v.UpdatedAt)
	}
}
