package mlflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var (
	_ sinks.Appender   = (*Sink)(nil)
	_ sinks.BaseFinder = (*Sink)(nil)
)

// FindBase implements sinks.BaseFinder: the one active copy of origin,
// complete or cut short during an append (which AppendRun continues), its
// mark tag and the cursors its coverage file holds (for a cut-short
// append, the coverage file of the copy it extends).
func (s *Sink) FindBase(ctx context.Context, origin schema.Ref) (destID, mark string, cursors []byte, ok bool, err error) {
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin.String()), false)
	if err != nil || len(runs) != 1 {
		return "", "", nil, false, err
	}
	held := runs[0]
	mark, _ = held.Tag(mlflowconv.TagMark)
	appending, _ := held.Tag(mlflowconv.TagAppending)
	// A copy an append cut short is found too: AppendRun continues it.
	resumable := !completeRun(held) && mark != "" && appending == mark
	if held.Info.LifecycleStage != mlflowapi.StageActive || !completeRun(held) && !resumable || mark == "" {
		return "", "", nil, false, nil
	}
	coveragePath := mlflowconv.CoveragePath
	if resumable {
		coveragePath = mlflowconv.AppendBaseDir + "coverage.json"
	}
	var cov mlflowconv.Coverage
	if _, err := s.readJSON(ctx, held.Info, coveragePath, &cov); err != nil {
		if errors.Is(err, sinks.ErrCannotAppend) {
			return "", "", nil, false, nil
		}
		return "", "", nil, false, err
	}
	if len(cov.Cursors) == 0 {
		return "", "", nil, false, nil
	}
	return held.Info.RunID, mark, cov.Cursors, true, nil
}

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
// Before its first write (see below) it keeps the copy's run.json and coverage.json
// under mlflowconv.AppendBaseDir, sets mlflowconv.TagAppending to the mark
// and removes the complete tag, so that an append cut short is seen as an
// incomplete run (FindRun) that the next AppendRun with the same mark
// continues in place: from the kept files, without sending again the
// points the cut-short append wrote (pointsWritten). It then uploads the new run.json, logs the
// params added and every tag (removing the tags the run no longer has),
// and returns a writer that adds the points it is given after those held
// (see appendable and appendPlan.point for the points refused:
// sinks.ErrCannotAppend; system metrics keep the MLflow keys the copy gave
// them, and new per-core CPU samples extend the CPU mean and the folded
// points file), replaces console output, rich values and files
// by what it is given, and at Commit writes a coverage file merging what
// was recorded of the points held (mapped keys, fixups, count) with the
// rest recomputed, then status, end time, the mark and the complete tag
// last, as Commit does for a new run.
//
// An append that holds nothing the copy does not writes nothing at all
// (sinks.UnchangedReporter): when the run's run.json, params and tags
// equal the copy's, the steps before the first write above wait for the
// append's first write to the server (appendStart, writer.begin), and
// when no point, file, console line or rich value is written and the
// coverage file, status, end time, name, mark and complete tag would be
// the copy's, Commit writes nothing and reports the run unchanged
// (writer.commitUnchanged). A run given without a fingerprint (a part of
// it could not be read) or RUNNING is always written.
func (s *Sink) AppendRun(ctx context.Context, expID string, r schema.Run, base sinks.AppendBase) (_ sinks.RunWriter, err error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	origin := r.Origin.String()
	if r.Deleted {
		return nil, sinks.CannotAppend(deletedUnappendable)
	}
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin), false)
	if err != nil {
		return nil, err
	}
	// None under the origin: the copy an earlier runferry wrote under a
	// former origin (sinks.FormerOriginsSetter) is extended and takes the
	// new origin, keeping its run id.
	former := ""
	for _, f := range s.FormerKeys(r.Origin) {
		if len(runs) > 0 {
			break
		}
		if runs, err = s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(f), false); err != nil {
			return nil, err
		}
		former = f
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
	case mark == "" || mark != base.Mark:
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s is not the one the ledger recorded (written by another job, or the record of its last commit was lost)", held.Info.RunID))
	}
	appending, _ := held.Tag(mlflowconv.TagAppending)
	// An append from this very copy was cut short: it is continued.
	resuming := !completeRun(held) && appending == base.Mark
	if !completeRun(held) && !resuming {
		return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s is incomplete (an earlier write was cut short)", held.Info.RunID))
	}
	info := held.Info
	// The copy appended to: its run.json and coverage.json, or, resuming,
	// those kept when the append cut short began.
	sidecarPath, coveragePath := mlflowconv.SidecarPath, mlflowconv.CoveragePath
	if resuming {
		sidecarPath, coveragePath = mlflowconv.AppendBaseDir+"run.json", mlflowconv.AppendBaseDir+"coverage.json"
	}
	var prev mlflowconv.Sidecar
	prevRaw, err := s.readJSON(ctx, info, sidecarPath, &prev)
	if err != nil {
		return nil, err
	}
	var prevCov mlflowconv.Coverage
	prevCovRaw, err := s.readJSON(ctx, info, coveragePath, &prevCov)
	if err != nil {
		return nil, err
	}

	cov := &mlflowconv.Coverage{Version: 1, Origin: origin, MetricKeys: map[string]string{}, SystemMetricKeys: map[string]string{},
		ParamKeys: map[string]string{}, TagKeys: map[string]string{}, FileProblems: map[string]string{}, FileDigests: map[string]string{}}
	_, tags, err := mlflowconv.RunEntities(r, cov)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("run %s: %w", origin, err))
	}
	if _, cut := mlflowconv.Truncate(r.Name, mlflowapi.MaxRunNameLength); cut {
		cov.Truncated = append(cov.Truncated, mlflowconv.Truncation{What: "run name", Length: utf8.RuneCountInString(r.Name)})
	}
	mlflowconv.DatasetInputs(r, cov) // for the coverage: the inputs are held already
	heldKeys := make([]string, 0, len(held.Data.Metrics))
	for _, m := range held.Data.Metrics {
		heldKeys = append(heldKeys, m.Key)
	}
	if former != "" {
		// The copy names the former origins of the run's experiment and
		// parent: they are the same as the new ones.
		prev.Run.Experiment = s.renamed(prev.Run.Experiment, r.Experiment)
		prev.Run.Parent = s.renamed(prev.Run.Parent, r.Parent)
	}
	app, why := appendable(prev.Run, prev.Version, r, prevCov, base.LastStep, heldKeys, s.cfg.PerCoreCPU)
	if why != "" {
		return nil, sinks.CannotAppend(why)
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
	cov.ConvertedMetrics, cov.ConvertedPoints = prevCov.ConvertedMetrics, prevCov.ConvertedPoints
	cov.Fixups, cov.FixupsDropped, cov.Points = prevCov.Fixups, prevCov.FixupsDropped, prevCov.Points
	// Summary points written before stay, recorded, so the source still
	// leaves them out; writeSummary adds none while appending.
	// A new history point stored as one of them takes its row (see
	// takeHeldSummary).
	cov.SummaryPoints = slices.Clone(prevCov.SummaryPoints)
	// The points held re-based stay so (appendPlan.wholeSeries refuses
	// any new point).
	cov.Rebased = slices.Clone(prevCov.Rebased)
	sidecar, err := json.MarshalIndent(mlflowconv.Sidecar{Version: mlflowconv.SidecarVersion, Run: r}, "", "  ")
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
	app.logsUntrusted = resuming
	var resumed map[string]map[heldPoint]int
	if resuming {
		if resumed, err = s.pointsWritten(ctx, held, app, prevCov); err != nil {
			return nil, err
		}
	}
	start := &appendStart{info: info, prevRaw: prevRaw, prevCovRaw: prevCovRaw, mark: base.Mark, former: former, origin: origin,
		resuming: resuming, sidecar: sidecar, batches: entityBatches(info.RunID, app.newParams, tags), goneTags: app.goneTags,
		heldTags: map[string]string{}}
	for _, t := range held.Data.Tags {
		start.heldTags[t.Key] = t.Value
	}
	if !start.quiet(r, tags, len(app.newParams)) {
		if err := s.startAppend(ctx, start); err != nil {
			return nil, err
		}
		start.begun = true
	}
	return &writer{sink: s, expID: expID, held: true, run: info, src: r, cov: cov, app: app, resumed: resumed, start: start,
		keys: map[string]*keyState{}, mlflowKeys: maps.Clone(app.mlflowKeys), written: map[string]bool{}, view: newView(r),
		heldSummary: summaryIndex(cov.SummaryPoints)}, nil
}

