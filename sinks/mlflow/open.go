package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// OpenRun starts writing r into experiment expID. A first copy of r that
// an earlier attempt cut short (never committed, the one copy of r, with
// the same metadata: see firstCopyCutShort) is continued in place, under
// its run id: the writer skips the points it holds already, and a copy
// found at commit to hold points r no longer has is superseded then (a
// retryable error; the next attempt writes r anew). Otherwise every run
// written earlier from r.Origin or one of its former origins (SetFormerOrigins), complete
// or not, is superseded first (tagged and deleted):
// the sink redoes, so the new run holds exactly what this writer
// is given. It then creates the run with its original start time, user and
// name, uploads the run.json sidecar, writes params and tags, and links the
// run to its parent when the parent is already there.
//
// The experiment is kept active (restored if deleted) until the writer
// commits or aborts: see expLife.
func (s *Sink) OpenRun(ctx context.Context, expID string, r schema.Run) (_ sinks.RunWriter, err error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	origin := r.Origin.String()
	cov := &mlflowconv.Coverage{Version: 1, Origin: origin, MetricKeys: map[string]string{}, SystemMetricKeys: map[string]string{},
		ParamKeys: map[string]string{}, TagKeys: map[string]string{}, FileProblems: map[string]string{}, FileDigests: map[string]string{}}
	params, tags, err := mlflowconv.RunEntities(r, cov)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("run %s: %w", origin, err))
	}
	sidecar, err := json.MarshalIndent(mlflowconv.Sidecar{Version: mlflowconv.SidecarVersion, Run: r}, "", "  ")
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("run %s: encoding run.json: %w", origin, err))
	}

	create := mlflowapi.CreateRun{ExperimentID: expID, UserID: r.User, StartTime: r.Start.UnixMilli(),
		Tags: []mlflowapi.Tag{
			{Key: mlflowconv.TagOrigin, Value: origin},
			{Key: mlflowconv.TagOriginKey, Value: mlflowconv.OriginKey(origin)},
			{Key: mlflowconv.TagSidecar, Value: mlflowconv.SidecarPath},
		}}
	if r.Start.IsZero() {
		create.StartTime = 0
	}
	if name, cut := mlflowconv.Truncate(r.Name, mlflowapi.MaxRunNameLength); cut {
		create.RunName = name
		cov.Truncated = append(cov.Truncated, mlflowconv.Truncation{What: "run name", Length: utf8.RuneCountInString(r.Name)})
	} else {
		create.RunName = r.Name
	}
	for _, t := range tags {
		if t.Key == mlflowapi.TagRunName && t.Value != create.RunName {
			create.RunName = "" // the server refuses a name that differs from the tag
		}
	}
	if !r.Parent.IsZero() {
		create.Tags = append(create.Tags,
			mlflowapi.Tag{Key: mlflowconv.TagParent, Value: r.Parent.String()},
			mlflowapi.Tag{Key: mlflowconv.TagParentKey, Value: mlflowconv.OriginKey(r.Parent.String())})
	}
	if err := s.acquireExperiment(ctx, expID); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = s.releaseExperiment(context.WithoutCancel(ctx), expID)
		}
	}()
	var earlier []mlflowapi.Run
	for _, o := range append([]string{origin}, s.FormerKeys(r.Origin)...) {
		runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(o), true)
		if err != nil {
			return nil, err
		}
		earlier = append(earlier, runs...)
	}
	cont, bare, why, err := s.firstCopyCutShort(ctx, expID, origin, create, sidecar, earlier)
	if err != nil {
		return nil, err
	}
	if cont != nil {
		return s.continueRun(ctx, expID, r, *cont, bare, cov, params, tags, sidecar)
	}
	for _, old := range earlier {
		if err := s.supersede(ctx, old); err != nil {
			if why != "" {
				err = fmt.Errorf("%w (not continued: %s)", err, why)
			}
			return nil, fmt.Errorf("retiring the earlier copy %s: %w", old.Info.RunID, err)
		}
	}

	run, err := s.api.CreateRun(ctx, create)
	if err != nil {
		return nil, fmt.Errorf("creating run: %w", err)
	}
	if err := s.api.UploadBytes(ctx, run.Info.ArtifactURI, mlflowconv.SidecarPath, sidecar); err != nil {
		return nil, fmt.Errorf("uploading %s: %w", mlflowconv.SidecarPath, err)
	}
	return s.openEntities(ctx, expID, r, run.Info, cov, params, tags, nil)
}

