package mlflow

import (
	"bytes"
	"context"
	"fmt"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
)

// firstCopyCutShort returns, among the runs earlier written from the
// run's origin, the first copy of it that an earlier attempt cut short
// and that OpenRun continues in place, or nil with why it cannot be
// continued ("" when there is no such copy). It is continued only when
// it is the one run of the origin (none superseded and none under a
// former origin left active), active, in experiment expID, never
// committed (no mark, no appending tag, no complete tag), holds a
// run.json identical to sidecar (the same start, user, name, parent,
// params, tags and inputs as the run now given, so every param logged
// is logged again with the same value), and holds no logged model (a
// model is created once, at commit). A copy cut short before its run.json
// was uploaded (bare) is continued when it holds no param nor metric and
// was created as create would create it (start time, name, user, origin
// and parent tags).
func (s *Sink) firstCopyCutShort(ctx context.Context, expID, origin string, create mlflowapi.CreateRun, sidecar []byte, earlier []mlflowapi.Run) (_ *mlflowapi.Run, bare bool, why string, err error) {
	var active []mlflowapi.Run
	for _, r := range earlier {
		if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); !sup || r.Info.LifecycleStage == mlflowapi.StageActive {
			active = append(active, r)
		}
	}
	if len(active) == 0 {
		return nil, false, "", nil
	}
	held := active[0]
	_, sup := mlflowconv.RunTag(held, mlflowconv.TagSuperseded)
	mark, _ := held.Tag(mlflowconv.TagMark)
	appending, _ := held.Tag(mlflowconv.TagAppending)
	_, complete := mlflowconv.RunTag(held, mlflowconv.TagComplete)
	switch {
	case len(active) > 1:
		return nil, false, fmt.Sprintf("the server holds %d copies of the run", len(active)), nil
	case sup:
		return nil, false, fmt.Sprintf("the server's copy %s is a superseded one", held.Info.RunID), nil
	case complete || mark != "" || appending != "":
		return nil, false, "", nil // a committed copy (or an append): replaced, as before
	case held.Info.LifecycleStage != mlflowapi.StageActive:
		return nil, false, fmt.Sprintf("the server's copy %s is deleted", held.Info.RunID), nil
	case held.Info.ExperimentID != expID:
		return nil, false, fmt.Sprintf("the server's copy %s is in experiment %s, not %s", held.Info.RunID, held.Info.ExperimentID, expID), nil
	}
	if k, _ := mlflowconv.RunTag(held, mlflowconv.TagOriginKey); k != mlflowconv.OriginKey(origin) {
		return nil, false, fmt.Sprintf("the server's copy %s is under a former origin", held.Info.RunID), nil
	}
	body, err := s.api.OpenArtifact(ctx, held.Info.RunID, held.Info.ArtifactURI, mlflowconv.SidecarPath)
	if err != nil {
		if mlflowapi.IsNotFound(err) {
			if why := bareAsCreated(held, create); why != "" {
				return nil, false, why, nil
			}
			return &held, true, "", nil
		}
		return nil, false, "", fmt.Errorf("reading %s of run %s: %w", mlflowconv.SidecarPath, held.Info.RunID, err)
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(body)
	body.Close()
	if err != nil {
		return nil, false, "", fmt.Errorf("reading %s of run %s: %w", mlflowconv.SidecarPath, held.Info.RunID, err)
	}
	if !bytes.Equal(buf.Bytes(), sidecar) {
		return nil, false, fmt.Sprintf("the run's metadata changed since the copy %s was begun", held.Info.RunID), nil
	}
	ok, err := s.loggedModelsSupported(ctx, expID)
	if err != nil {
		return nil, false, "", err
	}
	if ok {
		models, err := s.api.SearchLoggedModels(ctx, expID, fmt.Sprintf("source_run_id = '%s'", held.Info.RunID))
		if err != nil {
			return nil, false, "", err
		}
		if len(models) > 0 {
			return nil, false, fmt.Sprintf("the server's copy %s holds logged models", held.Info.RunID), nil
		}
	}
	return &held, false, "", nil
}

// bareAsCreated says why run held, a copy without run.json, cannot be
// continued as the run create describes, or "".
func bareAsCreated(held mlflowapi.Run, create mlflowapi.CreateRun) string {
	switch {
	case len(held.Data.Params) > 0 || len(held.Data.Metrics) > 0:
		return fmt.Sprintf("the server's copy %s holds params or metrics but no %s", held.Info.RunID, mlflowconv.SidecarPath)
	case held.Info.StartTime != create.StartTime,
		create.RunName != "" && held.Info.RunName != create.RunName,
		create.UserID != "" && held.Info.UserID != create.UserID:
		return fmt.Sprintf("the server's copy %s was created for other metadata", held.Info.RunID)
	}
	for _, t := range create.Tags {
		if v, _ := held.Tag(t.Key); v != t.Value {
			return fmt.Sprintf("the server's copy %s was created with another tag %s", held.Info.RunID, t.Key)
		}
	}
	return ""
}

// pointsHeld returns, by MLflow key, every point run held holds: a
// continued first copy does not send them again (see logMetrics).
func (s *Sink) pointsHeld(ctx context.Context, held mlflowapi.Run) (map[string]map[heldPoint]int, error) {
	out := map[string]map[heldPoint]int{}
	for _, latest := range held.Data.Metrics {
		for page, err := range s.api.MetricHistory(ctx, held.Info.RunID, latest.Key) {
			if err != nil {
				return nil, fmt.Errorf("reading the history of %s of run %s: %w", latest.Key, held.Info.RunID, err)
			}
			for _, m := range page {
				if out[latest.Key] == nil {
					out[latest.Key] = map[heldPoint]int{}
				}
				out[latest.Key][heldPointOf(m)]++
			}
		}
	}
	return out, nil
}

// retireContinued, at the commit of a continued first copy that holds
// points the run given again does not have (the source changed between
// the attempts: MLflow cannot remove points), supersedes the copy and
// returns a retryable error, so that the next attempt writes the run
// anew; why says which points. The engine then aborts the writer.
func (w *writer) retireContinued(ctx context.Context, why error) error {
	held, err := w.api().GetRun(ctx, w.run.RunID)
	if err != nil {
		return err
	}
	if err := w.sink.supersede(ctx, held); err != nil {
		return fmt.Errorf("retiring the copy %s: %w", w.run.RunID, err)
	}
	return fault.Retryable(fmt.Errorf("continuing the copy cut short: %w; it is superseded and the run written anew", why), 0)
}
