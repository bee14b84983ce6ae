package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.Appender = (*Sink)(nil)

// AppendRun re-opens the run committed earlier from r.Origin, under its
// MLflow run id, to extend it (sinks.Appender). It appends only when the
// server holds one active copy of the run, in experiment expID, committed
// with the mark base.Mark (and, when base names one, with the run id
// base.DestID), and when what changed in the run's metadata is something
// MLflow can change in place: not its start or end time going back, user,
// name, parent, dataset inputs, deletion, nor a param's value (MLflow
// never changes a logged param); else it returns sinks.ErrCannotAppend
// and the engine writes the run anew, superseding this copy.
//
// Before its first write it removes the mark and complete tags,
// so that an append cut short is seen as an incomplete run (FindRun) that
// the next AppendRun refuses. It then uploads the new run.json, logs the
// params added and every tag (removing the tags the run no longer has),
// and returns a writer that adds the points it is given after those held
// (a point at or before a key's last step held, and a point of a system
// metric, whose MLflow key and per-core CPU fold depend on the points
// held, are refused: sinks.ErrCannotAppend), replaces console output, rich values and files
// by what it is given, and at Commit writes a coverage file merging what
// was recorded of the points held (mapped keys, fixups, count) with the
// rest recomputed, then status, end time, the mark and the complete tag
// last, as Commit does for a new run.
func (s *Sink) AppendRun(ctx context.Context, expID string, r schema.Run, base sinks.AppendBase) (_ sinks.RunWriter, err error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	origin := r.Origin.String()
	if r.Deleted {
		return nil, sinks.CannotAppend("the run is deleted in the source")
	}
	if why := viewUnappendable(r); why != "" {
		return nil, sinks.CannotAppend(why)
	}
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin), false)
	if err != nil {
		return nil, err
	}
	if len(runs) != 1 {
		return nil, sinks.CannotAppend(fmt.Sprintf("the server holds %d copies of the run", len(runs)))
	}
	held := runs[0]
	mark, _ := held.Tag(mlflowconv.TagMark)
	switch {
	case base.DestID != "" && held.Info.RunID != base.DestID:
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy is run %s, the ledger recorded %s", held.Info.RunID, base.DestID))
	case held.Info.LifecycleStage != mlflowapi.StageActive:
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s is deleted", held.Info.RunID))
	case held.Info.ExperimentID != expID:
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s is in experiment %s, not %s", held.Info.RunID, held.Info.ExperimentID, expID))
	case !completeRun(held) || mark == "":
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s is incomplete (an earlier write was cut short)", held.Info.RunID))
	case mark != base.Mark:
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s is not the one the ledger recorded (written by another job, or the record of its last commit was lost)", held.Info.RunID))
	}
	info := held.Info
	var prev mlflowconv.Sidecar
	if err := s.readJSON(ctx, info, mlflowconv.SidecarPath, &prev); err != nil {
		return nil, err
	}
	var prevCov mlflowconv.Coverage
	if err := s.readJSON(ctx, info, mlflowconv.CoveragePath, &prevCov); err != nil {
		return nil, err
	}

	cov := &mlflowconv.Coverage{Version: 1, Origin: origin, MetricKeys: map[string]string{}, SystemMetricKeys: map[string]string{},
		ParamKeys: map[string]string{}, TagKeys: map[string]string{}, FileProblems: map[string]string{}}
	params, tags, err := mlflowconv.RunEntities(r, cov)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("run %s: %w", origin, err))
	}
	if _, cut := mlflowconv.Truncate(r.Name, mlflowapi.MaxRunNameLength); cut {
		cov.Truncated = append(cov.Truncated, mlflowconv.Truncation{What: "run name", Length: utf8.RuneCountInString(r.Name)})
	}
	mlflowconv.DatasetInputs(r, cov) // for the coverage: the inputs are held already
	oldParams, oldTags, err := mlflowconv.RunEntities(prev.Run, &mlflowconv.Coverage{MetricKeys: map[string]string{},
		ParamKeys: map[string]string{}, TagKeys: map[string]string{}, FileProblems: map[string]string{}})
	if err != nil {
		return nil, sinks.CannotAppend(fmt.Sprintf("the run.json of the server's copy: %v", err))
	}
	if why := unappendable(prev.Run, r); why != "" {
		return nil, sinks.CannotAppend(why)
	}
	had := map[string]string{}
	for _, p := range oldParams {
		had[p.Key] = p.Value
	}
	var newParams []mlflowapi.Param
	now := map[string]bool{}
	for _, p := range params {
		now[p.Key] = true
		v, ok := had[p.Key]
		switch {
		case !ok:
			newParams = append(newParams, p)
		case v != p.Value:
			return nil, sinks.CannotAppend(fmt.Sprintf("param %q changed, and MLflow never changes a logged param", p.Key))
		}
	}
	for k := range had {
		if !now[k] {
			return nil, sinks.CannotAppend(fmt.Sprintf("param %q is gone from the source, and MLflow never removes a logged param", k))
		}
	}
	keep := map[string]bool{}
	for _, t := range tags {
		keep[t.Key] = true
	}
	var gone []string
	for _, t := range oldTags {
		if !keep[t.Key] {
			gone = append(gone, t.Key)
		}
	}
	// What the coverage says of the points held stays: the new points add
	// to it.
	if prevCov.MetricKeys != nil {
		cov.MetricKeys = prevCov.MetricKeys
	}
	if prevCov.SystemMetricKeys != nil {
		cov.SystemMetricKeys = prevCov.SystemMetricKeys
	}
	cov.GeneratedMetrics, cov.FoldedPoints = prevCov.GeneratedMetrics, prevCov.FoldedPoints
	cov.Fixups, cov.FixupsDropped, cov.Points = prevCov.Fixups, prevCov.FixupsDropped, prevCov.Points
	if len(prevCov.Rebased) > 0 {
		return nil, sinks.CannotAppend("the copy holds re-based steps, which depend on the whole step metric series")
	}
	// Summary points written before stay, recorded, so the source still
	// leaves them out; writeSummary adds none while appending.
	cov.SummaryPoints = prevCov.SummaryPoints
	prevSummary := map[string]float64{}
	if nums, _, _, _ := mlflowconv.SummaryValues(prev.Run.Summary); len(nums) > 0 {
		for _, n := range nums {
			prevSummary[n.Key] = n.Value
		}
	}
	sidecar, err := json.MarshalIndent(mlflowconv.Sidecar{Version: 1, Run: r}, "", "  ")
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("run %s: encoding run.json: %w", origin, err))
	}

	if err := s.acquireExperiment(ctx, expID); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = s.releaseExperiment(context.WithoutCancel(ctx), expID)
		}
	}()
	// Incomplete from here on: the mark first, so that a kill between the
	// two deletes leaves a run the next append refuses.
	for _, k := range []string{mlflowconv.TagMark, mlflowconv.TagComplete} {
		if err := s.api.DeleteTag(ctx, info.RunID, k); err != nil {
			return nil, fmt.Errorf("marking run %s incomplete: %w", info.RunID, err)
		}
	}
	if err := s.api.UploadBytes(ctx, info.ArtifactURI, mlflowconv.SidecarPath, sidecar); err != nil {
		return nil, fmt.Errorf("uploading %s: %w", mlflowconv.SidecarPath, err)
	}
	for _, b := range entityBatches(info.RunID, newParams, tags) {
		if err := s.api.LogBatch(ctx, b); err != nil {
			return nil, fmt.Errorf("writing params and tags: %w", err)
		}
	}
	for _, k := range gone {
		if err := s.api.DeleteTag(ctx, info.RunID, k); err != nil {
			return nil, fmt.Errorf("removing tag %q (gone from the source): %w", k, err)
		}
	}
	return &writer{sink: s, expID: expID, held: true, run: info, src: r, cov: cov, base: base.LastStep, prevSummary: prevSummary,
		keys: map[string]*keyState{}, mlflowKeys: map[string]string{}, written: map[string]bool{}, view: newView(r)}, nil
}

