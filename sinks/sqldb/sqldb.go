// Package sqldb is the sink that writes runferry's own schema into a SQL
// database: PostgreSQL (postgres://USER@HOST[:PORT]/DB), MySQL or MariaDB
// (mysql://USER@HOST[:PORT]/DB) and SQLite (sqlite:PATH). The schema is
// created and migrated by runferry and described in docs/SQL.md.
//
// Identity is the origin: experiments and runs carry their origin in a
// column with a unique constraint, so copying the same source again never
// duplicates anything. Each run is written in one database transaction
// (OpenRun begins it, Commit commits it): no one sees a run before it is
// whole, and a failure or a crash at any moment (the server rolls back a
// transaction whose connection dropped) leaves what the database held
// before. A run written again replaces the stored one whole, in the same
// transaction. A run that grew at the source is extended instead
// (sinks.Appender): its new points are added after those it holds, in one
// transaction too.
//
// Metrics go in with COPY on PostgreSQL, multi-row INSERTs on MySQL and
// prepared INSERTs on SQLite. Files are stored in the database, in 1 MiB
// chunks (docs/SQL.md says why).
//
// Passwords come from PGPASSWORD or MYSQL_PWD; one in the location is
// refused.
package sqldb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

const help = "Writes experiments, runs, params, tags, labels, metrics, rich values, console logs and files into " +
	"runferry's own tables (created and migrated by runferry; docs/SQL.md). Each run is written in one " +
	"transaction, so a run is either whole or absent; runs are identified by origin (unique), so a repeated " +
	"copy adds nothing and a changed run replaces its earlier version whole; a run that only grew (sync) is extended with its new " +
	"points instead. Read back with the same location."

// PostgresDescription describes the PostgreSQL sink.
func PostgresDescription() location.Description {
	return location.Description{
		Scheme: "postgres", Aliases: []string{"postgresql"}, Kind: location.URLKind,
		Syntax:  "postgres://USER@HOST[:PORT]/DATABASE",
		Summary: "PostgreSQL database in runferry's schema (metrics loaded with COPY)",
		Help:    help,
		Options: sqlstore.PostgresOptions(),
		Example: "PGPASSWORD=... runferry copy wandb:./wandb postgres://tracking@db.example.com/runs",
	}
}

// MySQLDescription describes the MySQL/MariaDB sink.
func MySQLDescription() location.Description {
	return location.Description{
		Scheme: "mysql", Kind: location.URLKind,
		Syntax:  "mysql://USER@HOST[:PORT]/DATABASE",
		Summary: "MySQL or MariaDB database in runferry's schema",
		Help:    help,
		Options: sqlstore.MySQLOptions(),
		Example: "MYSQL_PWD=... runferry copy parquet:./archive mysql://tracking@db.example.com/runs",
	}
}

// SQLiteDescription describes the SQLite sink.
func SQLiteDescription() location.Description {
	return location.Description{
		Scheme: "sqlite", Kind: location.PathKind,
		Syntax:  "sqlite:PATH",
		Summary: "SQLite database file in runferry's schema (created if missing)",
		Help:    help,
		Example: "runferry copy wandb:./wandb sqlite:./runs.db",
	}
}

// Open opens the sink at loc (the sinks.Factory Open function of every
// scheme). It connects but writes nothing: the schema is created or
// upgraded by the first write.
func Open(ctx context.Context, loc location.Location) (sinks.Sink, error) {
	st, err := sqlstore.Open(ctx, loc, sqlstore.ForWriting)
	if err != nil {
		return nil, err
	}
	return New(st), nil
}

// Factories returns the registry entries of the sink, one per database.
func Factories() []sinks.Factory {
	return []sinks.Factory{
		{Description: PostgresDescription(), Open: Open},
		{Description: MySQLDescription(), Open: Open},
		{Description: SQLiteDescription(), Open: Open},
	}
}

// Sink writes to one database.
type Sink struct {
	sinks.FormerOrigins
	st *sqlstore.Store

	migrateOnce sync.Once
	migrateErr  error
	closeOnce   sync.Once
	closeErr    error
}

