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
// dictionary-encoded; every column is zstd-compressed (the writer's default
// codec, see zstdCodec: no column names one); times are
// timestamp(millisecond) UTC, null when unknown.

// ExperimentRow is one row of experiments/.
type ExperimentRow struct {
	Experiment   string     `parquet:"experiment,dict"`
	OriginSystem string     `parquet:"origin_system,dict"`
	OriginID     string     `parquet:"origin_id"`
	Name         string     `parquet:"name"`
	Description  string     `parquet:"description"`
	Tags         string     `parquet:"tags"` // JSON array of {"key","value"}, sorted by key
	CreatedAt    *time.Time `parquet:"created_at,optional,timestamp(millisecond)"`
	Deleted      bool       `parquet:"deleted"`
	Snapshot     int64      `parquet:"snapshot"`
}

// RunRow is one row of runs/: all of a run's metadata except params and
// tags, which have tables of their own.
type RunRow struct {
	Run          string     `parquet:"run,dict"`
	OriginSystem string     `parquet:"origin_system,dict"`
	OriginID     string     `parquet:"origin_id"`
	Experiment   string     `parquet:"experiment,dict"`
	Name         string     `parquet:"name"`
	User         string     `parquet:"user,dict"`
	Status       string     `parquet:"status,dict"`
	StartTime    *time.Time `parquet:"start_time,optional,timestamp(millisecond)"`
	EndTime      *time.Time `parquet:"end_time,optional,timestamp(millisecond)"`
	Labels       string     `parquet:"labels"` // JSON array of strings
	Notes        string     `parquet:"notes"`
	Parent       string     `parquet:"parent"` // origin "system:id", "" for none
	Group        string     `parquet:"group,dict"`
	JobType      string     `parquet:"job_type,dict"`
	Host         string     `parquet:"host,dict"`
	Program      string     `parquet:"program,dict"`
	GitCommit    string     `parquet:"git_commit"`
	GitRemote    string     `parquet:"git_remote"`
	Config       *string    `parquet:"config,optional"`  // JSON object text
	Summary      *string    `parquet:"summary,optional"` // JSON object text
	Deleted      bool       `parquet:"deleted"`
	Damage       string     `parquet:"damage"` // JSON array of strings
	Fingerprint  string     `parquet:"fingerprint"`
	Snapshot     int64      `parquet:"snapshot"`
}

// KVRow is one row of params/ or tags/.
type KVRow struct {
	Run   string `parquet:"run,dict"`
	Key   string `parquet:"key,dict"`
	Value string `parquet:"value"`
}

// InputRow is one row of inputs/ (since format version 2): a dataset the
// run used (an MLflow dataset input), rows in the schema's canonical order.
type InputRow struct {
	Run        string `parquet:"run,dict"`
	Name       string `parquet:"name"`
	Digest     string `parquet:"digest"`
	SourceType string `parquet:"source_type,dict"`
	Source     string `parquet:"source"`
	Schema     string `parquet:"schema"`
	Profile    string `parquet:"profile"`
	Tags       string `parquet:"tags"` // JSON array of {"key","value"}, sorted by key
}

// MetricRow is one row of metrics/. Rows are sorted by run, key, step;
// points at one step keep the order the source gave them. Step and time
// are DELTA_BINARY_PACKED (a standard Parquet encoding every reader
// supports): within a key they grow steadily, so they shrink to a few bits
// a row before compression, which makes the file about half the size and
// faster to write than plain encoding. Value is BYTE_STREAM_SPLIT (also
// standard; files written before it are PLAIN and read the same): the
// doubles' bytes are grouped by position (all sign and exponent bytes, then
// the mantissa's), which zstd compresses faster and smaller than the plain
// doubles (the encoding's CPU a third lower on the benchmark's run, the file
// 17% smaller; the real W&B samples' metrics 4% smaller).
type MetricRow struct {
	Run   string  `parquet:"run,dict"`
	Key   string  `parquet:"key,dict"`
	Step  int64   `parquet:"step,delta"`
	Time  int64   `parquet:"time,optional,timestamp(millisecond),delta"` // Unix ms; 0 (unknown) is stored as null
	Value float64 `parquet:"value,split"`
}

// RichValueRow is one row of rich_values/.
type RichValueRow struct {
	Run   string `parquet:"run,dict"`
	Key   string `parquet:"key,dict"`
	Step  int64  `parquet:"step"`
	Time  int64  `parquet:"time,optional,timestamp(millisecond)"` // Unix ms; 0 (unknown) is stored as null
	Type  string `parquet:"type,dict"`
	JSON  string `parquet:"json"`
	Files string `parquet:"files"` // JSON array of paths
}

// LogRow is one row of logs/; seq is the line's position in the run's
// console output, starting at 0.
type LogRow struct {
	Run    string `parquet:"run,dict"`
	Seq    int64  `parquet:"seq"`
	Time   int64  `parquet:"time,optional,timestamp(millisecond)"` // Unix ms; 0 (unknown) is stored as null
	Stream string `parquet:"stream,dict"`
	Line   string `parquet:"line"`
}

// ArtifactRow is one row of artifacts/: the run's file manifest. The body
// of a readable file is the blob blobs/sha256/<first two hex>/<sha256>.
type ArtifactRow struct {
	Run     string  `parquet:"run,dict"`
	Path    string  `parquet:"path"`
	Size    *int64  `parquet:"size,optional"`   // null when unreadable
	SHA256  *string `parquet:"sha256,optional"` // hex, null when unreadable
	Problem string  `parquet:"problem"`         // why the file is missing, "" if present
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
