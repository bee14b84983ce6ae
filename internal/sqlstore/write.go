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
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/runferry/runferry/internal/hashspool"
	"github.com/runferry/runferry/schema"
)

// ChunkSize is the largest piece of a file stored in one file_chunks row.
const ChunkSize = 1 << 20

// insertID runs an INSERT and returns the id of the new row.
func (s *Store) insertID(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	if s.Dialect.Name == "postgres" {
		var id int64
		err := q.QueryRowContext(ctx, s.Dialect.q(query+" RETURNING id"), args...).Scan(&id)
		return id, err
	}
	res, err := q.ExecContext(ctx, s.Dialect.q(query), args...)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func nullMillis(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ExperimentID returns the id of the experiment stored under origin.
func (s *Store) ExperimentID(ctx context.Context, origin string) (int64, bool, error) {
	var id int64
	err := s.DB.QueryRowContext(ctx, s.Dialect.q("SELECT id FROM experiments WHERE origin = ?"), origin).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// PutExperiment stores e under its origin, or updates the experiment
// stored under it when anything changed, and returns its id.
func (s *Store) PutExperiment(ctx context.Context, e schema.Experiment) (int64, error) {
	origin := e.Origin.String()
	id, found, err := s.ExperimentID(ctx, origin)
	if err != nil {
		return 0, err
	}
	if found {
		held, err := s.experiment(ctx, id)
		if err != nil {
			return 0, err
		}
		if experimentEqual(held, e) {
			return id, nil // nothing to write, no lock taken
		}
	}
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if err := s.Dialect.beginTx(ctx, conn); err != nil {
		return 0, err
	}
	id, err = s.putExperiment(ctx, conn, e, id, found)
	if err == nil {
		_, err = conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		rollback(conn)
		return 0, err
	}
	return id, nil
}

func (s *Store) putExperiment(ctx context.Context, conn *sql.Conn, e schema.Experiment, id int64, found bool) (int64, error) {
	d := s.Dialect
	var err error
	if found {
		_, err = conn.ExecContext(ctx, d.q("UPDATE experiments SET name = ?, description = ?, created_ms = ?, deleted = ? WHERE id = ?"),
			e.Name, e.Description, nullMillis(e.CreatedAt), flag(e.Deleted), id)
		if err == nil {
			_, err = conn.ExecContext(ctx, d.q("DELETE FROM experiment_tags WHERE experiment_id = ?"), id)
		}
	} else {
		id, err = s.insertID(ctx, conn, "INSERT INTO experiments (origin, name, description, created_ms, deleted) VALUES (?, ?, ?, ?, ?)",
			e.Origin.String(), e.Name, e.Description, nullMillis(e.CreatedAt), flag(e.Deleted))
	}
	if err != nil {
		return 0, err
	}
	for _, t := range e.Tags {
		if _, err := conn.ExecContext(ctx, d.q("INSERT INTO experiment_tags (experiment_id, name, value) VALUES (?, ?, ?)"), id, t.Key, t.Value); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func experimentEqual(a, b schema.Experiment) bool {
	if a.Name != b.Name || a.Description != b.Description || !a.CreatedAt.Equal(b.CreatedAt) || a.Deleted != b.Deleted || len(a.Tags) != len(b.Tags) {
		return false
	}
	for i := range a.Tags {
		if a.Tags[i] != b.Tags[i] {
			return false
		}
	}
	return true
}

// RetireExperiments deletes the experiments stored under origins that no
// run is left in.
func (s *Store) RetireExperiments(ctx context.Context, origins []string) error {
	for _, o := range origins {
		_, err := s.DB.ExecContext(ctx, s.Dialect.q(`DELETE FROM experiments WHERE origin = ?
			AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.experiment_id = experiments.id)`), o)
		if err != nil {
			return fmt.Errorf("retiring experiment %s: %w", o, err)
		}
	}
	return nil
}

// FindRun reports whether a run is stored under origin, with the
// fingerprint it was committed with. Every stored run is complete: a run
// is written in one transaction.
func (s *Store) FindRun(ctx context.Context, origin string) (found bool, fingerprint string, err error) {
	err = s.DB.QueryRowContext(ctx, s.Dialect.q("SELECT fingerprint FROM runs WHERE origin = ?"), origin).Scan(&fingerprint)
	if errors.Is(err, sql.ErrNoRows) {
		return false, "", nil
	}
	return err == nil, fingerprint, err
}

// RunTx writes one run inside one database transaction: nothing of it is
// visible to anyone else before Commit, and a failure or a crash at any
// moment leaves the database as it was (the server rolls the
// transaction back when the connection drops). It is used by one
// goroutine at a time.
type RunTx struct {
	s     *Store
	conn  *sql.Conn
	id    int64
	mseq  int64 // next metric seq
	lseq  int64 // next log seq
	rseq  int64 // next rich value seq
	ins   *sql.Stmt
	done  bool
	Point int64 // points the run holds
	// Mark and Cursors, when Mark is set, are stored in run_marks by
	// Commit.
	Mark    string
	Cursors []byte
	// held are the files an append found, by path, until File keeps or
	// replaces them; Commit deletes those left. nil when not appending.
	held                               map[string]StoredFile
	keptFiles, keptBytes, deletedFiles int64
	// nameHash: metrics has name_hash (MySQL, version 4 on), which
	// Metrics writes.
	nameHash bool
}

// FileDelta says, after an append's Commit, how many files (of how many
// bytes) were kept as held and how many were deleted.
func (t *RunTx) FileDelta() (keptFiles, keptBytes, deletedFiles int64) {
	return t.keptFiles, t.keptBytes, t.deletedFiles
}

// newRunTx returns the transaction begun on conn; a failure ends it.
func (s *Store) newRunTx(ctx context.Context, conn *sql.Conn) (*RunTx, error) {
	t := &RunTx{s: s, conn: conn}
	var err error
	if t.nameHash, err = s.hasNameHash(ctx); err != nil {
		t.Abort()
		return nil, err
	}
	return t, nil
}

// BeginRun starts the transaction of run r in experiment expID: it
// deletes what is stored under r's origin and under each of replace (the
// run's former origins), then inserts the run's metadata.
func (s *Store) BeginRun(ctx context.Context, expID int64, r schema.Run, replace []string) (*RunTx, error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Dialect.beginTx(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	t, err := s.newRunTx(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := t.begin(ctx, expID, r, replace); err != nil {
		t.Abort()
		return nil, err
	}
	return t, nil
}

func (t *RunTx) begin(ctx context.Context, expID int64, r schema.Run, replace []string) error {
	d := t.s.Dialect
	for _, o := range append([]string{r.Origin.String()}, replace...) {
		// Look first, delete by id: a DELETE by a key that matches nothing
		// would lock a gap of the index on some databases.
		var old int64
		err := t.conn.QueryRowContext(ctx, d.q("SELECT id FROM runs WHERE origin = ?"), o).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err == nil {
			_, err = t.conn.ExecContext(ctx, d.q("DELETE FROM runs WHERE id = ?"), old)
		}
		if err != nil {
			return fmt.Errorf("deleting the earlier copy of %s: %w", o, err)
		}
	}
	args, err := runArgs(r)
	if err != nil {
		return err
	}
	id, err := t.s.insertID(ctx, t.conn, `INSERT INTO runs (origin, experiment_id, name, user_name, status, start_ms, end_ms, notes,
		parent_origin, group_name, job_type, host, program, git_commit, git_remote, config, summary, inputs, damage, deleted,
		points, fingerprint, written_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, '', ?)`,
		append([]any{r.Origin.String(), expID}, args...)...)
	if err != nil {
		return fmt.Errorf("inserting the run: %w", err)
	}
	t.id = id
	return t.details(ctx, r)
}

// runArgs returns the values of the runs columns name through deleted,
// then written_ms.
func runArgs(r schema.Run) ([]any, error) {
	var inputs, damage sql.NullString
	if len(r.Inputs) > 0 {
		b, err := json.Marshal(r.Inputs)
		if err != nil {
			return nil, err
		}
		inputs = nullString(string(b))
	}
	if len(r.Damage) > 0 {
		b, err := json.Marshal(r.Damage)
		if err != nil {
			return nil, err
		}
		damage = nullString(string(b))
	}
	raw := func(m json.RawMessage) sql.NullString {
		return sql.NullString{String: string(m), Valid: m != nil}
	}
	return []any{r.Name, r.User, string(r.Status), nullMillis(r.Start), nullMillis(r.End), r.Notes,
		nullString(r.Parent.String()), r.Group, r.JobType, r.Host, r.Program, r.GitCommit, r.GitRemote,
		raw(r.Config), raw(r.Summary), inputs, damage, flag(r.Deleted), time.Now().UnixMilli()}, nil
}

// details inserts the run's params, tags and labels; a param or tag value
// the text cannot hold is stored as its bytes in value_bytes (withBytes).
func (t *RunTx) details(ctx context.Context, r schema.Run) error {
	id := t.id
	rows := make([][]any, 0, len(r.Params))
	for _, p := range r.Params {
		rows = append(rows, []any{id, p.Key, p.Value})
	}
	cols, rows := t.s.Dialect.withBytes("run_id, name, value", "value_bytes", rows, 2)
	if err := t.insertRows(ctx, "params", cols, rows); err != nil {
		return err
	}
	rows = make([][]any, 0, len(r.Tags))
	for _, g := range r.Tags {
		rows = append(rows, []any{id, g.Key, g.Value})
	}
	cols, rows = t.s.Dialect.withBytes("run_id, name, value", "value_bytes", rows, 2)
	if err := t.insertRows(ctx, "tags", cols, rows); err != nil {
		return err
	}
	rows = make([][]any, 0, len(r.Labels))
	for _, l := range r.Labels {
		rows = append(rows, []any{id, l})
	}
	return t.insertRows(ctx, "labels", "run_id, label", rows)
}

// ErrCannotAppend says the database cannot extend a run as it holds it
// (BeginAppend); the run is written whole instead.
var ErrCannotAppend = errors.New("cannot append")

// BeginAppend starts the transaction that extends the run stored under
// r.Origin in experiment expID, which must hold mark (the mark of its last
// commit, from run_marks): r replaces the run's metadata, params, tags and
// labels; its console lines, rich values and files are deleted, to be
// written again whole; metrics written are added after the points held.
// Nothing is visible before Commit, and a failure leaves the run as it
// was, with its mark, so the append can be tried again. An error wrapping
// ErrCannotAppend says why the run cannot be extended.
func (s *Store) BeginAppend(ctx context.Context, expID int64, r schema.Run, mark string) (*RunTx, error) {
	conn, err := s.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Dialect.beginTx(ctx, conn); err != nil {
		conn.Close()
		return nil, err
	}
	t, err := s.newRunTx(ctx, conn)
	if err != nil {
		return nil, err
	}
	if err := t.beginAppend(ctx, expID, r, mark); err != nil {
		t.Abort()
		return nil, err
	}
	return t, nil
}

func (t *RunTx) beginAppend(ctx context.Context, expID int64, r schema.Run, mark string) error {
	d := t.s.Dialect
	lock := ""
	if d.Name != "sqlite" {
		lock = " FOR UPDATE"
	}
	var exp, points int64
	var held sql.NullString
	err := t.conn.QueryRowContext(ctx, d.q("SELECT id, experiment_id, points FROM runs WHERE origin = ?"+lock), r.Origin.String()).Scan(&t.id, &exp, &points)
	if err == nil {
		err = t.conn.QueryRowContext(ctx, d.q("SELECT mark FROM run_marks WHERE run_id = ?"), t.id).Scan(&held)
		if errors.Is(err, sql.ErrNoRows) {
			err = nil
		}
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: the database does not hold the run", ErrCannotAppend)
	case err != nil:
		return err
	case !held.Valid || held.String == "":
		return fmt.Errorf("%w: the database holds the run without a mark (written whole by an earlier runferry)", ErrCannotAppend)
	case held.String != mark:
		return fmt.Errorf("%w: the database holds another copy of the run than the ledger recorded (mark %s, not %s)", ErrCannotAppend, held.String, mark)
	case exp != expID:
		return fmt.Errorf("%w: the run moved to another experiment", ErrCannotAppend)
	}
	args, err := runArgs(r)
	if err != nil {
		return err
	}
	_, err = t.conn.ExecContext(ctx, d.q(`UPDATE runs SET name = ?, user_name = ?, status = ?, start_ms = ?, end_ms = ?, notes = ?,
		parent_origin = ?, group_name = ?, job_type = ?, host = ?, program = ?, git_commit = ?, git_remote = ?, config = ?, summary = ?,
		inputs = ?, damage = ?, deleted = ?, written_ms = ? WHERE id = ?`), append(args, t.id)...)
	if err != nil {
		return fmt.Errorf("updating the run: %w", err)
	}
	files, err := t.files(ctx)
	if err != nil {
		return err
	}
	t.held = map[string]StoredFile{}
	for _, f := range files {
		t.held[f.Path] = f
	}
	for _, table := range []string{"params", "tags", "labels", "logs", "rich_values", "run_marks"} {
		if _, err := t.conn.ExecContext(ctx, d.q("DELETE FROM "+table+" WHERE run_id = ?"), t.id); err != nil {
			return fmt.Errorf("replacing %s: %w", table, err)
		}
	}
	var next sql.NullInt64
	if err := t.conn.QueryRowContext(ctx, d.q("SELECT MAX(seq) FROM metrics WHERE run_id = ?"), t.id).Scan(&next); err != nil {
		return err
	}
	if next.Valid {
		t.mseq = next.Int64 + 1
	}
	t.Point = points
	return t.details(ctx, r)
}

// FindBase returns the id, mark and cursors document of the run stored
// under origin; ok is false when it is not held, or held without a mark.
func (s *Store) FindBase(ctx context.Context, origin string) (id int64, mark string, cursors []byte, ok bool, err error) {
	if !s.hasMarks(ctx) {
		return 0, "", nil, false, nil // written before marks were kept
	}
	var c sql.NullString
	err = s.DB.QueryRowContext(ctx, s.Dialect.q(`SELECT r.id, m.mark, m.cursors FROM runs r JOIN run_marks m ON m.run_id = r.id
		WHERE r.origin = ?`), origin).Scan(&id, &mark, &c)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil, false, nil
	}
	if err != nil {
		return 0, "", nil, false, err
	}
	if c.Valid {
		cursors = []byte(c.String)
	}
	return id, mark, cursors, mark != "", nil
}

// ID returns the run's id in the runs table.
func (t *RunTx) ID() int64 { return t.id }

// insertRows inserts rows with multi-row INSERT statements of up to 500
// rows each.
func (t *RunTx) insertRows(ctx context.Context, table, cols string, rows [][]any) error {
	const per = 500
	for len(rows) > 0 {
		n := min(per, len(rows))
		args := make([]any, 0, n*len(rows[0]))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		q := "INSERT INTO " + table + " (" + cols + ") VALUES " + placeholders(n, len(rows[0]))
		if _, err := t.conn.ExecContext(ctx, t.s.Dialect.q(q), args...); err != nil {
			return fmt.Errorf("inserting into %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// Special values of a metric, stored in metrics.special with value NULL
// (value 0 for "-0"), since MySQL and SQLite hold neither NaN nor the
// infinities, and SQLite may not keep the sign of zero.
const (
	SpecialNaN    = "NaN"
	SpecialInf    = "Infinity"
	SpecialNegInf = "-Infinity"
	SpecialNegZ   = "-0"
)

// EncodeValue splits a metric value into the value and special columns.
func EncodeValue(v float64) (value any, special any) {
	switch {
	case math.IsNaN(v):
		return nil, SpecialNaN
	case math.IsInf(v, 1):
		return nil, SpecialInf
	case math.IsInf(v, -1):
		return nil, SpecialNegInf
	case v == 0 && math.Signbit(v):
		return 0.0, SpecialNegZ
	}
	return v, nil
}

// DecodeValue is the inverse of EncodeValue.
func DecodeValue(value sql.NullFloat64, special sql.NullString) (float64, error) {
	if !special.Valid {
		if !value.Valid {
			return 0, errors.New("metric value is NULL")
		}
		return value.Float64, nil
	}
	switch special.String {
	case SpecialNaN:
		return math.NaN(), nil
	case SpecialInf:
		return math.Inf(1), nil
	case SpecialNegInf:
		return math.Inf(-1), nil
	case SpecialNegZ:
		return math.Copysign(0, -1), nil
	}
	return 0, fmt.Errorf("unknown special metric value %q", special.String)
}

// NameHash returns metrics.name_hash of a metric key on MySQL (version 4
// on): the first 8 bytes of the SHA-256 of its bytes, as the migration's
// UNHEX(LEFT(SHA2(name, 256), 16)) computes it.
func NameHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:8]
}

// Metrics appends points: PostgreSQL loads them with COPY, MySQL with
// multi-row INSERTs, SQLite with one prepared INSERT per point; all inside
// the run's transaction.
func (t *RunTx) Metrics(ctx context.Context, batch []schema.Metric) error {
	if len(batch) == 0 {
		return nil
	}
	rows := make([][]any, len(batch))
	for i, m := range batch {
		v, sp := EncodeValue(m.Value)
		rows[i] = []any{t.id, m.Key, m.Step, t.mseq + int64(i), m.Time, v, sp}
	}
	var err error
	switch t.s.Dialect.Name {
	case "postgres":
		err = t.conn.Raw(func(dc any) error {
			pc := dc.(*stdlib.Conn).Conn()
			_, err := pc.CopyFrom(ctx, pgx.Identifier{"metrics"},
				[]string{"run_id", "name", "step", "seq", "time_ms", "value", "special"}, pgx.CopyFromRows(rows))
			return err
		})
	case "mysql":
		const per = 2000
		cols, ncols := "run_id, name, step, seq, time_ms, value, special", 7
		if t.nameHash {
			cols, ncols = cols+", name_hash", 8
			hashes := map[string][]byte{}
			for i, m := range batch {
				h, ok := hashes[m.Key]
				if !ok {
					h = NameHash(m.Key)
					hashes[m.Key] = h
				}
				rows[i] = append(rows[i], h)
			}
		}
		for rest := rows; len(rest) > 0 && err == nil; {
			n := min(per, len(rest))
			args := make([]any, 0, n*ncols)
			for _, r := range rest[:n] {
				args = append(args, r...)
			}
			_, err = t.conn.ExecContext(ctx, "INSERT INTO metrics ("+cols+") VALUES "+placeholders(n, ncols), args...)
			rest = rest[n:]
		}
	default:
		if t.ins == nil {
			t.ins, err = t.conn.PrepareContext(ctx, "INSERT INTO metrics (run_id, name, step, seq, time_ms, value, special) VALUES (?, ?, ?, ?, ?, ?, ?)")
		}
		for _, r := range rows {
			if err != nil {
				break
			}
			_, err = t.ins.ExecContext(ctx, r...)
		}
	}
	if err != nil {
		return fmt.Errorf("writing %d points: %w", len(batch), err)
	}
	t.mseq += int64(len(batch))
	t.Point += int64(len(batch))
	return nil
}

// Logs appends console lines. A line the database's text type cannot
// hold (HoldsText) is stored as its exact bytes in line_bytes, with
// ReadableText of it in line; line_bytes is NULL for every other line.
func (t *RunTx) Logs(ctx context.Context, lines []schema.LogLine) error {
	rows := make([][]any, len(lines))
	for i, l := range lines {
		rows[i] = []any{t.id, t.lseq + int64(i), l.Time, l.Stream, l.Line}
	}
	cols, rows := t.s.Dialect.withBytes("run_id, seq, time_ms, stream, line", "line_bytes", rows, 4)
	if err := t.insertRows(ctx, "logs", cols, rows); err != nil {
		return err
	}
	t.lseq += int64(len(lines))
	return nil
}

// RichValues appends non-numeric history values.
func (t *RunTx) RichValues(ctx context.Context, values []schema.RichValue) error {
	rows := make([][]any, len(values))
	for i, v := range values {
		var files sql.NullString
		if len(v.Files) > 0 {
			b, err := json.Marshal(v.Files)
			if err != nil {
				return err
			}
			files = nullString(string(b))
		}
		rows[i] = []any{t.id, t.rseq + int64(i), v.Key, v.Step, v.Time, v.Type, v.JSON, files}
	}
	if err := t.insertRows(ctx, "rich_values", "run_id, seq, name, step, time_ms, value_type, value_json, files", rows); err != nil {
		return err
	}
	t.rseq += int64(len(values))
	return nil
}

// files returns the run's stored files, inside the transaction.
func (t *RunTx) files(ctx context.Context) ([]StoredFile, error) {
	rows, err := t.conn.QueryContext(ctx, t.s.Dialect.q("SELECT id, path, size_bytes, sha256, problem FROM files WHERE run_id = ?"), t.id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StoredFile
	for rows.Next() {
		f := StoredFile{Size: -1}
		var size sql.NullInt64
		var sha, problem sql.NullString
		if err := rows.Scan(&f.ID, &f.Path, &size, &sha, &problem); err != nil {
			return nil, err
		}
		f.SHA256, f.Problem = sha.String, problem.String
		if size.Valid {
			f.Size = size.Int64
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// File stores a file of the run: its body in ChunkSize pieces, then its
// size and SHA-256. A file with a Problem is stored without a body. A
// body whose length differs from a.Size (when known) is an error.
//
// Appending, a file the run holds with the size and SHA-256 the source
// announces (a.Digest) is kept as it is: its body is read (the engine
// checks it against the digest) but not stored again. When the source
// announces no SHA-256 (an MLflow source), the body is spooled to a
// temporary file while hashed and kept alike when its size and SHA-256
// are the held file's. Any other held file of that path is replaced.
func (t *RunTx) File(ctx context.Context, a schema.Artifact, body io.Reader) error {
	d := t.s.Dialect
	if f, ok := t.held[a.Path]; ok {
		delete(t.held, a.Path)
		if a.Problem == "" && body != nil && f.Problem == "" && f.SHA256 != "" && a.Digest == "sha256:"+f.SHA256 && a.Size >= 0 && a.Size == f.Size {
			if _, err := io.Copy(io.Discard, body); err != nil {
				return fmt.Errorf("file %s: reading: %w", a.Path, err)
			}
			t.keptFiles++
			t.keptBytes += f.Size
			return nil
		}
		if a.Problem == "" && body != nil && f.Problem == "" && f.SHA256 != "" && !strings.HasPrefix(a.Digest, "sha256:") &&
			(a.Size < 0 || a.Size == f.Size) {
			// The source announces no SHA-256 (an MLflow source): the body
			// is spooled while hashed, and kept unsent when it is the
			// held one.
			spool, err := hashspool.New("", "runferry-sqlfile-*", body)
			if err != nil {
				return fmt.Errorf("file %s: reading: %w", a.Path, err)
			}
			if spool.Size == f.Size && spool.SHA256 == f.SHA256 {
				spool.Close()
				t.keptFiles++
				t.keptBytes += f.Size
				return nil
			}
			defer spool.Close()
			body = spool
		}
		if _, err := t.conn.ExecContext(ctx, d.q("DELETE FROM files WHERE id = ?"), f.ID); err != nil {
			return fmt.Errorf("file %s: replacing: %w", a.Path, err)
		}
	}
	if a.Problem != "" || body == nil {
		problem := a.Problem
		if problem == "" {
			problem = "no content"
		}
		_, err := t.conn.ExecContext(ctx, d.q("INSERT INTO files (run_id, path, problem) VALUES (?, ?, ?)"), t.id, a.Path, problem)
		return err
	}
	id, err := t.s.insertID(ctx, t.conn, "INSERT INTO files (run_id, path) VALUES (?, ?)", t.id, a.Path)
	if err != nil {
		return fmt.Errorf("file %s: %w", a.Path, err)
	}
	h := sha256.New()
	buf := make([]byte, ChunkSize)
	var size int64
	for seq := int64(0); ; seq++ {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if _, err := t.conn.ExecContext(ctx, d.q("INSERT INTO file_chunks (file_id, seq, content) VALUES (?, ?, ?)"), id, seq, buf[:n]); err != nil {
				return fmt.Errorf("file %s: %w", a.Path, err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("file %s: reading: %w", a.Path, rerr)
		}
	}
	if a.Size >= 0 && size != a.Size {
		return fmt.Errorf("file %s: %d bytes read, %d expected", a.Path, size, a.Size)
	}
	_, err = t.conn.ExecContext(ctx, d.q("UPDATE files SET size_bytes = ?, sha256 = ? WHERE id = ?"), size, hex.EncodeToString(h.Sum(nil)), id)
	return err
}

// Commit stores the fingerprint and point count and commits the
// transaction: from then on the run is visible, whole.
func (t *RunTx) Commit(ctx context.Context, fingerprint string) error {
	if t.done {
		return errors.New("run already committed or aborted")
	}
	var err error
	for _, f := range t.held { // files the source no longer has
		if _, err = t.conn.ExecContext(ctx, t.s.Dialect.q("DELETE FROM files WHERE id = ?"), f.ID); err != nil {
			break
		}
		t.deletedFiles++
	}
	if err == nil {
		_, err = t.conn.ExecContext(ctx, t.s.Dialect.q("UPDATE runs SET points = ?, fingerprint = ? WHERE id = ?"), t.Point, fingerprint, t.id)
	}
	if err == nil && t.Mark != "" {
		var cursors sql.NullString
		if t.Cursors != nil {
			cursors = sql.NullString{String: string(t.Cursors), Valid: true}
		}
		_, err = t.conn.ExecContext(ctx, t.s.Dialect.q("INSERT INTO run_marks (run_id, mark, cursors) VALUES (?, ?, ?)"), t.id, t.Mark, cursors)
	}
	if err == nil {
		_, err = t.conn.ExecContext(ctx, "COMMIT")
	}
	if err != nil {
		t.Abort()
		return err
	}
	t.finish()
	return nil
}

// Abort rolls the transaction back. It is safe to call more than once.
func (t *RunTx) Abort() {
	if t.done {
		return
	}
	rollback(t.conn)
	t.finish()
}

func (t *RunTx) finish() {
	t.done = true
	if t.ins != nil {
		t.ins.Close()
	}
	t.conn.Close()
}

// DestID names the run in the database: "runs.id=N".
func (t *RunTx) DestID() string { return "runs.id=" + strconv.FormatInt(t.id, 10) }

// withBytes returns the columns and rows to insert into a table whose
// rows hold a text at index col: when a row's text is one the dialect
// cannot hold (HoldsText), every row gets the column bcol after cols, the
// exact bytes in the rows that need them (their text replaced by
// ReadableText of it) and NULL in the others. Otherwise cols and rows are
// returned as they are, so that such rows are written as before schema
// version 3.
func (d Dialect) withBytes(cols, bcol string, rows [][]any, col int) (string, [][]any) {
	if !slices.ContainsFunc(rows, func(r []any) bool { return !d.HoldsText(r[col].(string)) }) {
		return cols, rows
	}
	for i, r := range rows {
		text := r[col].(string)
		if d.HoldsText(text) {
			rows[i] = append(r, nil)
			continue
		}
		r[col] = ReadableText(text)
		rows[i] = append(r, []byte(text))
	}
	return cols + ", " + bcol, rows
}

// HoldsText reports whether the dialect's text columns hold s exactly:
// SQLite's hold any bytes; PostgreSQL's hold no NUL byte, and neither
// PostgreSQL's nor MySQL's (utf8mb4) hold bytes that are not UTF-8.
func (d Dialect) HoldsText(s string) bool {
	return d.Name == "sqlite" || (utf8.ValidString(s) && strings.IndexByte(s, 0) < 0)
}

// ReadableText returns s as every database's text holds it: each NUL
// byte as U+2400 (SYMBOL FOR NULL) and each byte that is not part of
// valid UTF-8 as U+FFFD (REPLACEMENT CHARACTER), one per byte; the rest
// unchanged. It loses what it replaces, so it is stored only beside the
// exact bytes.
func ReadableText(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			b.WriteRune(utf8.RuneError)
		case r == 0:
			b.WriteRune('\u2400')
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
