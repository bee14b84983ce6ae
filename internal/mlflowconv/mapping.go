package mlflowconv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// RunEntities maps a run's params, config, tags and metadata fields onto
// MLflow params and tags, recording in cov (whose key maps must not be nil)
// what had to change: mapped keys, truncated values, config keys not
// written as params. Explicit params win over flattened config keys; user
// tags win over tags derived from fields. W&B's define_metric tags
// (IsStepAxisTag) are folded into one TagStepMetric tag, and string summary
// values become SummaryTagPrefix tags (see SummaryValues). The MLflow source calls it on a
// run's sidecar to know what the sink wrote. It maps as the current
// SidecarVersion does; RunEntitiesOf maps as an earlier one did.
func RunEntities(r schema.Run, cov *Coverage) ([]mlflowapi.Param, []mlflowapi.Tag, error) {
	return RunEntitiesOf(r, cov, SidecarVersion)
}

// RunEntitiesOf is RunEntities as the sink of the given SidecarVersion
// mapped: version 1 wrote each W&B fact as its own tag and the W&B tags'
// list as TagLabels; version 2 folds the facts a user does not filter by
// into TagDetails (IsDetailTag) and leaves TagLabels out.
func RunEntitiesOf(r schema.Run, cov *Coverage, version int) ([]mlflowapi.Param, []mlflowapi.Tag, error) {
	var params []mlflowapi.Param
	seen := map[string]bool{}
	for _, p := range r.Params {
		k := RecordKey(p.Key, cov.ParamKeys)
		v, cut := Truncate(p.Value, mlflowapi.MaxParamValueLength)
		if cut {
			cov.Truncated = append(cov.Truncated, Truncation{What: "param", Key: p.Key, Length: runeLen(p.Value)})
		}
		seen[k] = true
		params = append(params, mlflowapi.Param{Key: k, Value: v})
	}
	flat, err := FlattenConfig(r.Config)
	if err != nil {
		return nil, nil, err
	}
	for _, p := range flat {
		k, changed := MapKey(p.Key)
		if seen[k] || changed || runeLen(p.Value) > mlflowapi.MaxParamValueLength {
			cov.ConfigNotParams = append(cov.ConfigNotParams, p.Key)
			continue
		}
		seen[k] = true
		params = append(params, mlflowapi.Param{Key: k, Value: p.Value})
	}

	var tags []mlflowapi.Tag
	user := map[string]bool{}
	for _, t := range r.Tags {
		if IsStepAxisTag(t.Key) {
			continue // folded into TagStepMetric
		}
		if version >= 2 && IsDetailTag(t.Key) {
			continue // folded into TagDetails
		}
		k := RecordKey(t.Key, cov.TagKeys)
		user[k] = true
		tags = append(tags, tag(cov, t.Key, k, t.Value))
	}
	derived := append(DerivedTagsOf(r, version), viewTags(r)...)
	if d, ok := detailsTag(r.Tags); ok && version >= 2 {
		derived = append(derived, d)
	}
	for _, d := range derived {
		if !user[d.Key] {
			user[d.Key] = true
			tags = append(tags, tag(cov, d.Key, d.Key, d.Value))
		}
	}
	return params, tags, nil
}

func tag(cov *Coverage, orig, key, value string) mlflowapi.Tag {
	v, cut := Truncate(value, mlflowapi.MaxTagValueLength)
	if cut {
		cov.Truncated = append(cov.Truncated, Truncation{What: "tag", Key: orig, Length: runeLen(value)})
	}
	return mlflowapi.Tag{Key: key, Value: v}
}

// RecordKey returns the MLflow form of key, recording a changed key in m.
func RecordKey(key string, m map[string]string) string {
	k, changed := MapKey(key)
	if changed {
		m[k] = key
	}
	return k
}

func runeLen(s string) int { return len([]rune(s)) }

