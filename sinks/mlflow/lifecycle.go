package mlflow

import (
	"context"
	"fmt"
	"slices"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
)

// expLife tracks the lifecycle stage of one of runferry's experiments while
// this sink writes into it.
//
// A source experiment that is deleted must end deleted in MLflow, but MLflow
// refuses to create a run in a deleted experiment and marks every run of an
// experiment deleted or active with it. So the experiment is active exactly
// while at least one run is being written into it, and deleted otherwise:
// OpenRun acquires it (restoring it when it is the first run in flight), and
// Commit or Abort releases it (deleting it when it was the last). A kill
// while it is restored leaves it active; the next job's PutExperiment, which
// the engine calls for every selected experiment whether or not it has runs
// to write, deletes it again, so a re-run converges.
type expLife struct {
	deleted     bool // as last set on the server
	wantDeleted bool // the source experiment is deleted
	inFlight    int  // runs being written into it
}

// life returns the lifecycle state of experiment id; the caller holds
// s.lifeMu.
func (s *Sink) life(id string) *expLife {
	if s.lives == nil {
		s.lives = map[string]*expLife{}
	}
	l, ok := s.lives[id]
	if !ok {
		l = &expLife{}
		s.lives[id] = l
	}
	return l
}

// noteExperiment records the stage experiment id was found in and the one
// the source wants.
func (s *Sink) noteExperiment(id string, foundDeleted, wantDeleted bool) {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	l := s.life(id)
	l.deleted, l.wantDeleted = foundDeleted, wantDeleted
}

// settleExperiment moves experiment id to the stage the source wants,
// unless runs are being written into it (the last of them does it then).
func (s *Sink) settleExperiment(ctx context.Context, id string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	l := s.life(id)
	if l.inFlight > 0 {
		return nil
	}
	return s.moveLocked(ctx, id, l, l.wantDeleted)
}

// withExperimentActive runs fn (tagging, say) while experiment id is
// active, then puts it back in the stage the source wants.
func (s *Sink) withExperimentActive(ctx context.Context, id string, fn func() error) error {
	if err := s.acquireExperiment(ctx, id); err != nil {
		return err
	}
	err := fn()
	if rerr := s.releaseExperiment(ctx, id); err == nil {
		err = rerr
	}
	return err
}

// acquireExperiment makes experiment id active for a run to be written into
// it, restoring it when it is deleted.
func (s *Sink) acquireExperiment(ctx context.Context, id string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	l := s.life(id)
	if l.inFlight == 0 && l.deleted {
		if err := s.moveLocked(ctx, id, l, false); err != nil {
			return err
		}
	}
	l.inFlight++
	return nil
}

// releaseExperiment ends one run's write into experiment id, deleting the
// experiment again when the source's is deleted and no other run is being
// written into it.
func (s *Sink) releaseExperiment(ctx context.Context, id string) error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	l := s.life(id)
	if l.inFlight > 0 {
		l.inFlight--
	}
	if l.inFlight == 0 && l.wantDeleted && !l.deleted {
		return s.moveLocked(ctx, id, l, true)
	}
	return nil
}

// moveLocked deletes or restores experiment id. Restoring makes every run
// of it active again, so the runs that must stay deleted (superseded
// copies, runs committed as deleted) are deleted again. The caller holds
// s.lifeMu.
func (s *Sink) moveLocked(ctx context.Context, id string, l *expLife, deleted bool) error {
	if l.deleted == deleted {
		return nil
	}
	if deleted {
		if err := s.api.DeleteExperiment(ctx, id); err != nil && !mlflowapi.IsNotFound(err) {
			return fmt.Errorf("deleting experiment %s (deleted in the source): %w", id, err)
		}
		l.deleted = true
		return nil
	}
	if err := s.api.RestoreExperiment(ctx, id); err != nil {
		if exp, gerr := s.api.GetExperiment(ctx, id); gerr != nil || exp.LifecycleStage != mlflowapi.StageActive {
			return fmt.Errorf("restoring experiment %s to write into it: %w", id, err)
		}
	}
	l.deleted = false
	return s.redeleteRuns(ctx, id)
}

// redeleteRuns deletes the active runs of experiment id that runferry left
// deleted: superseded copies and runs committed as deleted.
func (s *Sink) redeleteRuns(ctx context.Context, id string) error {
	var filters []string // by the current and the former tag names
	for _, k := range []string{mlflowconv.TagComplete, mlflowconv.FormerTag(mlflowconv.TagComplete)} {
		filters = append(filters, fmt.Sprintf("tags.`%s` = 'deleted'", k))
	}
	for _, k := range []string{mlflowconv.TagSuperseded, mlflowconv.FormerTag(mlflowconv.TagSuperseded)} {
		filters = append(filters, fmt.Sprintf("tags.`%s` LIKE '%%'", k))
	}
	var ids []string // listed whole first: deleting shifts the server's offset paging
	for _, f := range filters {
		for r, err := range s.api.SearchRuns(ctx, []string{id}, f, mlflowapi.ViewActive) {
			if err != nil {
				return fmt.Errorf("listing runs of restored experiment %s: %w", id, err)
			}
			if !slices.Contains(ids, r.Info.RunID) {
				ids = append(ids, r.Info.RunID)
			}
		}
	}
	for _, run := range ids {
		if err := s.api.DeleteRun(ctx, run); err != nil {
			return fmt.Errorf("deleting run %s again in restored experiment %s: %w", run, id, err)
		}
	}
	return nil
}
