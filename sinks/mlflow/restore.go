package mlflow

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.CopyRestorer = (*Sink)(nil)

// deletedCopies indexes the committed copies MLflow shows deleted though
// runferry did not delete them (a user deleted the run or its experiment
// through MLflow's API or UI), by origin key. It is listed once per
// managedTTL: one search of the deleted runs of runferry's experiments,
// so that RestoreCopy costs nothing for the runs that are not deleted.
type deletedCopies struct {
	mu       sync.Mutex
	listedAt time.Time
	byKey    map[string][]mlflowapi.Run
	exps     map[string]string // experiments restored, id to name
}

// noteRestoredExperiment records that RestoreCopy restored experiment id
// (and with it every run of it): the runs of it found in the listing are
// named restored with it as they are asked for.
func (s *Sink) noteRestoredExperiment(id, name string) {
	d := &s.deleted
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.exps == nil {
		d.exps = map[string]string{}
	}
	d.exps[id] = name
}

// restoredExperiment reports whether RestoreCopy restored experiment id,
// with its name.
func (s *Sink) restoredExperiment(id string) (string, bool) {
	d := &s.deleted
	d.mu.Lock()
	defer d.mu.Unlock()
	name, ok := d.exps[id]
	return name, ok
}

// RestoreCopy implements sinks.CopyRestorer. A committed copy of origin
// that MLflow shows deleted (its run, or its experiment and with it the
// run) though its complete tag does not say "deleted" is restored:
// experiments/restore for its experiment (which restores the experiment's
// runs; those runferry left deleted, superseded copies and runs committed
// as deleted, are deleted again), then runs/restore for the run if it is
// still deleted. The copy keeps its run id, history and files. Nothing is
// restored when an active committed copy of origin is held (restoring
// would double it); superseded copies are never restored.
func (s *Sink) RestoreCopy(ctx context.Context, origin schema.Ref, dryRun bool) (string, error) {
	key := mlflowconv.OriginKey(origin.String())
	cands, err := s.deletedCopiesOf(ctx, key)
	if err != nil || len(cands) == 0 {
		return "", err
	}
	// The candidates are from a listing up to managedTTL old: what the
	// server holds for origin now decides.
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, key, false)
	if err != nil {
		return "", err
	}
	var held *mlflowapi.Run
	for i, r := range runs {
		if !completeRun(r) {
			continue
		}
		if userDeleted(r) {
			held = &runs[i]
			continue
		}
		// An active committed copy (or one committed as deleted): held,
		// restored already when its experiment was restored for another
		// run of it in this job.
		for _, c := range cands {
			if c.Info.RunID == r.Info.RunID && r.Info.LifecycleStage == mlflowapi.StageActive {
				if name, ok := s.restoredExperiment(r.Info.ExperimentID); ok {
					s.dropDeletedCopy(key, r.Info.RunID)
					return fmt.Sprintf("MLflow run %s with its experiment %q (id %s)", r.Info.RunID, name, r.Info.ExperimentID), nil
				}
			}
		}
		return "", nil
	}
	if held == nil {
		return "", nil
	}
	exp, err := s.api.GetExperiment(ctx, held.Info.ExperimentID)
	if err != nil {
		return "", fmt.Errorf("reading experiment %s of run %s: %w", held.Info.ExperimentID, held.Info.RunID, err)
	}
	what := fmt.Sprintf("MLflow run %s", held.Info.RunID)
	if exp.LifecycleStage == mlflowapi.StageDeleted {
		what += fmt.Sprintf(" with its experiment %q (id %s)", exp.Name, exp.ExperimentID)
	}
	if dryRun {
		return what, nil
	}
	if exp.LifecycleStage == mlflowapi.StageDeleted {
		if err := s.restoreExperiment(ctx, exp.ExperimentID); err != nil {
			return "", err
		}
		s.noteRestoredExperiment(exp.ExperimentID, exp.Name)
	}
	now, err := s.api.GetRun(ctx, held.Info.RunID)
	if err != nil {
		return "", fmt.Errorf("reading run %s to restore it: %w", held.Info.RunID, err)
	}
	if now.Info.LifecycleStage == mlflowapi.StageDeleted {
		if err := s.api.RestoreRun(ctx, held.Info.RunID); err != nil {
			return "", fmt.Errorf("restoring run %s (deleted in MLflow, not in the source): %w", held.Info.RunID, err)
		}
	}
	s.dropDeletedCopy(key, held.Info.RunID)
	return what, nil
}

// userDeleted reports whether the committed copy r is deleted though
// runferry did not delete it: neither superseded nor committed as deleted.
func userDeleted(r mlflowapi.Run) bool {
	if r.Info.LifecycleStage != mlflowapi.StageDeleted {
		return false
	}
	if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); sup {
		return false
	}
	v, ok := mlflowconv.RunTag(r, mlflowconv.TagComplete)
	return ok && v != mlflowconv.CompleteDeleted
}

// restoreExperiment restores experiment id, deleted in MLflow though the
// source's is not, through its lifecycle state (moveLocked), so that the
// runs runferry left deleted in it are deleted again.
func (s *Sink) restoreExperiment(ctx context.Context, id string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	l := s.life(id)
	if l.inFlight > 0 {
		return nil // runs are being written into it: it is active
	}
	l.deleted = true // as the server shows it now
	if err := s.moveLocked(ctx, id, l, false); err != nil {
		return fmt.Errorf("restoring experiment %s (deleted in MLflow, not in the source): %w", id, err)
	}
	return nil
}

// deletedCopiesOf returns the listed deleted copies of the origin key,
// listing the deleted runs of runferry's experiments again when the
// listing is older than managedTTL.
func (s *Sink) deletedCopiesOf(ctx context.Context, key string) ([]mlflowapi.Run, error) {
	d := &s.deleted
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byKey == nil || time.Since(d.listedAt) >= managedTTL {
		ids, err := s.managedExperiments(ctx)
		if err != nil {
			return nil, err
		}
		byKey := map[string][]mlflowapi.Run{}
		for _, k := range []string{mlflowconv.TagComplete, mlflowconv.FormerTag(mlflowconv.TagComplete)} {
			if k == "" {
				continue
			}
			filter := fmt.Sprintf("tags.`%s` LIKE '%%'", k)
			for start := 0; start < len(ids); start += 100 {
				chunk := ids[start:min(start+100, len(ids))]
				for r, err := range s.api.SearchRuns(ctx, chunk, filter, mlflowapi.ViewDeleted) {
					if err != nil {
						return nil, fmt.Errorf("listing the deleted runs: %w", err)
					}
					if !userDeleted(r) {
						continue
					}
					if v, found := mlflowconv.RunTag(r, mlflowconv.TagOriginKey); found {
						byKey[v] = append(byKey[v], r)
					}
				}
			}
		}
		d.byKey, d.listedAt = byKey, time.Now()
	}
	return d.byKey[key], nil
}

// dropDeletedCopy forgets a copy RestoreCopy restored.
func (s *Sink) dropDeletedCopy(key, runID string) {
	d := &s.deleted
	d.mu.Lock()
	defer d.mu.Unlock()
	runs := d.byKey[key]
	for i, r := range runs {
		if r.Info.RunID == runID {
			d.byKey[key] = append(runs[:i:i], runs[i+1:]...)
			break
		}
	}
}