// DerivedTagKeys are the tags runferry writes from schema.Run fields (when
// the run has no user tag of the same key); the MLflow source maps them
// back to those fields. The per-label tags (LabelTagKey) are derived too.
var DerivedTagKeys = []string{
	mlflowapi.TagUser, mlflowapi.TagNote, mlflowapi.TagGitCommit, mlflowapi.TagGitRepo,
	mlflowapi.TagSourceName, TagGroup, TagJobType, TagHost, TagLabels,
}

// SourceTypeLocal is the mlflow.source.type DerivedTags gives a run with a
// program: what MLflow's client sets on every run started outside
// Databricks (a script or a local notebook alike), and what makes MLflow's
// UI show its source icon before the program's name in the runs table and
// the run's overview. It is a view tag: no schema.Run field maps to it, the
// MLflow source leaves it out of a run runferry wrote, and a run whose own
// tags hold mlflow.source.type (an MLflow run: NOTEBOOK, JOB, PROJECT)
// keeps its value. Copies written before it lack the tag; they read back
// the same.
const SourceTypeLocal = "LOCAL"

// DerivedTags maps a run's metadata fields onto tags: MLflow's own for
// user, notes, git and program (with mlflow.source.type, SourceTypeLocal);
// W&B's group, job type, host and tags under "wandb." (see wandbfields.go).
func DerivedTags(r schema.Run) []mlflowapi.Tag { return DerivedTagsOf(r, SidecarVersion) }

// DerivedTagsOf is DerivedTags as the sink of the given SidecarVersion
// wrote them (version 1 also wrote TagLabels).
func DerivedTagsOf(r schema.Run, version int) []mlflowapi.Tag {
	var out []mlflowapi.Tag
	add := func(k, v string) {
		if v != "" {
			out = append(out, mlflowapi.Tag{Key: k, Value: v})
		}
	}
	add(mlflowapi.TagUser, r.User)
	add(mlflowapi.TagNote, r.Notes)
	add(mlflowapi.TagGitCommit, r.GitCommit)
	add(mlflowapi.TagGitRepo, r.GitRemote)
	add(mlflowapi.TagSourceName, r.Program)
	if r.Program != "" {
		add(mlflowapi.TagSourceType, SourceTypeLocal)
	}
	add(TagGroup, r.Group)
	add(TagJobType, r.JobType)
	add(TagHost, r.Host)
	return append(out, labelTags(r.Labels, version)...)
}

// FlattenConfig flattens a JSON object into params: nested objects join
// their keys with dots; strings are written as they are, numbers as their
// JSON text, booleans as true/false, null as "null", arrays and empty
// objects as compact JSON. The result is sorted by key; keys that flatten
// alike ({"a":{"b":1}} and {"a.b":2} both give "a.b") are each in the
// result, in the order of their object keys sorted bytewise at each level
// (here a's "a.b" first), the same every time, so that RunEntities writes
// the same one as the param on every copy and sync (it was Go's map
// order: a later sync could find the param "changed").
func FlattenConfig(config json.RawMessage) ([]schema.Param, error) {
	if len(bytes.TrimSpace(config)) == 0 || string(bytes.TrimSpace(config)) == "null" {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(config, &obj); err != nil {
		return nil, fmt.Errorf("config is not a JSON object: %w", err)
	}
	var out []schema.Param
	var walk func(prefix string, obj map[string]json.RawMessage)
	walk = func(prefix string, obj map[string]json.RawMessage) {
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			raw := obj[k]
			key := prefix + k
			raw = bytes.TrimSpace(raw)
			var nested map[string]json.RawMessage
			if len(raw) > 0 && raw[0] == '{' && json.Unmarshal(raw, &nested) == nil && len(nested) > 0 {
				walk(key+".", nested)
				continue
			}
			out = append(out, schema.Param{Key: key, Value: scalarText(raw)})
		}
	}
	walk("", obj)
	slices.SortStableFunc(out, func(a, b schema.Param) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func scalarText(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) == nil {
		return buf.String()
	}
	return string(raw)
}
