package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/schema"
)

// Mapped reads a database of the user's own design through a Mapping.
// Origins are SYSTEM:INSTANCE/exp/ID and SYSTEM:INSTANCE/run/ID, where
// INSTANCE names the database (HOST[:PORT]/DB, or the SQLite file's
// absolute path) and ID is the value of the id column, so two databases
// never share an origin.
type Mapped struct {
	s *Store
	m *Mapping

	mu      sync.Mutex
	headers map[schema.Ref]header // by run origin, from the last listing
}

// header is what the runs query told of a run.
type header struct {
	run     schema.Run // without params and tags
	cursor  string     // the cursor column's value as text; "" without one
	changed time.Time  // the cursor as a time, zero when it is not one
}

// NewMapped reads s through m.
func NewMapped(s *Store, m *Mapping) *Mapped {
	return &Mapped{s: s, m: m, headers: map[schema.Ref]header{}}
}

// MappingDigest is the SHA-256 of the mapping's text.
func (r *Mapped) MappingDigest() string { return r.m.Digest }

// HasCursor reports whether the mapping declares a cursor column for runs.
func (r *Mapped) HasCursor() bool { return r.m.Runs.Columns["cursor"] != "" }

// Cursor returns the value of the cursor column of run as the last listing
// read it (text, and as a time when it is one); ok is false for a run not
// listed or a mapping without a cursor.
func (r *Mapped) Cursor(run schema.Ref) (value string, changed time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, found := r.headers[run]
	if !found || !r.HasCursor() {
		return "", time.Time{}, false
	}
	return h.cursor, h.changed, true
}

// ErrMapping marks what the mapping or the data it reads got wrong (a
// missing column, a NULL where a value is required, a value of the wrong
// type): permanent for the run, fatal for a listing.
var ErrMapping = errors.New("mapping")

func (r *Mapped) mapErr(entry, format string, args ...any) error {
	return fmt.Errorf("%w %s: %s: %s", ErrMapping, r.m.Path, entry, fmt.Sprintf(format, args...))
}

// ExpRef and RunRef return the origins of the experiment and run with
// database id id.
func (r *Mapped) ExpRef(id string) schema.Ref {
	return schema.Ref{System: r.m.System, ID: r.s.instance + "/exp/" + id}
}

// RunRef: see ExpRef.
func (r *Mapped) RunRef(id string) schema.Ref {
	return schema.Ref{System: r.m.System, ID: r.s.instance + "/run/" + id}
}

// idOf returns the database id inside an origin made by ExpRef or RunRef.
func (r *Mapped) idOf(ref schema.Ref, kind string) (string, bool) {
	if ref.System != r.m.System {
		return "", false
	}
	return strings.CutPrefix(ref.ID, r.s.instance+"/"+kind+"/")
}

// row is one result row by column name.
type row struct {
	entry string
	vals  map[string]any
	cols  map[string]string // field -> column
}

// query runs an entry's query with arg bound to its parameter and calls fn
// for each row, streaming. Every mapped column must be in the result.
func (r *Mapped) query(ctx context.Context, name string, e *Entry, arg any, fn func(row) error) error {
	q, n := r.s.Dialect.bind(e.Query)
	args := make([]any, n)
	for i := range args {
		args[i] = arg
	}
	of := "" // what the query reads, for errors
	if arg != nil {
		what := "run"
		if name == "runs" {
			what = "experiment"
		}
		of = fmt.Sprintf(" of %s %v", what, arg)
	}
	rows, err := r.s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %s%s: query: %w", r.m.Path, name, of, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	for field, col := range e.Columns {
		if !containsFold(cols, col) {
			return r.mapErr(name, "columns.%s: the query has no column %q (it returns %s)", field, col, strings.Join(cols, ", "))
		}
	}
	dest := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("%s: %s%s: %w", r.m.Path, name, of, err)
		}
		rw := row{entry: name, vals: make(map[string]any, len(cols)), cols: e.Columns}
		for i, c := range cols {
			rw.vals[strings.ToLower(c)] = dest[i]
		}
		if err := fn(rw); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %s%s: %w", r.m.Path, name, of, err)
	}
	return nil
}

func containsFold(cols []string, c string) bool {
	for _, x := range cols {
		if strings.EqualFold(x, c) {
			return true
		}
	}
	return false
}

// raw returns the value of field, and whether the field is mapped.
func (w row) raw(field string) (any, bool) {
	col, ok := w.cols[field]
	if !ok {
		return nil, false
	}
	return w.vals[strings.ToLower(col)], true
}