// renamed returns now when was is one of its former origins
// (sinks.FormerOriginsSetter), else was.
func (s *Sink) renamed(was, now schema.Ref) schema.Ref {
	if slices.Contains(s.FormerOf(now), was) {
		return now
	}
	return was
}

// unappendable says what changed between the run as copied (was) and as
// the source holds it now (is) that MLflow cannot change in place, or "".
// A new name is no such change: the append's runs/update sets it (see
// appendName).
func unappendable(was, is schema.Run) string {
	switch {
	case !sameStart(was.Start, is.Start):
		return "its start time changed"
	case !was.End.IsZero() && is.End.IsZero():
		return "it ended before and is running again"
	case was.User != is.User:
		return "its user changed"
	case was.Parent != is.Parent:
		return "its parent changed"
	case was.Experiment != is.Experiment:
		return "it moved to another experiment"
	case !reflect.DeepEqual(was.Inputs, is.Inputs):
		return "its dataset inputs changed"
	}
	return ""
}

// sameStart says whether a and b are one run's start time: equal, or
// equal to the second where one of them has whole seconds only. The W&B
// cloud gives a run's start to the second (docs/WANDB-CLOUD.md, "the W&B
// API gives times to the second"), its run folder to the millisecond, and
// the same run copied from both is one run, appended to in place, not
// written again under a new MLflow run id. MLflow keeps the start time it
// was first given (runs/update cannot change it).
func sameStart(a, b time.Time) bool {
	if a.Equal(b) {
		return true
	}
	whole := func(t time.Time) bool { return t.Nanosecond() == 0 }
	return (whole(a) || whole(b)) && a.Truncate(time.Second).Equal(b.Truncate(time.Second))
}

