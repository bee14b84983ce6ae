package mlflowconv

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// The mapping of MLflow's native experiments and runs onto the schema,
// shared by every reader of MLflow (sources/mlflow through the REST API,
// and the readers of MLflow's own stores), so that the same run reads the
// same whichever way it is reached.

// mappedTags are MLflow tags the source turns into schema.Run fields; they
// are not repeated as tags.
var mappedTags = map[string]bool{
	mlflowapi.TagRunName: true, mlflowapi.TagUser: true, mlflowapi.TagNote: true,
	mlflowapi.TagParentRunID: true, mlflowapi.TagGitCommit: true, mlflowapi.TagGitRepo: true,
	mlflowapi.TagSourceName: true,
}

// MsTime converts MLflow milliseconds since the epoch; 0 is the zero time.
func MsTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// RunStatus maps an MLflow run status onto the schema's (RUNNING and
// SCHEDULED are running).
func RunStatus(s string) schema.RunStatus {
	switch s {
	case "FINISHED":
		return schema.StatusFinished
	case "FAILED":
		return schema.StatusFailed
	case "KILLED":
		return schema.StatusKilled
	}
	return schema.StatusRunning // RUNNING, SCHEDULED
}

// NativeRun maps an MLflow run runferry did not write (or whose sidecar is
// gone) onto schema.Run: name, user, notes, git commit and remote, program,
// group, job type, host, labels, parent, params and the remaining tags (not
// status, times, lifecycle or inputs). tags are the run's tags by key; ref
// makes the origin of one of the store's run ids. Every reader of MLflow
// (its REST API, its stores read directly) maps runs through it, so that
// the same run reads the same whichever way it is reached.
func NativeRun(r mlflowapi.Run, tags map[string]string, ref func(id string) schema.Ref) schema.Run {
	run := schema.Run{
		Origin: ref(r.Info.RunID),
		Name:   r.Info.RunName,
		User:   r.Info.UserID,
		Notes:  tags[mlflowapi.TagNote], GitCommit: tags[mlflowapi.TagGitCommit],
		GitRemote: tags[mlflowapi.TagGitRepo], Program: tags[mlflowapi.TagSourceName],
		Group: FieldTag(tags, TagGroup), JobType: FieldTag(tags, TagJobType),
		Host: FieldTag(tags, TagHost),
	}
	if o, ok := schema.ParseRef(tags[TagOrigin]); ok {
		run.Origin = o
	}
	if run.Name == "" {
		run.Name = tags[mlflowapi.TagRunName]
	}
	if u := tags[mlflowapi.TagUser]; u != "" {
		run.User = u
	}
	if p, ok := schema.ParseRef(lookup(tags, TagParent)); ok {
		run.Parent = p
	} else if id := tags[mlflowapi.TagParentRunID]; id != "" {
		run.Parent = ref(id)
	}
	run.Labels = LabelsFromTags(tags)
	labelTag := map[string]bool{}
	for _, l := range run.Labels {
		labelTag[LabelTagKey(l)] = tags[LabelTagKey(l)] == LabelValue
	}
	for _, p := range r.Data.Params {
		run.Params = append(run.Params, schema.Param{Key: p.Key, Value: p.Value})
	}
	for k, v := range tags {
		if !Bookkeeping(k) && !mappedTags[k] && !fieldTag(k) && !labelTag[k] {
			run.Tags = append(run.Tags, schema.Tag{Key: k, Value: v})
		}
	}
	return run
}

// fieldTag reports whether an MLflow tag holds a run field of W&B's (group,
// job type, host, the list of W&B tags), under its current or former name.
func fieldTag(k string) bool {
	switch k {
	case TagGroup, TagJobType, TagHost, TagLabels,
		FormerTagGroup, FormerTagJobType, FormerTagHost, FormerTagLabels:
		return true
	}
	return false
}

// NativeExperiment maps an MLflow experiment onto the schema: origin
// (runferry.origin when runferry wrote it), name, deleted state, creation
// time, description (mlflow.note.content) and the other tags, runferry's
// bookkeeping left out.
func NativeExperiment(e mlflowapi.Experiment, name string, origin schema.Ref) schema.Experiment {
	x := schema.Experiment{Origin: origin, Name: name,
		Deleted: e.LifecycleStage == mlflowapi.StageDeleted}
	if e.CreationTime > 0 {
		x.CreatedAt = time.UnixMilli(e.CreationTime)
	}
	tags := map[string]string{}
	for _, t := range e.Tags {
		tags[t.Key] = t.Value
	}
	if ref, ok := schema.ParseRef(tags[TagOrigin]); ok {
		x.Origin = ref
	}
	// What MLflow shows is what is compared: the name (less the prefix)
	// even for an experiment runferry wrote. Only the creation time, which
	// MLflow sets itself, comes from runferry's tag.
	if v, ok := LookupTag(tags, TagExpCreatedAt); ok && lookup(tags, TagManaged) == "true" {
		x.CreatedAt = time.Time{}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			x.CreatedAt = t.UTC()
		}
	}
	x.Description = tags[mlflowapi.TagNote]
	keys := map[string]string{}
	_ = json.Unmarshal([]byte(lookup(tags, TagExpTagKeys)), &keys)
	for k, v := range tags {
		if Bookkeeping(k) || k == mlflowapi.TagNote {
			continue
		}
		if orig, ok := keys[k]; ok {
			k = orig
		}
		x.Tags = append(x.Tags, schema.Tag{Key: k, Value: v})
	}
	x.Canonicalize()
	return x
}

func lookup(tags map[string]string, key string) string {
	v, _ := LookupTag(tags, key)
	return v
}

// RegistryTags splits the tags of a registered model or model version into
// the user's and runferry's (keys under "runferry."), and, when runferry
// recorded a creation time (TagCreatedAt), sets *created to it.
func RegistryTags(tags []mlflowapi.Tag, created *time.Time) (user []schema.Tag, own map[string]string) {
	own = map[string]string{}
	for _, t := range tags {
		if strings.HasPrefix(t.Key, "runferry.") {
			own[t.Key] = t.Value
			continue
		}
		user = append(user, schema.Tag{Key: t.Key, Value: t.Value})
	}
	if v, ok := own[TagCreatedAt]; ok {
		*created = time.Time{}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			*created = t.UTC()
		}
	}
	return user, own
}

// RunPath returns the path of a model version's source inside the files
// of run runID, whose artifact root is artifactURI: source is
// "runs:/RUN_ID/PATH" or lies under artifactURI. It returns "" for a
// source elsewhere.
func RunPath(source, runID, artifactURI string) string {
	if p, ok := strings.CutPrefix(source, "runs:/"+runID+"/"); ok {
		return strings.Trim(p, "/")
	}
	if artifactURI != "" {
		if p, ok := strings.CutPrefix(source, strings.TrimSuffix(artifactURI, "/")+"/"); ok {
			return strings.Trim(p, "/")
		}
	}
	return ""
}
