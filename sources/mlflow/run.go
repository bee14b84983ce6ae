package mlflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// convertRun maps an MLflow run onto schema.Run: from its runferry sidecar
// when it has one (checked against what MLflow holds natively), else from
// MLflow's fields and tags.
func (s *Source) convertRun(ctx context.Context, exp schema.Ref, r mlflowapi.Run) (schema.Run, *runInfo, error) {
	tags := map[string]string{}
	for _, t := range r.Data.Tags {
		tags[t.Key] = t.Value
	}
	if _, former := tags[mlflowconv.FormerTag(mlflowconv.TagSidecar)]; former {
		mlflowconv.UpgradeFormerTags(tags) // copied by a version before 11
	}
	_, complete := mlflowconv.LookupTag(tags, mlflowconv.TagComplete)
	fp, _ := mlflowconv.LookupTag(tags, mlflowconv.TagFingerprint)
	info := &runInfo{id: r.Info.RunID, artifactURI: r.Info.ArtifactURI, experimentID: r.Info.ExperimentID,
		runferry: complete, fingerprint: fp, header: headerDigest(r), changed: r.Info.StartTime}
	if r.Info.EndTime != nil {
		info.changed = max(info.changed, *r.Info.EndTime)
	}
	for _, m := range r.Data.Metrics {
		info.changed = max(info.changed, m.Timestamp)
	}
	var run schema.Run
	var damage []string
	if path, ok := mlflowconv.LookupTag(tags, mlflowconv.TagSidecar); ok {
		side, version, err := s.sidecar(ctx, r, path)
		switch {
		case err == nil:
			run = fromSidecar(side, version, r, tags)
			// The sidecar's damage notes were written by the copy that
			// made this run: carried, not damage of this server.
			run.InheritedDamage = slices.Clone(side.Damage)
		case mlflowapi.IsNotFound(err):
			damage = append(damage, fmt.Sprintf("mlflow run %s: %s is missing; metadata read from MLflow only", r.Info.RunID, path))
			run = mlflowconv.NativeRun(r, tags, s.ref)
		default:
			return run, nil, err
		}
	} else {
		run = mlflowconv.NativeRun(r, tags, s.ref)
	}
	if _, ours := tags[mlflowconv.TagOrigin]; ours && !complete {
		damage = append(damage, fmt.Sprintf("mlflow run %s: an interrupted runferry copy (no %s tag)", r.Info.RunID, mlflowconv.TagComplete))
	}
	run.Damage = append(run.Damage, damage...)
	run.Experiment = exp
	run.Status = mlflowconv.RunStatus(r.Info.Status)
	run.Start, run.End = startTime(run.Start, r.Info.StartTime), time.Time{}
	if r.Info.EndTime != nil {
		run.End = mlflowconv.MsTime(*r.Info.EndTime)
	}
	run.Deleted = r.Info.LifecycleStage == mlflowapi.StageDeleted
	run.Inputs = mlflowconv.SchemaInputs(r) // what MLflow shows, even for a run runferry wrote
	run.Canonicalize()
	return run, info, nil
}

// startTime is a run's start: MLflow's (ms), but the sidecar's (side, zero
// when there is none) when MLflow's is that time cut to the second. MLflow
// keeps the start time a run was created with (runs/update cannot change
// it), so a run first copied from the W&B cloud (times to the second) and
// then appended to from its run folder (to the millisecond) holds the
// finer time in its sidecar only.
func startTime(side time.Time, ms int64) time.Time {
	t := mlflowconv.MsTime(ms)
	if !side.IsZero() && t.Nanosecond() == 0 && side.Truncate(time.Second).Equal(t) {
		return side
	}
	return t
}

// sidecar reads a run's sidecar: the run and the sidecar's version (1
// when it names none).
func (s *Source) sidecar(ctx context.Context, r mlflowapi.Run, path string) (schema.Run, int, error) {
	body, err := s.api.OpenArtifact(ctx, r.Info.RunID, r.Info.ArtifactURI, path)
	if err != nil {
		return schema.Run{}, 0, err
	}
	defer body.Close()
	var side mlflowconv.Sidecar
	if err := json.NewDecoder(body).Decode(&side); err != nil {
		return schema.Run{}, 0, fault.Permanent(fmt.Errorf("mlflow run %s: %s: %v", r.Info.RunID, path, err))
	}
	for _, raw := range []*json.RawMessage{&side.Run.Config, &side.Run.Summary} {
		if string(*raw) == "null" { // how encoding/json writes a nil RawMessage
			*raw = nil
			continue
		}
		// The sink writes the sidecar indented, which indents the JSON
		// held in it; that indentation is not the run's: restore it
		// compact (so that a run copied from a W&B folder or an archive
		// and back holds the bytes it was copied with).
		var b bytes.Buffer
		if err := json.Compact(&b, *raw); err == nil {
			*raw = b.Bytes()
		}
	}
	return side.Run, max(side.Version, 1), nil
}

