package sqlstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/runferry/runferry/schema"
)

// Mapping says how to read experiment-tracking data out of a database of
// the user's own design: for each kind of entity, the SQL that yields it
// and which result column holds which field (docs/SQL-MAPPING.md).
type Mapping struct {
	// System is the origin system of what is read (default "sql").
	System string `yaml:"system"`
	// Experiment names the one experiment every run belongs to when the
	// database has no experiments of its own (Experiments.Query empty).
	Experiment  string `yaml:"experiment"`
	Experiments Entry  `yaml:"experiments"`
	Runs        Entry  `yaml:"runs"`
	Params      Entry  `yaml:"params"`
	Tags        Entry  `yaml:"tags"`
	Metrics     Entry  `yaml:"metrics"`
	Logs        Entry  `yaml:"logs"`
	Artifacts   Entry  `yaml:"artifacts"`
	// RichValues yields non-numeric history values: images and other
	// files the run saved, JSON documents (histograms, tables, W&B media
	// objects), and text.
	RichValues Entry  `yaml:"rich_values"`
	Path       string `yaml:"-"` // the file it was read from
	// Digest is the SHA-256 (hex) of the mapping's text, so that what was
	// read through one version of a mapping can be told from another's.
	Digest  string  `yaml:"-"`
	entries []named // set by Validate
}

// Entry is one kind of entity: its query and its columns.
type Entry struct {
	// Query is the SQL. Runs may use :experiment, and params, tags,
	// metrics, logs, artifacts and rich_values must use :run: the id of the experiment
	// or run being read.
	Query string `yaml:"query"`
	// Columns maps a field (id, name, status, start, key, value, step,
	// time, ...) to the result column holding it. The runs' cursor field
	// names a column that changes whenever anything of the run does (an
	// updated_at timestamp, a version counter): sync then skips the runs
	// whose cursor did not move without reading their params, tags,
	// metrics, logs or artifacts.
	Columns map[string]string `yaml:"columns"`
	// Status maps the database's status values to RUNNING, FINISHED,
	// FAILED or KILLED (runs only).
	Status map[string]string `yaml:"status"`
	// Time says how numbers in time columns are encoded: epoch_s,
	// epoch_ms (default), or auto (values above 1e11 are milliseconds).
	// Timestamp and text columns (RFC 3339, "2006-01-02 15:04:05") need
	// nothing.
	Time string `yaml:"time"`
}

type named struct {
	name  string
	e     *Entry
	param string   // the :parameter the query must use, "" none
	need  []string // required fields
	may   []string // optional fields
}

// fields of each entry, required then optional.
var entryFields = map[string][2][]string{
	"experiments": {{"id", "name"}, {"description", "created"}},
	"runs": {{"id"}, {"experiment", "name", "status", "start", "end", "user", "notes", "config", "summary",
		"parent", "host", "program", "git_commit", "git_remote", "group", "job_type", "cursor"}},
	"params":    {{"key", "value"}, nil},
	"tags":      {{"key", "value"}, nil},
	"metrics":   {{"key", "value"}, {"step", "time"}},
	"logs":      {{"line"}, {"time", "stream"}},
	"artifacts": {{"path", "location"}, {"size", "sha256"}},
	// rich_values also needs one of value, text and file (see richKinds).
	"rich_values": {{"key"}, {"value", "text", "file", "type", "files", "step", "time"}},
}

// richKinds are the fields of rich_values that hold the value itself: at
// least one must be mapped, and in each row exactly one is not NULL.
var richKinds = []string{"value", "text", "file"}

// paramRef matches a :name query parameter (not a PostgreSQL :: cast).
var paramRef = regexp.MustCompile(`(^|[^:]):([a-z_]+)\b`)