// unappendable says what changed between the run as copied (was) and as
// the source holds it now (is) that MLflow cannot change in place, or "".
func unappendable(was, is schema.Run) string {
	switch {
	case !was.Start.Equal(is.Start):
		return "its start time changed"
	case !was.End.IsZero() && is.End.IsZero():
		return "it ended before and is running again"
	case was.User != is.User:
		return "its user changed"
	case was.Name != is.Name:
		return "its name changed"
	case was.Parent != is.Parent:
		return "its parent changed"
	case was.Experiment != is.Experiment:
		return "it moved to another experiment"
	case !reflect.DeepEqual(was.Inputs, is.Inputs):
		return "its dataset inputs changed"
	}
	return ""
}

// readJSON decodes the run's artifact rel into v.
func (s *Sink) readJSON(ctx context.Context, info mlflowapi.RunInfo, rel string, v any) error {
	body, err := s.api.OpenArtifact(ctx, info.RunID, info.ArtifactURI, rel)
	if err != nil {
		if mlflowapi.IsNotFound(err) {
			return sinks.CannotAppend(fmt.Sprintf("the server's copy %s has no %s", info.RunID, rel))
		}
		return fmt.Errorf("reading %s of run %s: %w", rel, info.RunID, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("reading %s of run %s: %w", rel, info.RunID, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return sinks.CannotAppend(fmt.Sprintf("%s of run %s: %v", rel, info.RunID, err))
	}
	return nil
}

// viewUnappendable says why the MLflow view of a W&B run (see view) cannot
// be extended in place, or "": points plotted against a step metric are
// re-based with the whole step metric series in hand. (Summary values that
// would need points of their own are refused at commit, see writeSummary.)
func viewUnappendable(r schema.Run) string {
	if !mlflowconv.StepAxesOf(r).Empty() {
		return "metrics plotted against a W&B step metric are re-based with the whole step series"
	}
	return ""
}