// fromSidecar restores a runferry run from its sidecar, reading params and
// tags from MLflow (they may have been edited since), as the sidecar's
// version mapped the run (mlflowconv.RunEntitiesOf). What MLflow lets a
// user edit (the run name through runs/update, tags through set-tag and
// delete-tag) is taken as MLflow shows it: a change of the run, not
// damage. What MLflow does not let anyone change (a param's value; a
// param cannot be deleted) but that disagrees with the sidecar is noted
// in Damage.
func fromSidecar(side schema.Run, version int, r mlflowapi.Run, tags map[string]string) schema.Run {
	run := side
	cov := mlflowconv.Coverage{MetricKeys: map[string]string{}, ParamKeys: map[string]string{}, TagKeys: map[string]string{}}
	wantParams, wantTags, err := mlflowconv.RunEntitiesOf(side, &cov, version)
	if err != nil {
		run.Damage = append(run.Damage, fmt.Sprintf("mlflow run %s: %v", r.Info.RunID, err))
		return run
	}
	note := func(format string, args ...any) {
		run.Damage = append(run.Damage, fmt.Sprintf("mlflow run %s: ", r.Info.RunID)+fmt.Sprintf(format, args...))
	}
	// Params: the run's own, then those flattened from its config.
	own := map[string]schema.Param{}
	for _, p := range side.Params {
		k, _ := mlflowconv.MapKey(p.Key)
		own[k] = p
	}
	stored := map[string]string{}
	for _, p := range wantParams {
		stored[p.Key] = p.Value
	}
	nativeFields(&run, side, version, r, tags)
	run.Params = nil
	seen := map[string]bool{}
	for _, p := range r.Data.Params {
		seen[p.Key] = true
		o, isOwn := own[p.Key]
		switch want, written := stored[p.Key]; {
		case written && p.Value == want && isOwn:
			run.Params = append(run.Params, o)
		case written && p.Value == want: // flattened from the config
		case written:
			note("param %q is %q in MLflow but %q in %s", p.Key, p.Value, want, mlflowconv.SidecarPath)
			run.Params = append(run.Params, schema.Param{Key: origKey(o.Key, p.Key), Value: p.Value})
		default: // added in MLflow after the copy
			run.Params = append(run.Params, schema.Param{Key: p.Key, Value: p.Value})
		}
	}
	for k, o := range own {
		if !seen[k] { // what MLflow shows: the param is gone
			note("param %q of %s is missing in MLflow", o.Key, mlflowconv.SidecarPath)
		}
	}
	for k := range stored {
		if _, isOwn := own[k]; !isOwn && !seen[k] {
			note("param %q flattened from the config of %s is missing in MLflow", k, mlflowconv.SidecarPath)
		}
	}
	// Tags: the run's own, then those derived from its fields.
	ownTags := map[string]schema.Tag{}
	folded := func(k string) bool { // written as part of one tag
		return mlflowconv.IsStepAxisTag(k) || version >= 2 && mlflowconv.IsDetailTag(k)
	}
	for _, t := range side.Tags {
		if folded(t.Key) {
			continue // folded into one tag, derived below
		}
		k, _ := mlflowconv.MapKey(t.Key)
		ownTags[k] = t
	}
	storedTags := map[string]string{}
	for _, t := range wantTags {
		storedTags[t.Key] = t.Value
	}
	run.Tags = nil
	seen = map[string]bool{}
	for k, v := range tags {
		o, isOwn := ownTags[k]
		seen[k] = true
		want, written := storedTags[k]
		switch {
		case !isOwn && (mlflowconv.Bookkeeping(k) || k == mlflowapi.TagRunName || k == mlflowapi.TagParentRunID || mlflowconv.MediaTag(k)):
		case written && v == want && isOwn:
			run.Tags = append(run.Tags, o)
		case written && v == want: // derived from a field
		case written: // edited in MLflow: a change
			if isOwn {
				run.Tags = append(run.Tags, schema.Tag{Key: o.Key, Value: v})
			}
		default:
			run.Tags = append(run.Tags, schema.Tag{Key: k, Value: v})
		}
	}
	// An own tag MLflow no longer shows was deleted there: a change, the
	// run is what MLflow shows.
	for _, t := range side.Tags { // shown in MLflow as one mlflowconv.TagStepMetric or TagDetails
		if folded(t.Key) {
			run.Tags = append(run.Tags, t)
		}
	}
	return run
}

