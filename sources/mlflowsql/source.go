package mlflowsql

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflow"
)

// Source reads an MLflow SQL store. It is the MLflow source
// (sources/mlflow) over a backend that reads the database instead of a
// server, so that every mapping (origins, fields, tags, runferry's own
// sidecars in runs it wrote) is the one the MLflow source applies; what it
// adds is the report of what could not be read here (files and spans at
// locations that are no folder on this machine). It is safe for
// concurrent use.
type Source struct {
	*mlflow.Source
	store     *store
	closeOnce sync.Once
	closeErr  error
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.Omitter         = (*Source)(nil)
	_ sources.RegistryReader  = (*Source)(nil)
	_ sources.TraceReader     = (*Source)(nil)
	_ sources.Fingerprinter   = (*Source)(nil)
	_ sources.FormerOriginer  = (*Source)(nil)
	_ sources.TransformReader = (*Source)(nil)
)

// New connects to the store cfg names and reads its alembic revision,
// refusing one it does not know. Errors are fatal and show no password.
func New(ctx context.Context, cfg Config) (*Source, error) {
	db, err := sqlstore.Open(ctx, cfg.DB, sqlstore.ForForeignReading)
	if err != nil {
		return nil, err
	}
	rev, err := readRevision(ctx, db)
	if err != nil {
		db.Close()
		return nil, fault.Fatal(err)
	}
	st := newStore(db, rev, cfg.Artifacts)
	inner := mlflow.NewWithBackend(st, cfg.Instance, mlflow.Config{ExperimentPrefix: cfg.ExperimentPrefix, Deleted: cfg.Deleted})
	return &Source{Source: inner, store: st}, nil
}

// readRevision returns the index in revisions of the store's alembic
// revision; a database without one, or at one runferry does not know, is
// an error naming it.
func readRevision(ctx context.Context, st *sqlstore.Store) (int, error) {
	rows, err := st.DB.QueryContext(ctx, "SELECT version_num FROM alembic_version")
	if err != nil {
		return 0, fmt.Errorf("not an MLflow tracking store: no alembic_version table (%v)", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return 0, err
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if len(got) != 1 {
		return 0, fmt.Errorf("MLflow store: alembic_version holds %d revisions %q, want exactly one", len(got), got)
	}
	for i, r := range revisions {
		if r.id == got[0] {
			return i, nil
		}
	}
	last := revisions[len(revisions)-1].id
	return 0, fmt.Errorf("MLflow store at alembic revision %q, which this runferry does not know (it reads revisions up to %s, MLflow 3.17): written by a newer MLflow? refusing to guess its schema; read it through a tracking server (mlflow+http://) or upgrade runferry", got[0], last)
}

// Close closes the source and its connection pool; later calls fail. It
// is idempotent.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		s.Source.Close()
		s.closeErr = s.store.st.Close()
	})
	return s.closeErr
}

// Runs yields the MLflow source's runs of experiment exp. A run runferry
// wrote whose files cannot be read here (its artifact location is no
// folder on this machine: object storage, or mlflow-artifacts: without
// ?artifacts=) is read as MLflow holds it, and its Damage says why
// runferry's own files were not applied, so the job does not end as if it
// had been restored exactly.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for r, err := range s.Source.Runs(ctx, exp) {
			if err == nil {
				s.explainSidecar(&r)
			}
			if !yield(r, err) {
				return
			}
		}
	}
}

// sidecarMissing ends the note the MLflow source gives a runferry run
// whose sidecar it could not open: "mlflow run ID: " + sidecarMissing.
var sidecarMissing = mlflowconv.SidecarPath + " is missing; metadata read from MLflow only"

// explainSidecar replaces, in r's Damage, the MLflow source's note that a
// run's sidecar is missing by why it was not read, when the store could
// not read that run's files here at all.
func (s *Source) explainSidecar(r *schema.Run) {
	for i, d := range r.Damage {
		rest, ok := strings.CutPrefix(d, "mlflow run ")
		id, note, ok2 := strings.Cut(rest, ": ")
		if !ok || !ok2 || note != sidecarMissing {
			continue
		}
		if why := s.store.unreadWhy(id); why != "" {
			r.Damage[i] = fmt.Sprintf("mlflow run %s: written by runferry; read as MLflow holds it, runferry's own files (%s) not applied: its files are not read here (%s); give ?artifacts= or read it through a tracking server (mlflow+http://) to restore it exactly", id, mlflowconv.Dir, why)
		}
	}
}

// Omitted counts, beside what the MLflow source leaves out (deleted
// experiments and runs without ?deleted=true), the runs (and logged
// models) whose files and the traces whose spans could not be read here,
// each kind named with the reason.
func (s *Source) Omitted(ctx context.Context) map[string]int64 {
	out := s.Source.Omitted(ctx)
	if out == nil {
		return nil // closed
	}
	s.store.mu.Lock()
	defer s.store.mu.Unlock()
	for _, why := range s.store.noDir {
		out["runs whose files were not read: "+why]++
	}
	for _, why := range s.store.noSpans {
		out["traces whose spans were not read: "+why]++
	}
	return out
}
