package mlflowfile

import (
	"context"

	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflow"
)

// Source reads an MLflow file store. It is the MLflow source (sources/mlflow)
// over a backend that reads the folder instead of a server, so that every
// mapping (origins, fields, tags, runferry's own sidecars in runs it wrote)
// is the one the MLflow source applies; what it adds is the report of what
// the folder holds that MLflow itself skips or that cannot be found.
// Traces are read as a server's trace API gives them.
type Source struct {
	*mlflow.Source
	store *store
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.Omitter         = (*Source)(nil)
	_ sources.RegistryReader  = (*Source)(nil)
	_ sources.Fingerprinter   = (*Source)(nil)
	_ sources.FormerOriginer  = (*Source)(nil)
	_ sources.TransformReader = (*Source)(nil)
)

// New returns a source for cfg. It does no I/O.
func New(cfg Config) *Source {
	st := newStore(cfg.Root, artifactResolver{root: cfg.Root, dest: cfg.ArtifactsDestination, fallback: cfg.ArtifactFallback})
	inner := mlflow.NewWithBackend(st, cfg.Instance, mlflow.Config{ExperimentPrefix: cfg.ExperimentPrefix, Deleted: cfg.Deleted})
	return &Source{Source: inner, store: st}
}

// CoverageNoArtifacts is the kind under which Omitted counts the runs
// whose files were found nowhere.
const CoverageNoArtifacts = "runs whose files were not found (artifact root neither where its URI points nor next to the store)"

// Omitted counts, beside what the MLflow source leaves out (deleted
// experiments and runs without ?deleted=true), the folders MLflow itself
// skips (no meta.yaml, an id that does not match its folder) and the runs
// whose files were not found.
func (s *Source) Omitted(ctx context.Context) map[string]int64 {
	out := s.Source.Omitted(ctx)
	if out == nil {
		out = map[string]int64{}
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	for kind, dirs := range s.store.skipped {
		out[kind] = int64(len(dirs))
	}
	if n := len(s.store.unfounded); n > 0 {
		out[CoverageNoArtifacts] = int64(n)
	}
	return out
}