// LoadMapping reads and validates the mapping file at path.
func LoadMapping(path string) (*Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	m, err := ParseMapping(b)
	if err != nil {
		return nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	m.Path = path
	return m, nil
}

// ParseMapping parses and validates a mapping; unknown keys are errors.
func ParseMapping(b []byte) (*Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	sum := sha256.Sum256(b)
	m.Digest = hex.EncodeToString(sum[:])
	return &m, m.Validate()
}

// Validate checks the mapping without a database: every entry has its
// query, its required fields and no unknown ones, uses the parameter it
// must, and every status maps to one runferry knows.
func (m *Mapping) Validate() error {
	if m.System == "" {
		m.System = "sql"
	}
	if strings.ContainsAny(m.System, ": ") {
		return fmt.Errorf("system %q: no colons or spaces", m.System)
	}
	m.entries = nil
	var errs []error
	add := func(name string, e *Entry, param string) {
		f := entryFields[name]
		m.entries = append(m.entries, named{name: name, e: e, param: param, need: f[0], may: f[1]})
	}
	switch {
	case m.Experiments.Query != "":
		add("experiments", &m.Experiments, "")
		if m.Experiment != "" {
			errs = append(errs, errors.New("experiment: give either experiment (one experiment for every run) or an experiments query, not both"))
		}
	case m.Experiment == "":
		errs = append(errs, errors.New("experiments: give an experiments query, or experiment: NAME for a database whose runs have no experiment"))
	}
	runParam := ""
	if m.Experiments.Query != "" {
		runParam = "experiment"
	}
	add("runs", &m.Runs, runParam)
	for _, n := range []struct {
		name string
		e    *Entry
	}{{"params", &m.Params}, {"tags", &m.Tags}, {"metrics", &m.Metrics}, {"logs", &m.Logs}, {"artifacts", &m.Artifacts}, {"rich_values", &m.RichValues}} {
		if n.e.Query != "" || n.name == "metrics" || len(n.e.Columns) > 0 {
			add(n.name, n.e, "run")
		}
	}
	for _, n := range m.entries {
		errs = append(errs, n.validate()...)
	}
	return errors.Join(errs...)
}

func (n named) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(n.name+": "+format, args...)) }
	if strings.TrimSpace(n.e.Query) == "" {
		bad("query is missing")
	}
	used := map[string]bool{}
	for _, p := range paramRef.FindAllStringSubmatch(n.e.Query, -1) {
		used[p[2]] = true
	}
	for p := range used {
		if p != n.param {
			if n.param == "" {
				bad("query uses :%s, but takes no parameter", p)
			} else {
				bad("query uses :%s; it takes :%s", p, n.param)
			}
		}
	}
	if n.param != "" && !used[n.param] {
		bad("query must use :%s (the id of the %s being read), so that it reads one at a time", n.param, n.param)
	}
	for _, f := range n.need {
		if n.e.Columns[f] == "" {
			bad("columns.%s is missing (required: %s)", f, strings.Join(n.need, ", "))
		}
	}
	if n.name == "rich_values" && !slices.ContainsFunc(richKinds, func(f string) bool { return n.e.Columns[f] != "" }) {
		bad("columns: map one of value (a JSON document), text or file (a path among the run's artifacts)")
	}
	for f := range n.e.Columns {
		if !slices.Contains(n.need, f) && !slices.Contains(n.may, f) {
			bad("columns.%s: unknown field (known: %s)", f, strings.Join(append(slices.Clone(n.need), n.may...), ", "))
		}
	}
	for k, v := range n.e.Status {
		if n.name != "runs" {
			bad("status: only runs have a status")
			break
		}
		if !schema.RunStatus(strings.ToUpper(v)).Valid() {
			bad("status.%s: %q is not RUNNING, FINISHED, FAILED or KILLED", k, v)
		}
	}
	switch n.e.Time {
	case "", "epoch_ms", "epoch_s", "auto":
	default:
		bad("time: %q is not epoch_ms, epoch_s or auto", n.e.Time)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errs
}

// bind rewrites the :param of an entry's query into the dialect's
// placeholder and returns how many arguments the query then takes (a
// parameter used twice is passed twice where placeholders are "?").
func (d Dialect) bind(query string) (string, int) {
	n := len(paramRef.FindAllStringIndex(query, -1))
	if d.dollar {
		return paramRef.ReplaceAllString(query, "${1}$$1"), min(n, 1)
	}
	return paramRef.ReplaceAllString(query, "${1}?"), n
}