func (w row) where(field string) string {
	return fmt.Sprintf("%s: column %q (columns.%s)", w.entry, w.cols[field], field)
}

// text returns field as text; an unmapped field or NULL is "".
func (w row) text(field string, required bool) (string, error) {
	v, _ := w.raw(field)
	switch v := v.(type) {
	case nil:
		if required {
			return "", fmt.Errorf("%w: %s: NULL where a value is required", ErrMapping, w.where(field))
		}
		return "", nil
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(v), nil
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano), nil
	}
	return "", fmt.Errorf("%w: %s: a value of type %T", ErrMapping, w.where(field), v)
}

// number returns field as a float64.
func (w row) number(field string) (float64, error) {
	v, _ := w.raw(field)
	switch v := v.(type) {
	case nil:
		return 0, fmt.Errorf("%w: %s: NULL where a value is required", ErrMapping, w.where(field))
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case bool:
		if v {
			return 1, nil
		}
		return 0, nil
	case string, []byte:
		s := strings.TrimSpace(fmt.Sprint(asString(v)))
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %s: %q is not a number", ErrMapping, w.where(field), s)
		}
		return f, nil
	}
	return 0, fmt.Errorf("%w: %s: a %T where a number is required", ErrMapping, w.where(field), v)
}

func asString(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	s, _ := v.(string)
	return s
}

// integer returns field as an int64; fractions are refused.
func (w row) integer(field string) (int64, error) {
	v, _ := w.raw(field)
	if i, ok := v.(int64); ok {
		return i, nil
	}
	f, err := w.number(field)
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, fmt.Errorf("%w: %s: %v is not an integer", ErrMapping, w.where(field), f)
	}
	return int64(f), nil
}

// when returns field as a time; unit says how numbers are encoded.
func (w row) when(field, unit string) (time.Time, error) {
	v, mapped := w.raw(field)
	if !mapped {
		return time.Time{}, nil
	}
	return parseWhen(v, unit, func() string { return w.where(field) })
}

// parseWhen reads v as a time: a timestamp, text in RFC 3339 or
// "YYYY-MM-DD HH:MM:SS" form, or a number encoded as unit says; NULL is
// the zero time. where names the column for errors.
func parseWhen(v any, unit string, where func() string) (time.Time, error) {
	switch x := v.(type) {
	case nil:
		return time.Time{}, nil
	case time.Time:
		return x.UTC().Truncate(time.Millisecond), nil
	case int64:
		return epoch(float64(x), unit), nil
	case float64:
		return epoch(x, unit), nil
	case string, []byte:
		s := strings.TrimSpace(asString(v))
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Truncate(time.Millisecond), nil
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %q is not a time (RFC 3339, YYYY-MM-DD HH:MM:SS, or epoch seconds or milliseconds)", ErrMapping, where(), s)
		}
		return epoch(f, unit), nil
	}
	return time.Time{}, fmt.Errorf("%w: %s: a %T where a time is required", ErrMapping, where(), v)
}

// epoch reads f as epoch seconds or milliseconds, as unit says.
func epoch(f float64, unit string) time.Time {
	if unit == "epoch_s" || unit == "auto" && math.Abs(f) < 1e11 {
		return time.UnixMilli(int64(math.Round(f * 1000))).UTC()
	}
	return time.UnixMilli(int64(math.Round(f))).UTC()
}

// epochMillis is the integer v, encoded as unit says, in Unix
// milliseconds (as epoch, without a float for milliseconds).
func epochMillis(v int64, unit string) int64 {
	if unit == "epoch_s" || unit == "auto" && v > -1e11 && v < 1e11 {
		return v * 1000
	}
	return v
}

// Experiments returns the experiments the mapping yields, sorted by
// origin; with `experiment: NAME` the one experiment of that name.
func (r *Mapped) Experiments(ctx context.Context) ([]schema.Experiment, error) {
	if r.m.Experiments.Query == "" {
		return []schema.Experiment{{Origin: r.ExpRef(""), Name: r.m.Experiment}}, nil
	}
	var out []schema.Experiment
	err := r.query(ctx, "experiments", &r.m.Experiments, nil, func(w row) error {
		var e schema.Experiment
		id, err := w.text("id", true)
		if err != nil {
			return err
		}
		e.Origin = r.ExpRef(id)
		if e.Name, err = w.text("name", true); err != nil {
			return err
		}
		if e.Description, err = w.text("description", false); err != nil {
			return err
		}
		if e.CreatedAt, err = w.when("created", r.m.Experiments.Time); err != nil {
			return err
		}
		e.Canonicalize()
		out = append(out, e)
		return nil
	})
	slices.SortFunc(out, func(a, b schema.Experiment) int { return strings.Compare(a.Origin.String(), b.Origin.String()) })
	return out, err
}

