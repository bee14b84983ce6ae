package mlflowfile

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"strings"

	"github.com/runferry/runferry/schema"

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
	store    *store
	instance string
	fallback bool
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
	return &Source{Source: inner, store: st, instance: cfg.Instance, fallback: cfg.ArtifactFallback}
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

// Runs yields the MLflow source's runs of experiment exp. With
// artifact-fallback on (the default), a run whose files are found neither
// where its artifact URI points nor next to the store, although its tags
// say it logged some (a model, images, tables: filesTags), carries that in
// its Damage, naming the URI and the places looked at, so that the job
// reports it and does not end as if everything arrived. A run without such
// tags may have logged no file (git, which many mlruns/ folders travel in,
// drops the empty artifacts/ folder), so it is only counted by Omitted, as
// every run whose files are nowhere is with the option off (the source
// then shows what a server shows: no files).
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for r, err := range s.Source.Runs(ctx, exp) {
			if err == nil && s.fallback {
				r.Damage = append(r.Damage, s.filesNowhere(r)...)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// filesTags are the run tags MLflow sets when a run logs files: a model
// (before MLflow 3's logged models), images, tables.
var filesTags = map[string]bool{"mlflow.log-model.history": true, "mlflow.loggedImages": true, "mlflow.loggedArtifacts": true}

// filesNowhere describes the files of native run r when they are found
// nowhere; nil otherwise.
func (s *Source) filesNowhere(r schema.Run) []string {
	logged := false
	for _, t := range r.Tags {
		logged = logged || filesTags[t.Key]
	}
	if !logged {
		return nil
	}
	id, ok := strings.CutPrefix(r.Origin.ID, s.instance+"/")
	if r.Origin.System != mlflow.System || !ok || strings.Contains(id, "/") {
		return nil // a run runferry copied here: its origin names its source
	}
	rd, err := s.store.runDirOf(id)
	if err != nil {
		return nil
	}
	var m runMeta
	if readMeta(filepath.Join(rd.dir, metaFile), &m) != nil || m.ArtifactURI == "" {
		return nil
	}
	if _, found, err := s.store.runArtifacts(id); err != nil || found {
		return nil
	}
	where := filepath.Join(rd.dir, "artifacts")
	if p, ok := s.store.arts.local(m.ArtifactURI); ok {
		where = p + " nor " + where
	}
	return []string{fmt.Sprintf("mlflow run %s: files not found: artifact root %s is not at %s", id, m.ArtifactURI, where)}
}

// FormerOrigins returns, for a store named by the server that serves it
// (the instance option), the origins the MLflow source gave that server's
// runs and experiments before origins named the server (mlflow:ID), so
// that copies made through it then are found. A store named by its path
// (the default) was never read under other origins: none.
func (s *Source) FormerOrigins(ref schema.Ref) []schema.Ref {
	if strings.HasPrefix(s.instance, "file/") {
		return nil
	}
	return s.Source.FormerOrigins(ref)
}
