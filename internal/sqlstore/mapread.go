package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
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
}

// NewMapped reads s through m.
func NewMapped(s *Store, m *Mapping) *Mapped { return &Mapped{s: s, m: m} }

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
	rows, err := r.s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("%s: %s: query: %w", r.m.Path, name, err)
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
			return fmt.Errorf("%s: %s: %w", r.m.Path, name, err)
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
		return fmt.Errorf("%s: %s: %w", r.m.Path, name, err)
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
	if !mapped || v == nil {
		return time.Time{}, nil
	}
	if t, ok := v.(time.Time); ok {
		return t.UTC().Truncate(time.Millisecond), nil
	}
	if _, ok := v.(string); ok || isBytes(v) {
		s := strings.TrimSpace(asString(v))
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Truncate(time.Millisecond), nil
			}
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return time.Time{}, fmt.Errorf("%w: %s: %q is not a time (RFC 3339, YYYY-MM-DD HH:MM:SS, or epoch seconds or milliseconds)", ErrMapping, w.where(field), s)
		}
	}
	f, err := w.number(field)
	if err != nil {
		return time.Time{}, err
	}
	switch {
	case unit == "epoch_s" || unit == "auto" && math.Abs(f) < 1e11:
		return time.UnixMilli(int64(math.Round(f * 1000))).UTC(), nil
	default:
		return time.UnixMilli(int64(math.Round(f))).UTC(), nil
	}
}

func isBytes(v any) bool { _, ok := v.([]byte); return ok }

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
	expID, ok := r.idOf(exp, "exp")
	if !ok {
		return nil, fmt.Errorf("experiment %s: %w", exp, ErrNotFound)
	}
	var arg any = expID
	if r.m.Experiments.Query == "" {
		arg = nil
	}
	var out []schema.Run
	e := &r.m.Runs
	err := r.query(ctx, "runs", e, arg, func(w row) error {
		run, err := r.run(w, exp)
		if err != nil {
			return err
		}
		out = append(out, run)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := r.details(ctx, &out[i]); err != nil {
			return nil, err
		}
		out[i].Canonicalize()
	}
	slices.SortFunc(out, func(a, b schema.Run) int { return strings.Compare(a.Origin.String(), b.Origin.String()) })
	return out, nil
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
func (r *Mapped) Metrics(ctx context.Context, run schema.Ref, size int, page func([]schema.Metric) error) error {
	id, ok := r.idOf(run, "run")
	if !ok {
		return fmt.Errorf("run %s: %w", run, ErrNotFound)
	}
	e := &r.m.Metrics
	_, hasStep := e.Columns["step"]
	last := map[string]int64{}
	buf := make([]schema.Metric, 0, size)
	err := r.query(ctx, "metrics", e, id, func(w row) error {
		var m schema.Metric
		var err error
		if m.Key, err = w.text("key", true); err != nil {
			return err
		}
		if m.Value, err = w.number("value"); err != nil {
			return fmt.Errorf("%w (run %s, key %q)", err, id, m.Key)
		}
		prev, seen := last[m.Key]
		switch {
		case hasStep:
			if m.Step, err = w.integer("step"); err != nil {
				return err
			}
			if seen && m.Step < prev {
				return fmt.Errorf("%w %s: metrics: run %s, key %q: step %d after step %d: the query must ORDER BY the key and step columns",
					ErrMapping, r.m.Path, id, m.Key, m.Step, prev)
			}
		case seen:
			m.Step = prev + 1
		}
		last[m.Key] = m.Step
		t, err := w.when("time", e.Time)
		if err != nil {
			return err
		}
		if !t.IsZero() {
			m.Time = t.UnixMilli()
		}
		buf = append(buf, m)
		if len(buf) == size {
			if err := page(buf); err != nil {
				return err
			}
			buf = make([]schema.Metric, 0, size)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(buf) > 0 {
		return page(buf)
	}
	return nil
}
