package archive

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/runferry/runferry/schema"
)

// RunToRow converts r's metadata for runs/.
func RunToRow(r schema.Run, fingerprint string, snapshot int64) RunRow {
	labels, damage := r.Labels, r.Damage
	if labels == nil {
		labels = []string{}
	}
	if damage == nil {
		damage = []string{}
	}
	return RunRow{Run: r.Origin.String(), OriginSystem: r.Origin.System, OriginID: r.Origin.ID,
		Experiment: r.Experiment.String(), Name: r.Name, User: r.User, Status: string(r.Status),
		StartTime: optTime(r.Start), EndTime: optTime(r.End), Labels: jsonText(labels), Notes: r.Notes,
		Parent: r.Parent.String(), Group: r.Group, JobType: r.JobType, Host: r.Host, Program: r.Program,
		GitCommit: r.GitCommit, GitRemote: r.GitRemote, Config: optJSON(r.Config), Summary: optJSON(r.Summary),
		Deleted: r.Deleted, Damage: jsonText(damage), Fingerprint: fingerprint, Snapshot: snapshot}
}

// Decode converts the row back; params and tags are added by the caller.
func (row RunRow) Decode() (schema.Run, error) {
	wrap := func(err error) error { return fmt.Errorf("run %s: %w", row.Run, err) }
	r := schema.Run{Origin: schema.Ref{System: row.OriginSystem, ID: row.OriginID}, Name: row.Name,
		User: row.User, Status: schema.RunStatus(row.Status), Start: fromOptTime(row.StartTime),
		End: fromOptTime(row.EndTime), Notes: row.Notes, Group: row.Group, JobType: row.JobType,
		Host: row.Host, Program: row.Program, GitCommit: row.GitCommit, GitRemote: row.GitRemote,
		Config: fromOptJSON(row.Config), Summary: fromOptJSON(row.Summary), Deleted: row.Deleted}
	var err error
	if r.Experiment, err = parseRef(row.Experiment); err != nil {
		return r, wrap(err)
	}
	if r.Parent, err = parseRef(row.Parent); err != nil {
		return r, wrap(err)
	}
	if err := json.Unmarshal([]byte(row.Labels), &r.Labels); err != nil {
		return r, wrap(fmt.Errorf("labels: %w", err))
	}
	if err := json.Unmarshal([]byte(row.Damage), &r.Damage); err != nil {
		return r, wrap(fmt.Errorf("damage: %w", err))
	}
	if len(r.Labels) == 0 {
		r.Labels = nil
	}
	if len(r.Damage) == 0 {
		r.Damage = nil
	}
	// The archive holds these notes as data of the run: an earlier
	// reader's findings about the original source, not damage of the
	// archive (whose own damage is ErrDamaged).
	r.InheritedDamage = slices.Clone(r.Damage)
	return r, nil
}

// RichValueToRow converts v for rich_values/.
func RichValueToRow(run string, v schema.RichValue) RichValueRow {
	files := v.Files
	if files == nil {
		files = []string{}
	}
	return RichValueRow{Run: run, Key: v.Key, Step: v.Step, Time: v.Time, Type: v.Type, JSON: v.JSON, Files: jsonText(files)}
}

// RichValue converts the row back.
func (row RichValueRow) RichValue() (schema.RichValue, error) {
	v := schema.RichValue{Key: row.Key, Step: row.Step, Time: row.Time, Type: row.Type, JSON: row.JSON}
	if err := json.Unmarshal([]byte(row.Files), &v.Files); err != nil {
		return v, fmt.Errorf("rich value %s@%d of %s: files: %w", row.Key, row.Step, row.Run, err)
	}
	if len(v.Files) == 0 {
		v.Files = nil
	}
	return v, nil
}

// LogToRow converts the seq-th console line for logs/.
func LogToRow(run string, seq int64, l schema.LogLine) LogRow {
	return LogRow{Run: run, Seq: seq, Time: l.Time, Stream: l.Stream, Line: l.Line}
}

// LogLine converts the row back.
func (row LogRow) LogLine() schema.LogLine {
	return schema.LogLine{Time: row.Time, Stream: row.Stream, Line: row.Line}
}

// MetricToRow converts m for metrics/.
func MetricToRow(run string, m schema.Metric) MetricRow {
	return MetricRow{Run: run, Key: m.Key, Step: m.Step, Time: m.Time, Value: m.Value}
}

// Metric converts the row back.
func (row MetricRow) Metric() schema.Metric {
	return schema.Metric{Key: row.Key, Step: row.Step, Time: row.Time, Value: row.Value}
}

// InputToRow converts a dataset input for inputs/.
func InputToRow(run string, in schema.DatasetInput) InputRow {
	tags := make([]kv, len(in.Tags))
	for i, t := range in.Tags {
		tags[i] = kv{t.Key, t.Value}
	}
	return InputRow{Run: run, Name: in.Name, Digest: in.Digest, SourceType: in.SourceType, Source: in.Source,
		Schema: in.Schema, Profile: in.Profile, Tags: jsonText(tags)}
}

// DatasetInput converts the row back.
func (row InputRow) DatasetInput() (schema.DatasetInput, error) {
	in := schema.DatasetInput{Name: row.Name, Digest: row.Digest, SourceType: row.SourceType, Source: row.Source,
		Schema: row.Schema, Profile: row.Profile}
	var tags []kv
	if err := json.Unmarshal([]byte(row.Tags), &tags); err != nil {
		return in, fmt.Errorf("dataset input %s@%s of %s: tags: %w", row.Name, row.Digest, row.Run, err)
	}
	for _, t := range tags {
		in.Tags = append(in.Tags, schema.Tag{Key: t.Key, Value: t.Value})
	}
	return in, nil
}