var (
	_ sinks.Sink                = (*Sink)(nil)
	_ sinks.RunFinder           = (*Sink)(nil)
	_ sinks.Checker             = (*Sink)(nil)
	_ sinks.FormerOriginsSetter = (*Sink)(nil)
	_ sinks.Appender            = (*Sink)(nil)
	_ sinks.BaseFinder          = (*Sink)(nil)
	_ sinks.RunVerifier         = (*Sink)(nil)
)

// New returns a sink over an open store; Close closes the store.
func New(st *sqlstore.Store) *Sink { return &Sink{st: st} }

// Check proves the database reachable (Open connected, and refused a
// schema newer than this runferry knows). It writes nothing: the schema
// is created or upgraded by the first write, so a dry run leaves the
// database, or the absence of a SQLite file, as it was.
func (s *Sink) Check(ctx context.Context) error {
	if _, err := s.st.HasSchema(ctx); err != nil {
		return fault.Fatal(err)
	}
	return nil
}

func (s *Sink) migrate(ctx context.Context) error {
	s.migrateOnce.Do(func() {
		if err := s.st.Migrate(ctx); err != nil {
			s.migrateErr = fault.Fatal(err)
		}
	})
	return s.migrateErr
}

// Limits: SQLite has one writer at a time, so one run is written at
// once; the servers take four.
func (s *Sink) Limits() sinks.Limits {
	l := sinks.Limits{MaxInFlight: 4, MaxMetricsPerWrite: 10_000}
	if s.st.Dialect.Name == "sqlite" {
		l.MaxInFlight = 1
	}
	return l
}

// PutExperiment stores e under its origin (or updates it) and returns its
// id; an experiment held under a former origin of e with no run left in it
// is deleted.
func (s *Sink) PutExperiment(ctx context.Context, e schema.Experiment) (string, error) {
	if err := e.Validate(); err != nil {
		return "", fault.Permanent(err)
	}
	if err := s.migrate(ctx); err != nil {
		return "", err
	}
	id, err := s.st.PutExperiment(ctx, e)
	if err != nil {
		return "", fmt.Errorf("%s: experiment %s: %w", s.st.Where(), e.Origin, err)
	}
	if err := s.st.RetireExperiments(ctx, s.FormerKeys(e.Origin)); err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

// FindRun reports a stored run as complete (a run is stored only whole)
// with its fingerprint, or one stored under a former origin.
func (s *Sink) FindRun(ctx context.Context, origin schema.Ref) (sinks.RunState, string, error) {
	if held, err := s.st.HasSchema(ctx); err != nil || !held {
		return sinks.RunMissing, "", err // nothing written yet (a dry run creates no schema)
	}
	found, fp, err := s.st.FindRun(ctx, origin.String())
	if err != nil {
		return sinks.RunMissing, "", err
	}
	if found {
		return sinks.RunComplete, fp, nil
	}
	for _, f := range s.FormerKeys(origin) {
		found, _, err := s.st.FindRun(ctx, f)
		if err != nil {
			return sinks.RunMissing, "", err
		}
		if found {
			return sinks.RunUnderFormerOrigin, "", nil
		}
	}
	return sinks.RunMissing, "", nil
}

// VerifyRun reports a run the engine holds committed (by its ledger) that
// the database no longer holds: its row was deleted after the commit (a
// user cleaning the database; its params, metrics, logs and files go with
// it, ON DELETE CASCADE), so that a re-run writes it again rather than
// calling it unchanged. One indexed query per run; rows deleted inside a
// run that is still there are not seen (check compares them).
func (s *Sink) VerifyRun(ctx context.Context, origin schema.Ref) (string, error) {
	if held, err := s.st.HasSchema(ctx); err != nil || !held {
		if err == nil {
			return "the database holds none of runferry's tables (dropped since the run's commit)", nil
		}
		return "", err
	}
	found, _, err := s.st.FindRun(ctx, origin.String())
	if err != nil || found {
		return "", err
	}
	return "the run's row is no longer in the database (deleted since its commit)", nil
}

// OpenRun begins the run's transaction, in which the run stored under
// r.Origin or a former origin is deleted and r inserted.
func (s *Sink) OpenRun(ctx context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(expID, 10, 64)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("sql sink: run %s: unknown experiment id %q", r.Origin, expID))
	}
	tx, err := s.st.BeginRun(ctx, id, r, s.FormerKeys(r.Origin))
	if err != nil {
		return nil, unstorable(fmt.Errorf("%s: run %s: %w", s.st.Where(), r.Origin, err))
	}
	return &writer{s: s, tx: tx, run: r}, nil
}

