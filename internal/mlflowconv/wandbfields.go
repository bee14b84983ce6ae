package mlflowconv

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// Tags for W&B's own run fields, named as a W&B user looks for them. Every
// W&B tag (schema.Run.Labels) becomes its own tag TagLabelPrefix+name with
// the value "true", so that runs can be filtered by it in MLflow
// (tags.`wandb.tag.baseline` = 'true'), plus the whole list in TagLabels.
const (
	TagGroup       = "wandb.group"
	TagJobType     = "wandb.job_type"
	TagHost        = "wandb.host" // personal data: written only when asked (see transform.DropPersonal)
	TagLabels      = "wandb.tags" // JSON array of the run's W&B tags, in their order (SidecarVersion 1 only)
	TagLabelPrefix = "wandb.tag."
	LabelValue     = "true"
)

// Former names of the field tags, written by versions before 11 and still
// read by the MLflow source.
const (
	FormerTagGroup   = "runferry.group"
	FormerTagJobType = "runferry.job_type"
	FormerTagHost    = "runferry.host"
	FormerTagLabels  = "runferry.labels"
)

// TagDetails holds, as one JSON object (key without "wandb." -> value,
// keys sorted), the run's W&B tags a user does not filter runs by
// (IsDetailTag): python, sdk_version, os, cpu_count, exit_code, ...; since
// SidecarVersion 2. Earlier copies wrote each as its own tag.
const TagDetails = "wandb.details"

// filterTags are the W&B tags written as tags of their own: what a user
// filters runs by. wandb.state is among them: W&B's state (crashed,
// killed, failed, unknown for a damaged log) says more than MLflow's
// FAILED, and W&B users filter by it.
var filterTags = map[string]bool{
	"wandb.entity": true, "wandb.project": true, "wandb.run_id": true, "wandb.sweep_id": true, "wandb.url": true,
	"wandb.state": true, TagGroup: true, TagJobType: true, TagHost: true,
}

// IsDetailTag reports whether a run's tag is one of W&B's facts folded
// into TagDetails (from SidecarVersion 2): a key under "wandb." that is not
// a W&B tag (TagLabelPrefix), a summary value, a define_metric tag, nor
// one a user filters runs by (entity, project, run id, sweep id, url,
// state, group, job type, host).
func IsDetailTag(key string) bool {
	rest, ok := strings.CutPrefix(key, "wandb.")
	return ok && rest != "" && !filterTags[key] && !strings.HasPrefix(key, TagLabelPrefix) &&
		!strings.HasPrefix(key, SummaryTagPrefix) && !IsStepAxisTag(key) && key != TagLabels && key != TagDetails
}

// detailsTag returns TagDetails for the run's detail tags, false when it
// has none.
func detailsTag(tags []schema.Tag) (mlflowapi.Tag, bool) {
	d := map[string]string{}
	for _, t := range tags {
		if IsDetailTag(t.Key) {
			d[strings.TrimPrefix(t.Key, "wandb.")] = t.Value
		}
	}
	if len(d) == 0 {
		return mlflowapi.Tag{}, false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // map keys sorted
	return mlflowapi.Tag{Key: TagDetails, Value: strings.TrimSuffix(b.String(), "\n")}, true
}

// LabelTagKey returns the tag key of the W&B tag label: TagLabelPrefix +
// label, or its MapKey form when MLflow would reject that key.
func LabelTagKey(label string) string {
	k, _ := MapKey(TagLabelPrefix + label)
	return k
}

// labelTags returns the tags of a run's W&B tags: one per label, then the
// list (SidecarVersion 1 only: TagLabels repeated the per-label tags).
func labelTags(labels []string, version int) []mlflowapi.Tag {
	if len(labels) == 0 {
		return nil
	}
	var out []mlflowapi.Tag
	seen := map[string]bool{}
	for _, l := range labels {
		if k := LabelTagKey(l); !seen[k] {
			seen[k] = true
			out = append(out, mlflowapi.Tag{Key: k, Value: LabelValue})
		}
	}
	if version >= 2 {
		return out
	}
	b, _ := json.Marshal(labels)
	return append(out, mlflowapi.Tag{Key: TagLabels, Value: string(b)})
}

// LabelsFromTags returns the W&B tags a run's MLflow tags hold: the list in
// TagLabels (or FormerTagLabels), else the names of the per-label tags.
func LabelsFromTags(tags map[string]string) []string {
	var out []string
	for _, k := range []string{TagLabels, FormerTagLabels} {
		if v, ok := tags[k]; ok {
			_ = json.Unmarshal([]byte(v), &out)
			return out
		}
	}
	for k := range tags {
		if l, ok := strings.CutPrefix(k, TagLabelPrefix); ok && tags[k] == LabelValue {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// FieldTag returns the tag of a run field written under key, under its
// current name or the name versions before 11 used.
func FieldTag(tags map[string]string, key string) string {
	if v, ok := tags[key]; ok {
		return v
	}
	former := map[string]string{TagGroup: FormerTagGroup, TagJobType: FormerTagJobType, TagHost: FormerTagHost}
	return tags[former[key]]
}

// UpgradeFormerTags renames, in the tags of a run copied by a version
// before 11, the field tags to their current names (FormerTagGroup to
// TagGroup, ...) and adds the per-label tags that version did not write,
// so that such a run reads as if written now. The bookkeeping tags are
// looked up under both names instead (LookupTag).
func UpgradeFormerTags(tags map[string]string) {
	for _, p := range [][2]string{{FormerTagGroup, TagGroup}, {FormerTagJobType, TagJobType}, {FormerTagHost, TagHost}, {FormerTagLabels, TagLabels}} {
		v, ok := tags[p[0]]
		if _, now := tags[p[1]]; !ok || now {
			continue
		}
		delete(tags, p[0])
		tags[p[1]] = v
		if p[1] == TagLabels {
			var labels []string
			_ = json.Unmarshal([]byte(v), &labels)
			for _, t := range labelTags(labels, 1) {
				if _, ok := tags[t.Key]; !ok {
					tags[t.Key] = t.Value
				}
			}
		}
	}
}
