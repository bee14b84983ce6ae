package mlflowfile

import (
	"context"
	"maps"

	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflow"
)

// Source reads an MLflow file store. It is the MLflow source (sources/mlflow)
// over a backend that reads the folder instead of a server, so that every
// mapping (origins, fields, tags, runferry's own sidecars in runs it wrote)
// is the one the MLflow source applies; what it adds is the report of what
// the folder holds that MLflow itself skips or that cannot be found.
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

// Kinds under which Omitted counts what the store holds but the source
// does not yield.
const (
	CoverageNoArtifacts = "runs whose files were not found (artifact root neither where its URI points nor next to the store)"
	CoverageTraces      = "traces not copied (traces of MLflow file stores are not read)"
)

// Omitted counts, beside what the MLflow source leaves out (deleted
// experiments and runs without ?deleted=true), the folders MLflow itself
// skips (no meta.yaml, an id that does not match its folder), the runs
// whose files were not found, and the traces of the experiments listed.
func (s *Source) Omitted(ctx context.Context) map[string]int64 {
	out := s.Source.Omitted(ctx)
	if out == nil {
		out = map[string]int64{}
	}
	if n, ok := out[mlflow.CoverageTraces]; ok { // the backend has no trace API
		delete(out, mlflow.CoverageTraces)
		out[CoverageTraces] += n
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	maps.Copy(out, s.store.skipped)
	if n := len(s.store.unfounded); n > 0 {
		out[CoverageNoArtifacts] = int64(n)
	}
	return out
}