// Runs returns the runs of experiment exp sorted by origin, each with its
// params and tags.
func (r *Mapped) Runs(ctx context.Context, exp schema.Ref) ([]schema.Run, error) {
	out, err := r.RunHeaders(ctx, exp)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := r.details(ctx, &out[i]); err != nil {
			return nil, err
		}
		out[i].Canonicalize()
	}
	return out, nil
}

// RunHeaders returns the runs of experiment exp sorted by origin as the
// runs query alone tells them: without params and tags (one query for the
// experiment, none per run). Run reads one of them in full.
func (r *Mapped) RunHeaders(ctx context.Context, exp schema.Ref) ([]schema.Run, error) {
	expID, ok := r.idOf(exp, "exp")
	if !ok {
		return nil, fmt.Errorf("experiment %s: %w", exp, ErrNotFound)
	}
	var arg any = expID
	if r.m.Experiments.Query == "" {
		arg = nil
	}
	var out []schema.Run
	var hs []header
	seen := map[schema.Ref]bool{}
	e := &r.m.Runs
	err := r.query(ctx, "runs", e, arg, func(w row) error {
		run, err := r.run(w, exp)
		if err != nil {
			return err
		}
		if seen[run.Origin] {
			id, _ := r.idOf(run.Origin, "run")
			return fmt.Errorf("%w: %s: run %s comes twice: the runs query must yield each run once", ErrMapping, w.where("id"), id)
		}
		seen[run.Origin] = true
		h := header{run: run}
		if r.HasCursor() {
			if h.cursor, err = w.text("cursor", true); err != nil {
				return fmt.Errorf("%w (run %s)", err, run.Origin)
			}
			h.changed, _ = w.when("cursor", e.Time) // a counter is no time
		}
		out = append(out, run)
		hs = append(hs, h)
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	for _, h := range hs {
		r.headers[h.run.Origin] = h
	}
	r.mu.Unlock()
	for i := range out {
		out[i].Canonicalize()
	}
	slices.SortFunc(out, func(a, b schema.Run) int { return strings.Compare(a.Origin.String(), b.Origin.String()) })
	return out, nil
}

// Run reads the run with origin ref in full, as Runs gives it: from the
// header the last listing read, else by listing every experiment.
func (r *Mapped) Run(ctx context.Context, ref schema.Ref) (schema.Run, error) {
	r.mu.Lock()
	h, ok := r.headers[ref]
	r.mu.Unlock()
	if !ok {
		exps, err := r.Experiments(ctx)
		if err != nil {
			return schema.Run{}, err
		}
		for _, e := range exps {
			if _, err := r.RunHeaders(ctx, e.Origin); err != nil {
				return schema.Run{}, err
			}
		}
		r.mu.Lock()
		h, ok = r.headers[ref]
		r.mu.Unlock()
		if !ok {
			return schema.Run{}, fmt.Errorf("run %s: %w", ref, ErrNotFound)
		}
	}
	run := h.run
	if err := r.details(ctx, &run); err != nil {
		return schema.Run{}, err
	}
	run.Canonicalize()
	return run, nil
}

func (r *Mapped) run(w row, exp schema.Ref) (schema.Run, error) {
	e := &r.m.Runs
	run := schema.Run{Experiment: exp, Status: schema.StatusFinished}
	id, err := w.text("id", true)
	if err != nil {
		return run, err
	}
	run.Origin = r.RunRef(id)
	texts := []struct {
		field string
		to    *string
	}{{"name", &run.Name}, {"user", &run.User}, {"notes", &run.Notes}, {"host", &run.Host}, {"program", &run.Program},
		{"git_commit", &run.GitCommit}, {"git_remote", &run.GitRemote}, {"group", &run.Group}, {"job_type", &run.JobType}}
	for _, t := range texts {
		if *t.to, err = w.text(t.field, false); err != nil {
			return run, err
		}
	}
	if run.Start, err = w.when("start", e.Time); err != nil {
		return run, err
	}
	if run.End, err = w.when("end", e.Time); err != nil {
		return run, err
	}
	if parent, err := w.text("parent", false); err != nil {
		return run, err
	} else if parent != "" {
		run.Parent = r.RunRef(parent)
	}
	for _, j := range []struct {
		field string
		to    *json.RawMessage
	}{{"config", &run.Config}, {"summary", &run.Summary}} {
		s, err := w.text(j.field, false)
		if err != nil {
			return run, err
		}
		if s == "" {
			continue
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(s), &obj); err != nil {
			return run, fmt.Errorf("%w: %s: run %s: not a JSON object: %v", ErrMapping, w.where(j.field), id, err)
		}
		*j.to = json.RawMessage(s)
	}
	if _, mapped := w.raw("status"); mapped {
		st, err := w.text("status", false)
		if err != nil {
			return run, err
		}
		if run.Status, err = r.status(st, run.End); err != nil {
			return run, fmt.Errorf("%w: %s: run %s: %v", ErrMapping, w.where("status"), id, err)
		}
	} else if run.End.IsZero() {
		run.Status = schema.StatusRunning
	}
	return run, nil
}

// status maps a database status to runferry's: through the mapping's
// vocabulary (exact, then ignoring case), else the value itself if it is
// one of runferry's.
func (r *Mapped) status(v string, end time.Time) (schema.RunStatus, error) {
	voc := r.m.Runs.Status
	if s, ok := voc[v]; ok {
		return schema.RunStatus(strings.ToUpper(s)), nil
	}
	for k, s := range voc {
		if strings.EqualFold(k, v) {
			return schema.RunStatus(strings.ToUpper(s)), nil
		}
	}
	if s := schema.RunStatus(strings.ToUpper(v)); s.Valid() {
		return s, nil
	}
	if v == "" && end.IsZero() {
		return schema.StatusRunning, nil
	}
	return "", fmt.Errorf("status %q is not in the mapping's status vocabulary", v)
}

func (r *Mapped) details(ctx context.Context, run *schema.Run) error {
	id, _ := r.idOf(run.Origin, "run")
	for _, kv := range []struct {
		name string
		e    *Entry
		add  func(k, v string)
	}{
		{"params", &r.m.Params, func(k, v string) { run.Params = append(run.Params, schema.Param{Key: k, Value: v}) }},
		{"tags", &r.m.Tags, func(k, v string) { run.Tags = append(run.Tags, schema.Tag{Key: k, Value: v}) }},
	} {
		if kv.e.Query == "" {
			continue
		}
		seen := map[string]bool{}
		err := r.query(ctx, kv.name, kv.e, id, func(w row) error {
			k, err := w.text("key", true)
			if err != nil {
				return err
			}
			v, err := w.text("value", false)
			if err != nil {
				return err
			}
			if seen[k] {
				return fmt.Errorf("%w: %s: run %s: key %q comes twice", ErrMapping, kv.name, id, k)
			}
			seen[k] = true
			kv.add(k, v)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Metrics calls page with the run's points in pages of up to size,
// streaming. Without a step column, each key's points are numbered 0, 1,
// 2, ... in the order the query returns them. Within one key, steps must
// not decrease: the query must order by key and step.
//
// Rows are scanned straight into typed values (the key's bytes interned,
// the value and step converted by database/sql), not through the generic
// row of the other entries: a metrics table is the one that is large.
func (r *Mapped) Metrics(ctx context.Context, run schema.Ref, size int, page func([]schema.Metric) error) error {
	id, ok := r.idOf(run, "run")
	if !ok {
		return fmt.Errorf("run %s: %w", run, ErrNotFound)
	}
	e := &r.m.Metrics
	q, n := r.s.Dialect.bind(e.Query)
	args := make([]any, n)
	for i := range args {
		args[i] = id
	}
	rows, err := r.s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: metrics of run %s: query: %w", r.m.Path, id, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	var (
		key    sql.RawBytes
		value  sql.NullFloat64
		step   sql.NullInt64
		at     any
		ignore any
	)
	dest := make([]any, len(cols))
	for i := range dest {
		dest[i] = &ignore
	}
	var atInt sql.NullInt64 // the time, when PostgreSQL says the column is an integer
	intTime := false
	targets := map[string]any{"key": &key, "value": &value, "step": &step, "time": &at}
	for field, col := range e.Columns {
		i := slices.IndexFunc(cols, func(c string) bool { return strings.EqualFold(c, col) })
		if i < 0 {
			return r.mapErr("metrics", "columns.%s: the query has no column %q (it returns %s)", field, col, strings.Join(cols, ", "))
		}
		dest[i] = targets[field]
		if field == "time" && r.s.Dialect.Name == "postgres" { // typed columns: an integer column holds only integers
			if types, err := rows.ColumnTypes(); err == nil {
				switch types[i].DatabaseTypeName() {
				case "INT8", "INT4", "INT2":
					dest[i], intTime = &atInt, true // no boxing per row
				}
			}
		}
	}
	where := func(field string) string {
		return fmt.Sprintf("metrics: column %q (columns.%s)", e.Columns[field], field)
	}
	_, hasStep := e.Columns["step"]
	_, hasTime := e.Columns["time"]
	keys := map[string]string{}
	last := map[string]int64{} // by key, but the key being read
	cur, curStep, curSeen := "", int64(0), false
	buf := newPager(size, size, page)
	for n := 1; rows.Next(); n++ {
		if err := rows.Scan(dest...); err != nil {
			// Where in the query's result, so that the row can be found.
			after := ""
			if curSeen {
				after = fmt.Sprintf(" (after key %q step %d)", cur, curStep)
			}
			return fmt.Errorf("%w %s: metrics: run %s: row %d of the metrics query%s: %v", ErrMapping, r.m.Path, id, n, after, err)
		}
		if key == nil {
			return fmt.Errorf("%w: %s: NULL where a value is required (run %s)", ErrMapping, where("key"), id)
		}
		k, ok := keys[string(key)]
		if !ok {
			k = string(key)
			keys[k] = k
		}
		m := schema.Metric{Key: k, Value: value.Float64}
		if !value.Valid {
			return fmt.Errorf("%w: %s: NULL where a value is required (run %s, key %q)", ErrMapping, where("value"), id, k)
		}
		if k != cur { // keys mostly come in runs: the map is asked only when one changes
			if curSeen {
				last[cur] = curStep
			}
			cur = k
			curStep, curSeen = last[k]
		}
		prev, seen := curStep, curSeen
		switch {
		case hasStep:
			if !step.Valid {
				return fmt.Errorf("%w: %s: NULL where a value is required (run %s, key %q)", ErrMapping, where("step"), id, k)
			}
			m.Step = step.Int64
			if seen && m.Step < prev {
				return fmt.Errorf("%w %s: metrics: run %s, key %q: step %d after step %d: the query must ORDER BY the key and step columns",
					ErrMapping, r.m.Path, id, k, m.Step, prev)
			}
		case seen:
			m.Step = prev + 1
		}
		curStep, curSeen = m.Step, true
		if intTime {
			if atInt.Valid {
				m.Time = epochMillis(atInt.Int64, e.Time)
			}
		} else if hasTime {
			switch v := at.(type) {
			case int64:
				m.Time = epochMillis(v, e.Time)
			default:
				t, err := parseWhen(v, e.Time, func() string { return where("time") })
				if err != nil {
					return err
				}
				if !t.IsZero() {
					m.Time = t.UnixMilli()
				}
			}
		}
		if err := buf.add(m); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		at := ""
		if cur != "" {
			at = fmt.Sprintf(", after key %q step %d", cur, curStep)
		}
		return fmt.Errorf("%s: metrics of run %s%s: %w", r.m.Path, id, at, err)
	}
	return buf.flush()
}

// Logs calls page with the run's console lines in pages of up to size, in
// the order the logs query returns them (it should ORDER BY), streaming.
// A stream value of stderr or err (any case) is stderr; anything else
// but stdout, out or NULL is an error naming the column.
func (r *Mapped) Logs(ctx context.Context, run schema.Ref, size int, page func([]schema.LogLine) error) error {
	id, ok := r.idOf(run, "run")
	if !ok {
		return fmt.Errorf("run %s: %w", run, ErrNotFound)
	}
	e := &r.m.Logs
	if e.Query == "" {
		return nil
	}
	buf := newPager(size, min(size, 1024), page)
	err := r.query(ctx, "logs", e, id, func(w row) error {
		l := schema.LogLine{Stream: schema.Stdout}
		var err error
		if l.Line, err = w.text("line", true); err != nil {
			return fmt.Errorf("%w (run %s)", err, id)
		}
		l.Line = strings.TrimSuffix(l.Line, "\n")
		st, err := w.text("stream", false)
		if err != nil {
			return err
		}
		switch strings.ToLower(strings.TrimSpace(st)) {
		case "", "stdout", "out":
		case "stderr", "err":
			l.Stream = schema.Stderr
		default:
			return fmt.Errorf("%w: %s: run %s: stream %q is not stdout or stderr", ErrMapping, w.where("stream"), id, st)
		}
		t, err := w.when("time", e.Time)
		if err != nil {
			return err
		}
		if !t.IsZero() {
			l.Time = t.UnixMilli()
		}
		return buf.add(l)
	})
	if err != nil {
		return err
	}
	return buf.flush()
}

// Artifacts returns the run's files sorted by path. The artifacts query
// gives each file's path in the run and its location: an http(s) URL, a
// file: URL, or a file path (relative paths are read from the folder of
// the mapping file). A local file that is not there comes with a Problem
// naming its location; a URL is fetched when the file is opened, and a
// failed fetch is an error of that file.
func (r *Mapped) Artifacts(ctx context.Context, run schema.Ref) ([]schema.Artifact, error) {
	id, ok := r.idOf(run, "run")
	if !ok {
		return nil, fmt.Errorf("run %s: %w", run, ErrNotFound)
	}
	e := &r.m.Artifacts
	if e.Query == "" {
		return nil, nil
	}
	var out []schema.Artifact
	seen := map[string]bool{}
	err := r.query(ctx, "artifacts", e, id, func(w row) error {
		p, err := w.text("path", true)
		if err != nil {
			return fmt.Errorf("%w (run %s)", err, id)
		}
		clean, ok := inRun(p)
		if !ok {
			return fmt.Errorf("%w: %s: run %s: %q is not a relative path inside the run", ErrMapping, w.where("path"), id, p)
		}
		if seen[clean] {
			return fmt.Errorf("%w: %s: run %s: path %q comes twice", ErrMapping, w.where("path"), id, clean)
		}
		seen[clean] = true
		loc, err := w.text("location", true)
		if err != nil {
			return fmt.Errorf("%w (run %s, file %s)", err, id, clean)
		}
		a := schema.Artifact{Path: clean, Size: -1}
		if _, mapped := w.raw("size"); mapped {
			if v, _ := w.raw("size"); v != nil {
				if a.Size, err = w.integer("size"); err != nil {
					return err
				}
			}
		}
		if sum, err := w.text("sha256", false); err != nil {
			return err
		} else if sum != "" {
			sum = strings.ToLower(strings.TrimPrefix(sum, "sha256:"))
			if b, err := hex.DecodeString(sum); err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: %s: run %s, file %s: %q is not a SHA-256 in hex", ErrMapping, w.where("sha256"), id, clean, sum)
			}
			a.Digest = "sha256:" + sum
		}
		r.locate(&a, loc)
		out = append(out, a)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b schema.Artifact) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// locate sets a's Open (or its Problem) from the location loc.
func (r *Mapped) locate(a *schema.Artifact, loc string) {
	if u, err := url.Parse(loc); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		a.Open = func(ctx context.Context) (io.ReadCloser, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
			if err != nil {
				return nil, err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, fmt.Errorf("file %s: %w", a.Path, err)
			}
			if resp.StatusCode != http.StatusOK {
				resp.Body.Close()
				return nil, fmt.Errorf("file %s: GET %s: %s", a.Path, redactURL(u), resp.Status)
			}
			return resp.Body, nil
		}
		return
	}
	file := loc
	if u, err := url.Parse(loc); err == nil && u.Scheme == "file" {
		file = filepath.FromSlash(u.Path)
	} else if !filepath.IsAbs(file) && r.m.Path != "" {
		file = filepath.Join(filepath.Dir(r.m.Path), file)
	}
	fi, err := os.Stat(file)
	switch {
	case err != nil:
		a.Problem = fmt.Sprintf("missing: %s (%v)", loc, errors.Unwrap(err))
		a.Size = -1
		return
	case !fi.Mode().IsRegular():
		a.Problem = fmt.Sprintf("not a regular file: %s", loc)
		a.Size = -1
		return
	}
	if a.Size >= 0 && a.Size != fi.Size() {
		a.Problem = fmt.Sprintf("%s holds %d bytes, the artifacts query says %d", loc, fi.Size(), a.Size)
		a.Size = -1
		return
	}
	a.Size = fi.Size()
	a.Open = func(context.Context) (io.ReadCloser, error) { return os.Open(file) }
}

// redactURL returns u without its user information and query (which may
// hold a signature).
func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery = nil, ""
	return c.String()
}

// RichValues calls page with the run's non-numeric history values in
// pages of up to size, in the order the rich_values query returns them,
// streaming. Each row holds its value in exactly one of the mapped value,
// text and file columns:
//
//   - value: a JSON document (text, JSON or JSONB), stored compacted. Its
//     type is the type column's, else an object's "_type", else its JSON
//     kind (string, number, bool, list, object, null); its files are
//     the files column's (a JSON array of paths), else (no files column,
//     or NULL in it) the "path" of every object carrying a "_type" in it,
//     as W&B media objects name their files.
//   - text: a plain string, of type "string".
//   - file: the path of a file among the run's artifacts (an image the run
//     saved, say). The value is {"_type": TYPE, "path": FILE}, TYPE being
//     the type column's, else "image-file" for .png, .jpg, .jpeg, .gif,
//     .bmp and .webp files (the type W&B and TensorBoard images have, so
//     MLflow shows them as images), "table-file" for .table.json files,
//     else "file".
//
// Without a step column each key's values are numbered 0, 1, 2, ... in the
// order returned; with one, a key's steps must not decrease.
func (r *Mapped) RichValues(ctx context.Context, run schema.Ref, size int, page func([]schema.RichValue) error) error {
	id, ok := r.idOf(run, "run")
	if !ok {
		return fmt.Errorf("run %s: %w", run, ErrNotFound)
	}
	e := &r.m.RichValues
	if e.Query == "" {
		return nil
	}
	buf := newPager(size, min(size, 1024), page)
	last := map[string]int64{}
	err := r.query(ctx, "rich_values", e, id, func(w row) error {
		v, err := r.richValue(w, id)
		if err != nil {
			return err
		}
		prev, seen := last[v.Key]
		if _, hasStep := e.Columns["step"]; hasStep {
			if v.Step, err = w.integer("step"); err != nil {
				return fmt.Errorf("%w (run %s, key %q)", err, id, v.Key)
			}
			if seen && v.Step < prev {
				return fmt.Errorf("%w %s: rich_values: run %s, key %q: step %d after step %d: the query must ORDER BY the step column",
					ErrMapping, r.m.Path, id, v.Key, v.Step, prev)
			}
		} else if seen {
			v.Step = prev + 1
		}
		last[v.Key] = v.Step
		t, err := w.when("time", e.Time)
		if err != nil {
			return err
		}
		if !t.IsZero() {
			v.Time = t.UnixMilli()
		}
		return buf.add(v)
	})
	if err != nil {
		return err
	}
	return buf.flush()
}

// richValue reads a rich value's key, type, JSON and files from w (see
// RichValues); step and time are the caller's.
func (r *Mapped) richValue(w row, id string) (schema.RichValue, error) {
	var v schema.RichValue
	var err error
	if v.Key, err = w.text("key", true); err != nil {
		return v, fmt.Errorf("%w (run %s)", err, id)
	}
	var kinds []string
	for _, f := range richKinds {
		if x, mapped := w.raw(f); mapped && x != nil {
			kinds = append(kinds, f)
		}
	}
	if len(kinds) != 1 {
		var cols []string
		for _, f := range richKinds {
			if c, ok := w.cols[f]; ok {
				cols = append(cols, fmt.Sprintf("%q (columns.%s)", c, f))
			}
		}
		found := "all are NULL"
		if len(kinds) > 1 {
			found = strings.Join(kinds, " and ") + " are not NULL"
		}
		return v, fmt.Errorf("%w: rich_values: run %s, key %q: exactly one of %s must hold the value; %s", ErrMapping, id, v.Key, strings.Join(cols, ", "), found)
	}
	typ, err := w.text("type", false)
	if err != nil {
		return v, err
	}
	var derived []string // files the value names
	switch kinds[0] {
	case "text":
		s, err := w.text("text", true)
		if err != nil {
			return v, err
		}
		b, _ := json.Marshal(s)
		v.Type, v.JSON = "string", string(b)
	case "file":
		p, err := w.text("file", true)
		if err != nil {
			return v, err
		}
		clean, ok := inRun(p)
		if !ok {
			return v, fmt.Errorf("%w: %s: run %s, key %q: %q is not a relative path inside the run", ErrMapping, w.where("file"), id, v.Key, p)
		}
		if typ == "" {
			typ = fileValueType(clean)
		}
		b, _ := json.Marshal(map[string]string{"_type": typ, "path": clean})
		v.Type, v.JSON, derived = typ, string(b), []string{clean}
	default:
		var s string
		switch x, _ := w.raw("value"); x := x.(type) {
		case map[string]any, []any: // a driver that decodes JSON columns itself
			b, err := json.Marshal(x)
			if err != nil {
				return v, fmt.Errorf("%w: %s: run %s, key %q: %v", ErrMapping, w.where("value"), id, v.Key, err)
			}
			s = string(b)
		default:
			if s, err = w.text("value", true); err != nil {
				return v, err
			}
		}
		var doc any
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil || dec.More() {
			if err == nil {
				err = errors.New("more than one JSON value")
			}
			return v, fmt.Errorf("%w: %s: run %s, key %q: not JSON: %v", ErrMapping, w.where("value"), id, v.Key, err)
		}
		var compact strings.Builder
		enc := json.NewEncoder(&compact)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return v, err
		}
		v.JSON = strings.TrimSuffix(compact.String(), "\n")
		v.Type = jsonKind(doc)
		derived = mediaPaths(doc)
	}
	if typ != "" {
		v.Type = typ
	}
	v.Files = derived
	if _, mapped := w.raw("files"); mapped {
		s, err := w.text("files", false)
		if err != nil {
			return v, err
		}
		if s != "" { // NULL: the files the value names
			v.Files = nil
			if err := json.Unmarshal([]byte(s), &v.Files); err != nil {
				return v, fmt.Errorf("%w: %s: run %s, key %q: not a JSON array of paths: %v", ErrMapping, w.where("files"), id, v.Key, err)
			}
		}
	}
	for i, f := range v.Files {
		clean, ok := inRun(f)
		if !ok {
			return v, fmt.Errorf("%w: rich_values: run %s, key %q: file %q is not a relative path inside the run", ErrMapping, id, v.Key, f)
		}
		v.Files[i] = clean
	}
	slices.Sort(v.Files)
	v.Files = slices.Compact(v.Files)
	if len(v.Files) == 0 {
		v.Files = nil
	}
	return v, nil
}

// inRun returns p (with \ read as /) cleaned, and whether it is a
// relative path inside a run: not empty, not absolute, not leaving it.
func inRun(p string) (string, bool) {
	clean := path.Clean(strings.ReplaceAll(p, "\\", "/"))
	return clean, p != "" && !path.IsAbs(clean) && clean != "." && clean != ".." && !strings.HasPrefix(clean, "../")
}

// fileValueType is the type of a rich value that is a file with path p.
func fileValueType(p string) string {
	l := strings.ToLower(p)
	switch {
	case strings.HasSuffix(l, ".table.json"):
		return "table-file"
	case slices.Contains([]string{".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"}, path.Ext(l)):
		return "image-file"
	}
	return "file"
}

// jsonKind is a JSON document's type: an object's "_type", else its kind.
func jsonKind(doc any) string {
	switch d := doc.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case json.Number:
		return "number"
	case []any:
		return "list"
	case map[string]any:
		if t, ok := d["_type"].(string); ok && t != "" {
			return t
		}
	}
	return "object"
}

// mediaPaths lists the "path" of every object in doc that carries a
// "_type" (a media object naming its file), sorted and unique.
func mediaPaths(doc any) []string {
	var out []string
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			if _, media := x["_type"].(string); media {
				if p, ok := x["path"].(string); ok && p != "" {
					out = append(out, p)
				}
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(doc)
	slices.Sort(out)
	return slices.Compact(out)
}

// pager gathers a reader's items into the pages of up to size items it
// hands to page: add hands on each full page (and starts a new buffer of
// capacity capacity, since page may keep the one it got), flush the last,
// partial one.
type pager[T any] struct {
	buf            []T
	size, capacity int
	page           func([]T) error
}

func newPager[T any](size, capacity int, page func([]T) error) *pager[T] {
	return &pager[T]{buf: make([]T, 0, capacity), size: size, capacity: capacity, page: page}
}

// add appends v, handing the page on when it is full.
func (p *pager[T]) add(v T) error {
	p.buf = append(p.buf, v)
	if len(p.buf) != p.size {
		return nil
	}
	full := p.buf
	p.buf = make([]T, 0, p.capacity)
	return p.page(full)
}

// flush hands on what is left, if anything.
func (p *pager[T]) flush() error {
	if len(p.buf) == 0 {
		return nil
	}
	return p.page(p.buf)
}