// nativeFields sets the run fields MLflow holds itself (the run name and
// the fields written as tags: user, notes, git commit and remote, program,
// group, job type, host, labels) to what MLflow shows. Where MLflow still
// holds what runferry wrote, the sidecar's exact value is kept (it may be
// longer than MLflow allows); where MLflow shows something else (a run
// renamed, a note edited), that is taken: an edit MLflow allows, a change
// of the run, not damage. The sidecar alone supplies what MLflow cannot
// hold: origin, config, summary, parent origin and source damage.
func nativeFields(run *schema.Run, side schema.Run, version int, r mlflowapi.Run, tags map[string]string) {
	wroteName, _ := mlflowconv.Truncate(side.Name, mlflowapi.MaxRunNameLength)
	if v, ok := tags[mlflowapi.TagRunName]; ok && side.Name != "" {
		name := r.Info.RunName
		if name == "" {
			name = v
		}
		if name != wroteName && !slices.ContainsFunc(side.Tags, func(t schema.Tag) bool { return t.Key == mlflowapi.TagRunName }) {
			run.Name = name // renamed in MLflow
		}
	}
	wrote := map[string]string{}
	for _, t := range mlflowconv.DerivedTagsOf(side, version) {
		wrote[t.Key], _ = mlflowconv.Truncate(t.Value, mlflowapi.MaxTagValueLength)
	}
	for _, t := range side.Tags { // a user tag of the same key wins over the field
		if k, _ := mlflowconv.MapKey(t.Key); wrote[k] != "" {
			delete(wrote, k)
		}
	}
	fields := map[string]*string{
		mlflowapi.TagUser: &run.User, mlflowapi.TagNote: &run.Notes, mlflowapi.TagGitCommit: &run.GitCommit,
		mlflowapi.TagGitRepo: &run.GitRemote, mlflowapi.TagSourceName: &run.Program, mlflowconv.TagGroup: &run.Group,
		mlflowconv.TagJobType: &run.JobType, mlflowconv.TagHost: &run.Host,
	}
	for _, k := range mlflowconv.DerivedTagKeys {
		want, shown := wrote[k], tags[k]
		if want == shown || (want == "" && slices.ContainsFunc(side.Tags, func(t schema.Tag) bool { return t.Key == k })) {
			continue
		}
		// Edited in MLflow (set-tag, delete-tag): a change.
		if k == mlflowconv.TagLabels {
			run.Labels = nil
			_ = json.Unmarshal([]byte(shown), &run.Labels)
			continue
		}
		if f := fields[k]; f != nil {
			*f = shown
		}
	}
}

func origKey(orig, mlflowKey string) string {
	if orig != "" {
		return orig
	}
	return mlflowKey
}

// coverageOf returns a runferry run's coverage file, downloaded once; an
// empty one for other runs.
func (s *Source) coverageOf(ctx context.Context, info *runInfo) (*mlflowconv.Coverage, error) {
	info.mu.Lock()
	defer info.mu.Unlock()
	if info.coverage != nil {
		return info.coverage, nil
	}
	cov := &mlflowconv.Coverage{}
	if info.runferry {
		body, err := s.api.OpenArtifact(ctx, info.id, info.artifactURI, mlflowconv.CoveragePath)
		switch {
		case mlflowapi.IsNotFound(err):
		case err != nil:
			return nil, err
		default:
			defer body.Close()
			if err := json.NewDecoder(body).Decode(cov); err != nil {
				return nil, fault.Permanent(fmt.Errorf("mlflow run %s: %s: %v", info.id, mlflowconv.CoveragePath, err))
			}
		}
	}
	info.coverage = cov
	return cov, nil
}
