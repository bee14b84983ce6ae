package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/schema"
)

// ErrNotFound says the database holds no row for what was asked.
var ErrNotFound = errors.New("not found")

func millis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func (s *Store) experiment(ctx context.Context, id int64) (schema.Experiment, error) {
	exps, err := s.experiments(ctx, "WHERE id = ?", id)
	if err != nil {
		return schema.Experiment{}, err
	}
	if len(exps) != 1 {
		return schema.Experiment{}, fmt.Errorf("experiment id %d: %w", id, ErrNotFound)
	}
	return exps[0].Experiment, nil
}

// StoredExperiment is an experiment with its id in the database.
type StoredExperiment struct {
	ID int64
	schema.Experiment
}

// Experiments returns every experiment ordered by origin.
func (s *Store) Experiments(ctx context.Context) ([]StoredExperiment, error) {
	return s.experiments(ctx, "")
}

func (s *Store) experiments(ctx context.Context, where string, args ...any) ([]StoredExperiment, error) {
	d := s.Dialect
	rows, err := s.DB.QueryContext(ctx, d.q("SELECT id, origin, name, description, created_ms, deleted FROM experiments "+where+" ORDER BY origin{C}"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredExperiment
	byID := map[int64]int{}
	for rows.Next() {
		var e StoredExperiment
		var origin string
		var created sql.NullInt64
		var deleted int
		if err := rows.Scan(&e.ID, &origin, &e.Name, &e.Description, &created, &deleted); err != nil {
			return nil, err
		}
		ref, ok := schema.ParseRef(origin)
		if !ok {
			return nil, fmt.Errorf("experiments.id %d: origin %q is not system:id", e.ID, origin)
		}
		e.Origin, e.CreatedAt, e.Deleted = ref, millis(created), deleted != 0
		byID[e.ID] = len(out)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	if len(out) == 0 {
		return out, nil
	}
	trows, err := s.DB.QueryContext(ctx, "SELECT experiment_id, name, value FROM experiment_tags ORDER BY experiment_id, name"+d.collate)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	for trows.Next() {
		var id int64
		var t schema.Tag
		if err := trows.Scan(&id, &t.Key, &t.Value); err != nil {
			return nil, err
		}
		if i, ok := byID[id]; ok {
			out[i].Tags = append(out[i].Tags, t)
		}
	}
	if err := trows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Canonicalize()
	}
	// Sorted here too: MySQL sorts a LONGTEXT origin (version 4 on) by its
	// first max_sort_length bytes only.
	slices.SortStableFunc(out, func(a, b StoredExperiment) int { return strings.Compare(a.Origin.String(), b.Origin.String()) })
	return out, nil
}

// StoredRun is a run with what the database keeps about it.
type StoredRun struct {
	ID          int64
	Points      int64
	Fingerprint string
	schema.Run
}

const runColumns = `id, origin, name, user_name, status, start_ms, end_ms, notes, parent_origin, group_name, job_type,
	host, program, git_commit, git_remote, config, summary, inputs, damage, deleted, points, fingerprint`

// Runs returns the runs of the experiment stored with id expID (whose
// origin is exp), ordered by origin, each with its params, tags and labels.
func (s *Store) Runs(ctx context.Context, expID int64, exp schema.Ref) ([]StoredRun, error) {
	return s.runs(ctx, exp, "WHERE experiment_id = ?", expID)
}

// Run returns the run stored under origin, or ErrNotFound.
func (s *Store) Run(ctx context.Context, origin string) (StoredRun, error) {
	var expOrigin string
	err := s.DB.QueryRowContext(ctx, s.Dialect.q("SELECT e.origin FROM runs r JOIN experiments e ON e.id = r.experiment_id WHERE r.origin = ?"), origin).Scan(&expOrigin)
	if errors.Is(err, sql.ErrNoRows) {
		return StoredRun{}, fmt.Errorf("run %s: %w", origin, ErrNotFound)
	}
	if err != nil {
		return StoredRun{}, err
	}
	exp, _ := schema.ParseRef(expOrigin)
	runs, err := s.runs(ctx, exp, "WHERE origin = ?", origin)
	if err != nil {
		return StoredRun{}, err
	}
	if len(runs) != 1 {
		return StoredRun{}, fmt.Errorf("run %s: %w", origin, ErrNotFound)
	}
	return runs[0], nil
}

func (s *Store) runs(ctx context.Context, exp schema.Ref, where string, args ...any) ([]StoredRun, error) {
	d := s.Dialect
	rows, err := s.DB.QueryContext(ctx, d.q("SELECT "+runColumns+" FROM runs "+where+" ORDER BY origin{C}"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredRun
	for rows.Next() {
		var r StoredRun
		var origin, status string
		var start, end sql.NullInt64
		var parent, config, summary, inputs, damage sql.NullString
		var deleted int
		if err := rows.Scan(&r.ID, &origin, &r.Name, &r.User, &status, &start, &end, &r.Notes, &parent, &r.Group, &r.JobType,
			&r.Host, &r.Program, &r.GitCommit, &r.GitRemote, &config, &summary, &inputs, &damage, &deleted, &r.Points, &r.Fingerprint); err != nil {
			return nil, err
		}
		where := fmt.Sprintf("runs.id %d", r.ID)
		ref, ok := schema.ParseRef(origin)
		if !ok {
			return nil, fmt.Errorf("%s: origin %q is not system:id", where, origin)
		}
		r.Origin, r.Experiment, r.Status = ref, exp, schema.RunStatus(status)
		r.Start, r.End, r.Deleted = millis(start), millis(end), deleted != 0
		if parent.Valid {
			if r.Parent, ok = schema.ParseRef(parent.String); !ok {
				return nil, fmt.Errorf("%s: parent_origin %q is not system:id", where, parent.String)
			}
		}
		if config.Valid {
			r.Config = json.RawMessage(config.String)
		}
		if summary.Valid {
			r.Summary = json.RawMessage(summary.String)
		}
		if inputs.Valid {
			if err := json.Unmarshal([]byte(inputs.String), &r.Inputs); err != nil {
				return nil, fmt.Errorf("%s: inputs: %w", where, err)
			}
		}
		if damage.Valid {
			if err := json.Unmarshal([]byte(damage.String), &r.Damage); err != nil {
				return nil, fmt.Errorf("%s: damage: %w", where, err)
			}
			// Notes the database holds as data of the run: inherited
			// from the reader that first found them, not its own gaps.
			r.InheritedDamage = slices.Clone(r.Damage)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows.Close()
	raw, err := s.hasBytes(ctx) // once for all the runs
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := s.runDetails(ctx, &out[i], raw); err != nil {
			return nil, err
		}
		out[i].Canonicalize()
	}
	slices.SortStableFunc(out, func(a, b StoredRun) int { return strings.Compare(a.Origin.String(), b.Origin.String()) }) // as experiments
	return out, nil
}

// runDetails reads the run's params, tags and labels; raw: the database
// has value_bytes (hasBytes).
func (s *Store) runDetails(ctx context.Context, r *StoredRun, raw bool) error {
	d := s.Dialect
	cols := "name, value"
	if raw {
		cols += ", value_bytes"
	}
	// pairs reads the names and values of table, each value its exact
	// bytes where value_bytes holds them.
	pairs := func(table string) ([][2]string, error) {
		rows, err := s.DB.QueryContext(ctx, d.q("SELECT "+cols+" FROM "+table+" WHERE run_id = ? ORDER BY name{C}"), r.ID)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][2]string
		for rows.Next() {
			var kv [2]string
			var b []byte
			dest := []any{&kv[0], &kv[1]}
			if raw {
				dest = append(dest, &b)
			}
			if err := rows.Scan(dest...); err != nil {
				return nil, err
			}
			if b != nil {
				kv[1] = string(b)
			}
			out = append(out, kv)
		}
		return out, rows.Err()
	}
	ps, err := pairs("params")
	if err != nil {
		return fmt.Errorf("runs.id %d: params: %w", r.ID, err)
	}
	for _, p := range ps {
		r.Params = append(r.Params, schema.Param{Key: p[0], Value: p[1]})
	}
	ts, err := pairs("tags")
	if err != nil {
		return fmt.Errorf("runs.id %d: tags: %w", r.ID, err)
	}
	for _, t := range ts {
		r.Tags = append(r.Tags, schema.Tag{Key: t[0], Value: t[1]})
	}
	rows, err := s.DB.QueryContext(ctx, d.q("SELECT label FROM labels WHERE run_id = ? ORDER BY label{C}"), r.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return err
		}
		r.Labels = append(r.Labels, l)
	}
	return rows.Err()
}

// pages runs query with args and calls page with the rows, each made by
// scan, in pages of up to size: the rows are streamed, never loaded
// whole, and a page is the caller's once passed.
func pages[T any](ctx context.Context, s *Store, size int, query string, args []any,
	scan func(*sql.Rows) (T, error), page func([]T) error) error {
	rows, err := s.DB.QueryContext(ctx, s.Dialect.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	buf := make([]T, 0, min(size, 1024))
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return err
		}
		buf = append(buf, v)
		if len(buf) == size {
			if err := page(buf); err != nil {
				return err
			}
			buf = make([]T, 0, min(size, 1024))
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(buf) > 0 {
		return page(buf)
	}
	return nil
}

// Metrics calls page with the run's points in pages of up to size, each
// key's points together, by step, then in the order they were written in;
// the keys come in order (bytewise) except on MySQL from version 4 on,
// where they come in the order of their name_hash (the primary key's: a
// filesort would compare only max_sort_length bytes of a name, and two
// keys of one hash come interleaved, each still by step). The rows are
// streamed, never loaded whole. A page is the caller's once passed.
func (s *Store) Metrics(ctx context.Context, runID int64, size int, page func([]schema.Metric) error) error {
	order := "name{C}, step, seq"
	if hashed, err := s.hasNameHash(ctx); err != nil {
		return err
	} else if hashed {
		order = "name_hash, step, seq"
	}
	return pages(ctx, s, size, "SELECT name, step, time_ms, value, special FROM metrics WHERE run_id = ? ORDER BY "+order, []any{runID},
		func(rows *sql.Rows) (schema.Metric, error) {
			var m schema.Metric
			var v sql.NullFloat64
			var sp sql.NullString
			err := rows.Scan(&m.Key, &m.Step, &m.Time, &v, &sp)
			if err == nil {
				if m.Value, err = DecodeValue(v, sp); err != nil {
					err = fmt.Errorf("runs.id %d: metric %q step %d: %w", runID, m.Key, m.Step, err)
				}
			}
			return m, err
		}, page)
}

// Logs calls page with the run's console lines in the order written,
// each with its exact bytes (line_bytes where the database holds them
// there, from version 3 on).
func (s *Store) Logs(ctx context.Context, runID int64, size int, page func([]schema.LogLine) error) error {
	raw, err := s.hasBytes(ctx)
	if err != nil {
		return err
	}
	cols := "time_ms, stream, line"
	if raw {
		cols += ", line_bytes"
	}
	return pages(ctx, s, size, "SELECT "+cols+" FROM logs WHERE run_id = ? ORDER BY seq", []any{runID},
		func(rows *sql.Rows) (schema.LogLine, error) {
			var l schema.LogLine
			var b []byte
			dest := []any{&l.Time, &l.Stream, &l.Line}
			if raw {
				dest = append(dest, &b)
			}
			err := rows.Scan(dest...)
			if b != nil {
				l.Line = string(b)
			}
			return l, err
		}, page)
}

// RichValues calls page with the run's rich values in the order written.
func (s *Store) RichValues(ctx context.Context, runID int64, size int, page func([]schema.RichValue) error) error {
	return pages(ctx, s, size, "SELECT name, step, time_ms, value_type, value_json, files FROM rich_values WHERE run_id = ? ORDER BY seq", []any{runID},
		func(rows *sql.Rows) (schema.RichValue, error) {
			var v schema.RichValue
			var files sql.NullString
			if err := rows.Scan(&v.Key, &v.Step, &v.Time, &v.Type, &v.JSON, &files); err != nil {
				return v, err
			}
			if files.Valid {
				if err := json.Unmarshal([]byte(files.String), &v.Files); err != nil {
					return v, fmt.Errorf("runs.id %d: rich value %q step %d: files: %w", runID, v.Key, v.Step, err)
				}
			}
			return v, nil
		}, page)
}

// StoredFile is one file of a run.
type StoredFile struct {
	ID      int64
	Path    string
	Size    int64  // -1 for a file stored without a body
	SHA256  string // hex; "" without a body
	Problem string
}

// Files returns the run's files sorted by path.
func (s *Store) Files(ctx context.Context, runID int64) ([]StoredFile, error) {
	rows, err := s.DB.QueryContext(ctx, s.Dialect.q("SELECT id, path, size_bytes, sha256, problem FROM files WHERE run_id = ? ORDER BY path{C}"), runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredFile
	for rows.Next() {
		var f StoredFile
		var size sql.NullInt64
		var sha, problem sql.NullString
		if err := rows.Scan(&f.ID, &f.Path, &size, &sha, &problem); err != nil {
			return nil, err
		}
		f.Size, f.SHA256, f.Problem = -1, sha.String, problem.String
		if size.Valid {
			f.Size = size.Int64
		}
		if !problem.Valid && (!size.Valid || !sha.Valid) {
			f.Problem = "stored without its size or checksum (written by an interrupted job?)"
		}
		out = append(out, f)
	}
	// Sorted here too: MySQL sorts a LONGTEXT path (version 4 on) by its
	// first max_sort_length bytes only.
	slices.SortStableFunc(out, func(a, b StoredFile) int { return strings.Compare(a.Path, b.Path) })
	return out, rows.Err()
}

// OpenFile returns a reader over the body of file id, reading one chunk at
// a time.
func (s *Store) OpenFile(ctx context.Context, f StoredFile) io.ReadCloser {
	return &chunkReader{ctx: ctx, s: s, f: f}
}

type chunkReader struct {
	ctx  context.Context
	s    *Store
	f    StoredFile
	seq  int64
	buf  bytes.Reader
	read int64
	eof  bool
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for r.buf.Len() == 0 {
		if r.eof {
			if r.read != r.f.Size {
				return 0, fmt.Errorf("file %s: %d bytes stored, %d recorded", r.f.Path, r.read, r.f.Size)
			}
			return 0, io.EOF
		}
		var b []byte
		err := r.s.DB.QueryRowContext(r.ctx, r.s.Dialect.q("SELECT content FROM file_chunks WHERE file_id = ? AND seq = ?"), r.f.ID, r.seq).Scan(&b)
		if errors.Is(err, sql.ErrNoRows) {
			r.eof = true
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("file %s: chunk %d: %w", r.f.Path, r.seq, err)
		}
		r.seq++
		r.read += int64(len(b))
		r.buf.Reset(b)
	}
	return r.buf.Read(p)
}

func (r *chunkReader) Close() error { return nil }

// RunID returns the id of the run stored under origin, or ErrNotFound.
func (s *Store) RunID(ctx context.Context, origin string) (int64, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, s.Dialect.q("SELECT id FROM runs WHERE origin = ?"), origin).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("run %s: %w", origin, ErrNotFound)
	}
	return id, err
}