// AppendRun begins the transaction that extends the run stored under
// r.Origin (sinks.Appender): the stored run must carry base.Mark in
// run_marks; r replaces its metadata, params and tags, its console lines
// and rich values are replaced by those written, its files are kept where
// the source announces the same size and SHA-256 and replaced or deleted
// otherwise, and the metrics written are added after the points it holds. The transaction commits
// it all at once, so an append cut short leaves the run as it was, still
// carrying its mark, and is simply tried again.
func (s *Sink) AppendRun(ctx context.Context, expID string, r schema.Run, base sinks.AppendBase) (sinks.RunWriter, error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	if err := s.migrate(ctx); err != nil {
		return nil, err
	}
	id, err := strconv.ParseInt(expID, 10, 64)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("sql sink: run %s: unknown experiment id %q", r.Origin, expID))
	}
	tx, err := s.st.BeginAppend(ctx, id, r, base.Mark)
	if errors.Is(err, sqlstore.ErrCannotAppend) {
		return nil, sinks.CannotAppend(strings.TrimPrefix(err.Error(), sqlstore.ErrCannotAppend.Error()+": "))
	}
	if err != nil {
		return nil, unstorable(fmt.Errorf("%s: run %s: %w", s.st.Where(), r.Origin, err))
	}
	return &writer{s: s, tx: tx, run: r}, nil
}

// HeldFiles lists the files with a body that the database holds of
// origin's copy, when it is the copy base describes
// (sinks.HeldFilesLister): an append keeps such a file when its size and
// SHA-256 are those the source announces, or, when the source announces
// none (MLflow), those of its body, read (sqlstore.RunTx.File).
func (s *Sink) HeldFiles(ctx context.Context, origin schema.Ref, base sinks.AppendBase) (map[string]sinks.HeldFile, bool, error) {
	if held, err := s.st.HasSchema(ctx); err != nil || !held {
		return nil, false, err
	}
	id, mark, _, ok, err := s.st.FindBase(ctx, origin.String())
	if err != nil || !ok || mark != base.Mark {
		return nil, false, err
	}
	files, err := s.st.Files(ctx, id)
	if err != nil {
		return nil, false, err
	}
	out := map[string]sinks.HeldFile{}
	for _, f := range files {
		if f.Problem == "" && f.SHA256 != "" {
			out[f.Path] = sinks.HeldFile{Size: f.Size, SHA256: f.SHA256}
		}
	}
	return out, true, nil
}

// FindBase returns what the database holds of origin's last commit: its
// id, mark and cursors (sinks.BaseFinder).
func (s *Sink) FindBase(ctx context.Context, origin schema.Ref) (destID, mark string, cursors []byte, ok bool, err error) {
	if held, err := s.st.HasSchema(ctx); err != nil || !held {
		return "", "", nil, false, err
	}
	id, mark, cursors, ok, err := s.st.FindBase(ctx, origin.String())
	if err != nil || !ok || cursors == nil {
		return "", "", nil, false, err
	}
	return "runs.id=" + strconv.FormatInt(id, 10), mark, cursors, true, nil
}

// Close closes the connection pool; safe to call more than once.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.st.Close() })
	return s.closeErr
}

// writer writes one run inside its transaction.
type writer struct {
	s   *Sink
	tx  *sqlstore.RunTx
	run schema.Run
	fp  string
}

