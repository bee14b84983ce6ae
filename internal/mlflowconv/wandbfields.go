package mlflowconv

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// Tags for W&B's own run fields, named as a W&B user looks for them. Every
// W&B tag (schema.Run.Labels) becomes its own tag TagLabelPrefix+name with
// the value "true", so that runs can be filtered by it in MLflow
// (tags.`wandb.tag.baseline` = 'true'), plus the whole list in TagLabels.
const (
	TagGroup       = "wandb.group"
	TagJobType     = "wandb.job_type"
	TagHost        = "wandb.host" // personal data: written only when asked (see transform.DropPersonal)
	TagLabels      = "wandb.tags" // JSON array of the run's W&B tags, in their order
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

// LabelTagKey returns the tag key of the W&B tag label: TagLabelPrefix +
// label, or its MapKey form when MLflow would reject that key.
func LabelTagKey(label string) string {
	k, _ := MapKey(TagLabelPrefix + label)
	return k
}

// labelTags returns the tags of a run's W&B tags: one per label, then the
// list.
func labelTags(labels []string) []mlflowapi.Tag {
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
			for _, t := range labelTags(labels) {
				if _, ok := tags[t.Key]; !ok {
					tags[t.Key] = t.Value
				}
			}
		}
	}
}