// continueRun opens held, a first copy of r an earlier attempt cut short
// (firstCopyCutShort), to write r into it under its run id: params and
// tags are written again (the same values), dataset inputs logged again
// (the server keeps one of each), and the writer sends no point held
// already (pointsHeld); files are uploaded again over those held, and
// those the copy holds that the source no longer has are deleted at
// commit (deleteGoneContinued). A bare copy (cut short before its
// run.json) gets its run.json first.
func (s *Sink) continueRun(ctx context.Context, expID string, r schema.Run, held mlflowapi.Run, bare bool, cov *mlflowconv.Coverage, params []mlflowapi.Param, tags []mlflowapi.Tag, sidecar []byte) (sinks.RunWriter, error) {
	if bare {
		if err := s.api.UploadBytes(ctx, held.Info.ArtifactURI, mlflowconv.SidecarPath, sidecar); err != nil {
			return nil, fmt.Errorf("uploading %s: %w", mlflowconv.SidecarPath, err)
		}
	}
	resumed, err := s.pointsHeld(ctx, held)
	if err != nil {
		return nil, err
	}
	var files []string
	for f, err := range s.api.ListArtifacts(ctx, held.Info.RunID, "") {
		if err != nil {
			return nil, fmt.Errorf("listing the files of the copy %s: %w", held.Info.RunID, err)
		}
		files = append(files, f.Path)
	}
	rw, err := s.openEntities(ctx, expID, r, held.Info, cov, params, tags, resumed)
	if err != nil {
		return nil, err
	}
	rw.(*writer).heldFiles = files
	return rw, nil
}

// openEntities writes the params, tags and dataset inputs of r into run
// info, links it to its parent and returns its writer; resumed, when not
// nil, holds the points the run holds already (continueRun).
func (s *Sink) openEntities(ctx context.Context, expID string, r schema.Run, info mlflowapi.RunInfo, cov *mlflowconv.Coverage, params []mlflowapi.Param, tags []mlflowapi.Tag, resumed map[string]map[heldPoint]int) (sinks.RunWriter, error) {
	w := &writer{sink: s, expID: expID, held: true, run: info, src: r, cov: cov, keys: map[string]*keyState{}, mlflowKeys: map[string]string{}, written: map[string]bool{}, view: newView(r),
		resumed: resumed, continued: resumed != nil}
	for _, b := range entityBatches(info.RunID, params, tags) {
		if err := s.api.LogBatch(ctx, b); err != nil {
			return nil, fmt.Errorf("writing params and tags: %w", err)
		}
	}
	if err := s.api.LogInputs(ctx, info.RunID, mlflowconv.DatasetInputs(r, cov)); err != nil {
		return nil, fmt.Errorf("writing dataset inputs: %w", err)
	}
	if err := s.linkToParent(ctx, info.RunID, r.Parent); err != nil {
		return nil, err
	}
	return w, nil
}

// linkToParent sets mlflow.parentRunId on a new child run when its parent
// was written already (under its origin, else under a former one). The run is created first and looked up second, and a
// parent links its children when it commits (linkChildren), so whichever of
// the two is written first, the link is made.
func (s *Sink) linkToParent(ctx context.Context, runID string, parent schema.Ref) error {
	if parent.IsZero() {
		return nil
	}
	var found []mlflowapi.Run
	for _, o := range append([]string{parent.String()}, s.FormerKeys(parent)...) {
		runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(o), false)
		if err != nil {
			return fmt.Errorf("looking up the parent run: %w", err)
		}
		if len(runs) > 0 {
			found = runs
			break
		}
	}
	if len(found) == 0 {
		return nil
	}
	return s.api.SetTag(ctx, runID, mlflowapi.TagParentRunID, found[len(found)-1].Info.RunID)
}

// linkChildren points every run naming origin as its parent at runID,
// deleted children too (restored for the write and deleted again: see
// whileActive). A child listed active may be deleted before it is linked:
// a child deleted in the source is deleted by its own commit, as the last
// step, and that commit may run at the same time as this one (and so may
// the deletion of the child's experiment that follows it, which deletes
// its runs too). A link that fails while the child is deleted, as read anew
// after the failure, is therefore retried once through whileActive.
func (s *Sink) linkChildren(ctx context.Context, runID, origin string) error {
	children, err := s.runsTagged(ctx, mlflowconv.TagParentKey, mlflowconv.OriginKey(origin), false)
	if err != nil {
		return fmt.Errorf("looking up child runs: %w", err)
	}
	for _, c := range children {
		if v, _ := c.Tag(mlflowapi.TagParentRunID); v == runID {
			continue
		}
		link := func() error { return s.api.SetTag(ctx, c.Info.RunID, mlflowapi.TagParentRunID, runID) }
		err := s.whileActive(ctx, c, link)
		if err != nil {
			if now, gerr := s.api.GetRun(ctx, c.Info.RunID); gerr == nil && now.Info.LifecycleStage == mlflowapi.StageDeleted {
				err = s.whileActive(ctx, now, link)
			}
		}
		if err != nil {
			return fmt.Errorf("linking child run %s: %w", c.Info.RunID, err)
		}
	}
	return nil
}