var (
	_ sinks.ArtifactWriter    = (*writer)(nil)
	_ sinks.LogWriter         = (*writer)(nil)
	_ sinks.RichValueWriter   = (*writer)(nil)
	_ sinks.Fingerprinted     = (*writer)(nil)
	_ sinks.Identified        = (*writer)(nil)
	_ sinks.Marked            = (*writer)(nil)
	_ sinks.CursorKeeper      = (*writer)(nil)
	_ sinks.FileDeltaReporter = (*writer)(nil)
)

func (w *writer) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return unstorable(fmt.Errorf("%s: run %s: %s: %w", w.s.st.Where(), w.run.Origin, what, err))
}

// unstorable marks err permanent, saying why, when PostgreSQL refused a
// string its text type cannot hold (SQLSTATE 22021: a NUL byte or bytes
// that are not UTF-8; 22P05: a character the database's encoding lacks),
// or MySQL did (error 1366: bytes that are not UTF-8); console lines and
// param and tag values are stored as bytes instead
// (sqlstore.Dialect.HoldsText), other fields not:
// the same run fails the same way on every attempt and every later sync,
// so retrying only delays the report. Other errors are returned as they
// are.
func unstorable(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "22021" || pgErr.Code == "22P05") {
		return fault.Permanent(fmt.Errorf("%w: PostgreSQL text holds neither NUL bytes nor bytes that are not UTF-8, and this run holds some outside its console lines and param and tag values, so the run cannot be written here as it is (retrying cannot help; a Parquet archive or SQLite holds it exactly)", err))
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && myErr.Number == 1366 {
		return fault.Permanent(fmt.Errorf("%w: MySQL text (utf8mb4) holds no bytes that are not UTF-8, and this run holds some outside its console lines and param and tag values, so the run cannot be written here as it is (retrying cannot help; a Parquet archive or SQLite holds it exactly)", err))
	}
	return err
}

func (w *writer) WriteMetrics(ctx context.Context, batch []schema.Metric) error {
	return w.wrap("metrics", w.tx.Metrics(ctx, batch))
}

func (w *writer) WriteLogs(ctx context.Context, lines []schema.LogLine) error {
	return w.wrap("logs", w.tx.Logs(ctx, lines))
}

func (w *writer) WriteRichValues(ctx context.Context, values []schema.RichValue) error {
	return w.wrap("rich values", w.tx.RichValues(ctx, values))
}

func (w *writer) WriteArtifact(ctx context.Context, a schema.Artifact, body io.Reader) error {
	return w.wrap("files", w.tx.File(ctx, a, body))
}

func (w *writer) SetFingerprint(fp string) { w.fp = fp }

// FileDelta says, once an append committed, how many files it kept as
// the database held them (same size and SHA-256 as the source announced),
// not stored again, and how many it deleted; zero for a whole write.
func (w *writer) FileDelta() (keptFiles, keptBytes, deletedFiles int64) { return w.tx.FileDelta() }

// SetMark stores mark with the commit (run_marks), for a later append.
func (w *writer) SetMark(mark string) { w.tx.Mark = mark }

// SetCursors stores the engine's cursors with the commit (run_marks).
func (w *writer) SetCursors(doc []byte) { w.tx.Cursors = append([]byte(nil), doc...) }

func (w *writer) DestID() string { return w.tx.DestID() }

// Commit commits the run's transaction, then deletes the experiments held
// under former origins of the run's experiment that no run is left in.
func (w *writer) Commit(ctx context.Context) error {
	if err := w.tx.Commit(ctx, w.fp); err != nil {
		return w.wrap("commit", err)
	}
	return w.s.st.RetireExperiments(ctx, w.s.FormerKeys(w.run.Experiment))
}

// Abort rolls the run's transaction back.
func (w *writer) Abort(context.Context) error {
	w.tx.Abort()
	return nil
}

var _ sinks.HeldFilesLister = (*Sink)(nil)