// readJSON decodes the run's artifact rel into v, and returns its bytes.
func (s *Sink) readJSON(ctx context.Context, info mlflowapi.RunInfo, rel string, v any) ([]byte, error) {
	body, err := s.api.OpenArtifact(ctx, info.RunID, info.ArtifactURI, rel)
	if err != nil {
		if mlflowapi.IsNotFound(err) {
			return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s has no %s", info.RunID, rel))
		}
		return nil, fmt.Errorf("reading %s of run %s: %w", rel, info.RunID, err)
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fmt.Errorf("reading %s of run %s: %w", rel, info.RunID, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, sinks.CannotAppend(fmt.Sprintf("%s of run %s: %v", rel, info.RunID, err))
	}
	return b, nil
}

// heldPoint is a point as MLflow stores it, to know it again.
type heldPoint struct {
	step, time int64
	bits       uint64
}

func heldPointOf(m mlflowapi.Metric) heldPoint {
	v := float64(m.Value)
	bits := math.Float64bits(v)
	if math.IsNaN(v) {
		bits = 0x7ff8000000000001
	}
	return heldPoint{step: m.Step, time: m.Timestamp, bits: bits}
}

// pointsWritten returns, by MLflow key, the points an append cut short
// wrote to run held beyond those of the copy it extends (app, prevCov):
// the points of each key after the last step the copy held of it (the
// copy's cursor; for the CPU mean, the last sample folded; for a summary
// point, its step), found in the key's history when its latest step is
// beyond that. The writer does not send them again (see logMetrics). The
// summary points of the copy are not among them (the copy wrote them, and
// a history point stored as one is found by takeHeldSummary).
func (s *Sink) pointsWritten(ctx context.Context, held mlflowapi.Run, app *appendPlan, prevCov mlflowconv.Coverage) (map[string]map[heldPoint]int, error) {
	summaryStep := map[string]int64{}
	for _, p := range prevCov.SummaryPoints {
		summaryStep[p.Key] = max(summaryStep[p.Key], p.Step)
	}
	summaries := summaryIndex(prevCov.SummaryPoints)
	out := map[string]map[heldPoint]int{}
	for _, latest := range held.Data.Metrics {
		src, known := app.mlflowKeys[latest.Key]
		after, bounded := int64(0), true
		switch {
		case !known:
			bounded = false
		case src == "":
			after, bounded = app.coreLast, app.hasCore
		default:
			if last, ok := app.last[src]; ok {
				after = last
			} else if st, ok := summaryStep[src]; ok {
				after = st
			} else {
				bounded = false
			}
		}
		if bounded && latest.Step <= after {
			continue
		}
		for page, err := range s.api.MetricHistory(ctx, held.Info.RunID, latest.Key) {
			if err != nil {
				return nil, fmt.Errorf("reading the history of %s of run %s: %w", latest.Key, held.Info.RunID, err)
			}
			for _, m := range page {
				if bounded && m.Step <= after {
					continue
				}
				if known {
					_, _, bits := storedForm(float64(m.Value), m.Timestamp)
					if id := (summaryID{key: src, step: m.Step, time: m.Timestamp, bits: bits}); summaries[id] > 0 {
						summaries[id]--
						continue // the copy's summary point
					}
				}
				if out[latest.Key] == nil {
					out[latest.Key] = map[heldPoint]int{}
				}
				out[latest.Key][heldPointOf(m)]++
			}
		}
	}
	return out, nil
}

// deletedUnappendable is why a run deleted in the source is written whole
// rather than appended to (MLflow refuses writes to deleted runs).
const deletedUnappendable = "the run is deleted in the source"

// wholeSeries says why a new point of the run as the source holds it now
// (r), appended to a copy whose coverage file holds prevCov, would need the
// run written whole, or "": the MLflow view of a W&B run (see view) whose
// points are plotted against a step metric re-bases them with the whole
// step metric series in hand, and so does a copy holding re-based steps.
// Such a run is still appended to when it brings no new point (a moved
// folder read again, a changed tag or file): nothing is re-based then.
func wholeSeries(r schema.Run, prevCov mlflowconv.Coverage) string {
	switch {
	case !mlflowconv.StepAxesOf(r).Empty():
		return "metrics plotted against a W&B step metric are re-based with the whole step series"
	case len(prevCov.Rebased) > 0:
		return "the copy holds re-based steps, which depend on the whole step metric series"
	}
	return ""
}

// appendPlan is the decision to append a run to the copy held, and what
// the writer checks against while appending (point, summary): every
// reason a run is written whole rather than appended to is decided here.
type appendPlan struct {
	// wholeSeries, when not "", is why any new point refuses the append
	// (see wholeSeries).
	wholeSeries string
	newParams   []mlflowapi.Param // params the copy does not hold yet
	goneTags    []string          // tags the copy holds that the run no longer has
	// last is, by source key, the step of the last point held
	// (sinks.AppendBase.LastStep).
	last map[string]int64
	// prevSummary holds the numeric summary values of the run as copied.
	prevSummary map[string]float64
	// mlflowKeys maps the MLflow keys the copy holds to their source keys
	// ("" for the CPU mean runferry generates), so that a new system
	// metric is never given a key another series holds (see metricKey).
	mlflowKeys map[string]string
	// prevFolded counts the per-core CPU points held in
	// mlflowconv.FoldedMetricsPath, which the new ones are added to.
	prevFolded int64
	// coreLast is the greatest step of a per-core CPU point held, when
	// hasCore: the CPU mean is written up to it already.
	coreLast int64
	hasCore  bool
	// files holds, by source path, the digests of the source files the
	// copy holds (mlflowconv.Coverage.FileDigests): a file given again with
	// the same digest is not sent again, one not given is deleted.
	files map[string]string
	// logs are the segments of console output the copy holds
	// (mlflowconv.Coverage.Segments): a segment given again unchanged is
	// not sent again (see commitLogs), unless logsUntrusted (continuing an
	// append cut short, which may have rewritten any of them).
	logs          []mlflowconv.LogSegment
	logsUntrusted bool
	// outputSegs are the segments of the source's own output.log the copy
	// holds (mlflowconv.Coverage.OutputSegments; none when it holds the
	// file whole): see writeOutputLog.
	outputSegs []mlflowconv.LogSegment
	// generated lists the files the copy holds that runferry generated
	// (mlflowconv.Coverage.Generated).
	generated []string
}

// appendable decides whether the copy held, whose run.json holds prev and
// whose coverage file holds prevCov, can be extended in place to hold r,
// given last, the step of the last point held by source key, heldKeys,
// the MLflow metric keys the copy holds, and perCoreCPU, the sink's
// per-core-cpu option: it returns the plan, or why not. Besides what
// unappendable refuses and a deleted run, MLflow never changes nor
// removes a logged param, and per-core CPU series folded (or kept) by the earlier copy
// must be so again. The points and summary values that come while
// appending are checked by the plan's point and summary.
func appendable(prev schema.Run, prevVersion int, r schema.Run, prevCov mlflowconv.Coverage, last map[string]int64, heldKeys []string, perCoreCPU bool) (*appendPlan, string) {
	if r.Deleted {
		return nil, deletedUnappendable
	}
	scratch := func() *mlflowconv.Coverage {
		return &mlflowconv.Coverage{MetricKeys: map[string]string{}, ParamKeys: map[string]string{}, TagKeys: map[string]string{}, FileProblems: map[string]string{}}
	}
	params, tags, err := mlflowconv.RunEntities(r, scratch())
	if err != nil {
		return nil, fmt.Sprintf("the run's params and tags: %v", err)
	}
	oldParams, oldTags, err := mlflowconv.RunEntitiesOf(prev, scratch(), prevVersion)
	if err != nil {
		return nil, fmt.Sprintf("the run.json of the server's copy: %v", err)
	}
	if why := unappendable(prev, r); why != "" {
		return nil, why
	}
	p := &appendPlan{wholeSeries: wholeSeries(r, prevCov), last: last, prevSummary: map[string]float64{}, files: prevCov.FileDigests,
		logs: prevCov.Segments(), generated: prevCov.Generated, outputSegs: prevCov.OutputSegments}
	had := map[string]string{}
	for _, p := range oldParams {
		had[p.Key] = p.Value
	}
	now := map[string]bool{}
	for _, q := range params {
		now[q.Key] = true
		v, ok := had[q.Key]
		switch {
		case !ok:
			p.newParams = append(p.newParams, q)
		case v != q.Value:
			return nil, fmt.Sprintf("param %q changed, and MLflow never changes a logged param", q.Key)
		}
	}
	for k := range had {
		if !now[k] {
			return nil, fmt.Sprintf("param %q is gone from the source, and MLflow never removes a logged param", k)
		}
	}
	keep := map[string]bool{}
	for _, t := range tags {
		keep[t.Key] = true
	}
	for _, t := range oldTags {
		if !keep[t.Key] {
			p.goneTags = append(p.goneTags, t.Key)
		}
	}
	nums, _, _, _ := mlflowconv.SummaryValues(prev.Summary)
	for _, n := range nums {
		p.prevSummary[n.Key] = n.Value
	}
	// System metrics: the keys held, and the per-core CPU fold.
	p.mlflowKeys, p.prevFolded = map[string]string{}, prevCov.FoldedPoints
	for _, k := range heldKeys {
		src, ok := prevCov.SystemMetricKeys[k]
		if !ok {
			if src, ok = prevCov.MetricKeys[k]; !ok {
				src = k
			}
		}
		if slices.Contains(prevCov.GeneratedMetrics, k) {
			src = prevCov.ConvertedMetrics[k] // "" for the CPU mean
		}
		p.mlflowKeys[k] = src
		sm, sys := mlflowconv.SystemMetricKey(src)
		if sys && sm.Core && !perCoreCPU {
			return nil, fmt.Sprintf("the copy holds the per-core CPU series %q, and the sink now folds them (per-core-cpu changed)", src)
		}
		// A copy by an earlier version may hold a system metric under
		// another name, or in W&B's unit.
		if _, converted := prevCov.ConvertedMetrics[k]; sys && !sm.Core && (sm.Scale != 0) != converted {
			return nil, fmt.Sprintf("the copy holds the system metric %q as %q, and the sink now writes it in MLflow's unit as %q", src, k, sm.Key)
		}
		if sys && !sm.Core && k != sm.Key && k != hashedSystemKey(sm.Key, src) {
			return nil, fmt.Sprintf("the copy holds the system metric %q as %q, and the sink now names it %q", src, k, sm.Key)
		}
	}
	if p.prevFolded > 0 && perCoreCPU {
		return nil, "the copy holds per-core CPU series folded, and the sink now keeps them (per-core-cpu changed)"
	}
	for k, step := range last {
		if sm, sys := mlflowconv.SystemMetricKey(k); sys && sm.Core && (!p.hasCore || step > p.coreLast) {
			p.coreLast, p.hasCore = step, true
		}
	}
	return p, ""
}

// point says why m, the first point of its key given to the writer, cannot
// be appended, or "": any point of a run whose steps are re-based (see
// wholeSeries), a point at or before the key's last step held
// (MLflow may merge it with a point held, as SQL stores collapse exact
// duplicates, which the coverage could not record), or a per-core CPU
// point at or before the last sample folded into the CPU mean held (the
// mean at that step is written already).
func (p *appendPlan) point(m schema.Metric) string {
	if p.wholeSeries != "" {
		return fmt.Sprintf("metric %q: a new point at step %d, and %s", m.Key, m.Step, p.wholeSeries)
	}
	if sm, sys := mlflowconv.SystemMetricKey(m.Key); sys && sm.Core && p.hasCore && m.Step <= p.coreLast {
		return fmt.Sprintf("per-core CPU metric %q: a new point at step %d, whose sample (up to step %d) is folded into %s already", m.Key, m.Step, p.coreLast, mlflowconv.CPUMeanKey)
	}
	if last, held := p.last[m.Key]; held && m.Step <= last {
		return fmt.Sprintf("metric %q: a new point at step %d, not after the last step copied (%d)", m.Key, m.Step, last)
	}
	return ""
}

// summary decides, at commit, for the numeric summary value v of key,
// which history does not end with: skip when it is as the copy left it
// (unchanged and no new points, so its summary point, if any, is held and
// recorded), else why it cannot be appended ("" when it gets its point at
// the new last step, beside the earlier one). logged says the key got new
// points, newHistory that any key did (without one, nothing says where
// the run now ends).
func (p *appendPlan) summary(key string, v float64, logged, newHistory bool) (skip bool, why string) {
	if old, had := p.prevSummary[key]; had && !logged && (old == v || math.IsNaN(old) && math.IsNaN(v)) {
		return true, ""
	}
	if !newHistory {
		return false, fmt.Sprintf("summary value %q changed, and no new history point says where the run now ends", key)
	}
	return false, ""
}
