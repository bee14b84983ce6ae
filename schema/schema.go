// Package schema is runferry's common model of experiment-tracking data.
//
// It holds plain data types, validation and canonical ordering, and does no
// I/O. Every source adapter reads into these types and every sink adapter
// writes from them, so a value that survives the trip through schema survives
// the whole transfer.
//
// Conventions:
//   - Times are UTC. Metric, log and rich-value times are Unix milliseconds
//     (int64) because a run can hold hundreds of millions of them; run and
//     experiment times are time.Time truncated to the millisecond. A zero
//     value means unknown.
//   - Slices of key/value pairs are sorted by key with unique keys (see
//     Canonicalize), so output built from them is deterministic.
//   - Metrics are not a field of Run: they are streamed in pages.
package schema

import (
	"encoding/json"
	"time"
)

// Ref names an entity in the system it was read from. Sinks store it with
// what they write so that a later run recognises work already done.
type Ref struct {
	System string // "wandb", "mlflow", "parquet", "sql", "memory", ...
	ID     string // that system's identifier, opaque to runferry
}

// String renders the ref as "system:id", the form stored by sinks.
func (r Ref) String() string {
	if r.IsZero() {
		return ""
	}
	return r.System + ":" + r.ID
}

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r.System == "" && r.ID == "" }

// ParseRef is the inverse of Ref.String. The system is everything before the
// first colon; the id may itself contain colons.
func ParseRef(s string) (Ref, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			if i == 0 || i == len(s)-1 {
				return Ref{}, false
			}
			return Ref{System: s[:i], ID: s[i+1:]}, true
		}
	}
	return Ref{}, false
}

// Experiment is a container of runs: an MLflow experiment or a W&B
// entity/project.
type Experiment struct {
	Origin      Ref
	Name        string
	Description string
	Tags        []Tag     // sorted by key, keys unique
	CreatedAt   time.Time // zero if unknown
	Deleted     bool
}

// RunStatus is the lifecycle state of a run.
type RunStatus string

// The run states runferry distinguishes. Sources map their own states onto
// these; sinks map them back.
const (
	StatusRunning  RunStatus = "RUNNING"
	StatusFinished RunStatus = "FINISHED"
	StatusFailed   RunStatus = "FAILED"
	StatusKilled   RunStatus = "KILLED"
)

// Valid reports whether s is one of the declared statuses.
func (s RunStatus) Valid() bool {
	switch s {
	case StatusRunning, StatusFinished, StatusFailed, StatusKilled:
		return true
	}
	return false
}

// Run is one training run's metadata. Its metric history, rich values,
// console output and files are streamed separately by the source.
type Run struct {
	Origin     Ref
	Experiment Ref // the Origin of the experiment holding the run
	Name       string
	User       string
	Status     RunStatus
	Start, End time.Time // End is zero while running

	Params []Param  // sorted by key, keys unique
	Tags   []Tag    // key/value tags, sorted by key, keys unique
	Labels []string // value-less tags (W&B tags), sorted, unique
	Notes  string
	Parent Ref // zero when the run has no parent

	Group, JobType string
	Host, Program  string
	GitCommit      string
	GitRemote      string

	// Config and Summary are the run's configuration and final summary as
	// JSON objects (nil when absent). Extended JSON numbers (NaN, Infinity)
	// are written as the strings "NaN", "Infinity" and "-Infinity".
	Config  json.RawMessage
	Summary json.RawMessage

	Deleted bool

	// Inputs are the datasets the run used (MLflow dataset inputs), in
	// canonical order (see CompareDatasetInputs).
	Inputs []DatasetInput

	// Damage lists what the source could not read for this run (a truncated
	// log, a dangling symlink), each entry naming the file and offset. A run
	// with damage is still transferred with everything that was readable.
	Damage []string

	// InheritedDamage lists the entries of Damage that this source only
	// carries: notes that an earlier reader wrote down about the original
	// source (a truncated W&B log) and that this source holds as data of
	// the run (an archive's runs.damage, MLflow's runferry/run.json, an SQL
	// database's damage column). They are not gaps of this source: what
	// it holds of the run was read whole. A reader that restores such
	// notes sets this; every other entry of Damage is what this reading
	// could not read. Sinks write Damage whole, so the notes travel on as
	// inherited ones. Not part of the run's data (not serialized, not
	// compared): it says how this source came to hold Damage.
	InheritedDamage []string `json:"-"`
}

// SplitDamage splits r.Damage, in its order, into fresh (what the source
// the run was read from could not read) and inherited (the entries of
// InheritedDamage: notes the source only carries). Each entry of
// InheritedDamage accounts for one equal entry of Damage; one not in
// Damage is ignored.
func (r *Run) SplitDamage() (fresh, inherited []string) {
	if len(r.InheritedDamage) == 0 {
		return r.Damage, nil
	}
	left := map[string]int{}
	for _, d := range r.InheritedDamage {
		left[d]++
	}
	for _, d := range r.Damage {
		if left[d] > 0 {
			left[d]--
			inherited = append(inherited, d)
			continue
		}
		fresh = append(fresh, d)
	}
	return fresh, inherited
}

// DatasetInput is one dataset a run used, as MLflow records it: the
// dataset's name and digest (which identify it), where it came from
// (source type, such as "local" or "http", and source, a JSON document
// naming the location), its schema and profile (JSON text as logged, ""
// when absent), and the tags of the link itself (MLflow's
// mlflow.data.context: "training", "eval").
type DatasetInput struct {
	Name, Digest       string
	SourceType, Source string
	Schema, Profile    string
	Tags               []Tag // sorted by key, keys unique
}

// Param is one run parameter. MLflow params are strings; W&B config values
// are flattened into params by transforms, not by sources.
type Param struct{ Key, Value string }

// Tag is one key/value tag.
type Tag struct{ Key, Value string }

// Metric is one point of a metric's history.
type Metric struct {
	Key   string
	Value float64 // NaN and ±Inf are legal values
	Step  int64
	Time  int64 // Unix milliseconds, UTC; 0 if unknown
}

// RichValue is a non-numeric history value: a string, a list, or a media
// object (a JSON object carrying "_type", such as an image, a table or a
// histogram). Files lists the paths, relative to the run's artifact root,
// of the files the value refers to.
type RichValue struct {
	Key   string
	Step  int64
	Time  int64  // Unix milliseconds, UTC; 0 if unknown
	Type  string // the value's "_type", or the JSON kind: "string", "bool", "list", "object", "null"
	JSON  string // the value as JSON text
	Files []string
}

// LogLine is one line of a run's console output.
type LogLine struct {
	Time   int64  // Unix milliseconds, UTC; 0 if unknown
	Stream string // "stdout" or "stderr"
	Line   string // without the trailing newline
}

// Streams of console output.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)
