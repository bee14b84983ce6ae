package archive

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/runferry/runferry/schema"
)

// The rows of the archive's tables. Column names, types and encodings are
// part of the format (docs/ARCHIVE.md): change them only with a new
// FormatVersion. Strings that repeat (run, key, stream) are
// dictionary-encoded; every column is zstd-compressed; times are
// timestamp(millisecond) UTC, null when unknown.

// ExperimentRow is one row of experiments/.
type ExperimentRow struct {
	Experiment   string     `parquet:"experiment,dict,zstd"`
	OriginSystem string     `parquet:"origin_system,dict,zstd"`
	OriginID     string     `parquet:"origin_id,zstd"`
	Name         string     `parquet:"name,zstd"`
	Description  string     `parquet:"description,zstd"`
	Tags         string     `parquet:"tags,zstd"` // JSON array of {"key","value"}, sorted by key
	CreatedAt    *time.Time `parquet:"created_at,optional,timestamp(millisecond),zstd"`
	Deleted      bool       `parquet:"deleted"`
	Snapshot     int64      `parquet:"snapshot,zstd"`
}

// RunRow is one row of runs/: all of a run's metadata except params and
// tags, which have tables of their own.
type RunRow struct {
	Run          string     `parquet:"run,dict,zstd"`
	OriginSystem string     `parquet:"origin_system,dict,zstd"`
	OriginID     string     `parquet:"origin_id,zstd"`
	Experiment   string     `parquet:"experiment,dict,zstd"`
	Name         string     `parquet:"name,zstd"`
	User         string     `parquet:"user,dict,zstd"`
	Status       string     `parquet:"status,dict,zstd"`
	StartTime    *time.Time `parquet:"start_time,optional,timestamp(millisecond),zstd"`
	EndTime      *time.Time `parquet:"end_time,optional,timestamp(millisecond),zstd"`
	Labels       string     `parquet:"labels,zstd"` // JSON array of strings
	Notes        string     `parquet:"notes,zstd"`
	Parent       string     `parquet:"parent,zstd"` // origin "system:id", "" for none
	Group        string     `parquet:"group,dict,zstd"`
	JobType      string     `parquet:"job_type,dict,zstd"`
	Host         string     `parquet:"host,dict,zstd"`
	Program      string     `parquet:"program,dict,zstd"`
	GitCommit    string     `parquet:"git_commit,zstd"`
	GitRemote    string     `parquet:"git_remote,zstd"`
	Config       *string    `parquet:"config,optional,zstd"`  // JSON object text
	Summary      *string    `parquet:"summary,optional,zstd"` // JSON object text
	Deleted      bool       `parquet:"deleted"`
	Damage       string     `parquet:"damage,zstd"` // JSON array of strings
	Fingerprint  string     `parquet:"fingerprint,zstd"`
	Snapshot     int64      `parquet:"snapshot,zstd"`
}

// KVRow is one row of params/ or tags/.
type KVRow struct {
	Run   string `parquet:"run,dict,zstd"`
	Key   string `parquet:"key,dict,zstd"`
	Value string `parquet:"value,zstd"`
}

// MetricRow is one row of metrics/. Rows are sorted by run, key, step;
// points at one step keep the order the source gave them.
type MetricRow struct {
	Run   string  `parquet:"run,dict,zstd"`
	Key   string  `parquet:"key,dict,zstd"`
	Step  int64   `parquet:"step,zstd"`
	Time  int64   `parquet:"time,optional,timestamp(millisecond),zstd"` // Unix ms; 0 (unknown) is stored as null
	Value float64 `parquet:"value,zstd"`
}

// RichValueRow is one row of rich_values/.
type RichValueRow struct {
	Run   string `parquet:"run,dict,zstd"`
	Key   string `parquet:"key,dict,zstd"`
	Step  int64  `parquet:"step,zstd"`
	Time  int64  `parquet:"time,optional,timestamp(millisecond),zstd"` // Unix ms; 0 (unknown) is stored as null
	Type  string `parquet:"type,dict,zstd"`
	JSON  string `parquet:"json,zstd"`
	Files string `parquet:"files,zstd"` // JSON array of paths
}

// LogRow is one row of logs/; seq is the line's position in the run's
// console output, starting at 0.
type LogRow struct {
	Run    string `parquet:"run,dict,zstd"`
	Seq    int64  `parquet:"seq,zstd"`
	Time   int64  `parquet:"time,optional,timestamp(millisecond),zstd"` // Unix ms; 0 (unknown) is stored as null
	Stream string `parquet:"stream,dict,zstd"`
	Line   string `parquet:"line,zstd"`
}

// ArtifactRow is one row of artifacts/: the run's file manifest. The body
// of a readable file is the blob blobs/sha256/<first two hex>/<sha256>.
type ArtifactRow struct {
	Run     string  `parquet:"run,dict,zstd"`
	Path    string  `parquet:"path,zstd"`
	Size    *int64  `parquet:"size,optional,zstd"`   // null when unreadable
	SHA256  *string `parquet:"sha256,optional,zstd"` // hex, null when unreadable
	Problem string  `parquet:"problem,zstd"`         // why the file is missing, "" if present
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func fromOptTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

func optJSON(raw json.RawMessage) *string {
	if len(raw) == 0 {
		return nil
	}
	s := string(raw)
	return &s
}

func fromOptJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on strings and string slices
	}
	return string(b)
}

func parseRef(s string) (schema.Ref, error) {
	if s == "" {
		return schema.Ref{}, nil
	}
	r, ok := schema.ParseRef(s)
	if !ok {
		return schema.Ref{}, fmt.Errorf("bad origin %q", s)
	}
	return r, nil
}

// ExperimentToRow converts e for experiments/.
func ExperimentToRow(e schema.Experiment, snapshot int64) ExperimentRow {
	tags := make([]kv, len(e.Tags))
	for i, t := range e.Tags {
		tags[i] = kv{t.Key, t.Value}
	}
	return ExperimentRow{Experiment: e.Origin.String(), OriginSystem: e.Origin.System, OriginID: e.Origin.ID,
		Name: e.Name, Description: e.Description, Tags: jsonText(tags), CreatedAt: optTime(e.CreatedAt),
		Deleted: e.Deleted, Snapshot: snapshot}
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Decode converts the row back.
func (r ExperimentRow) Decode() (schema.Experiment, error) {
	e := schema.Experiment{Origin: schema.Ref{System: r.OriginSystem, ID: r.OriginID}, Name: r.Name,
		Description: r.Description, CreatedAt: fromOptTime(r.CreatedAt), Deleted: r.Deleted}
	var tags []kv
	if err := json.Unmarshal([]byte(r.Tags), &tags); err != nil {
		return e, fmt.Errorf("experiment %s: tags: %w", r.Experiment, err)
	}
	for _, t := range tags {
		e.Tags = append(e.Tags, schema.Tag{Key: t.Key, Value: t.Value})
	}
	return e, nil
}
