// Package sqldb is the source that reads runferry's own schema back from a
// SQL database (PostgreSQL, MySQL/MariaDB, SQLite), as the sqldb sink wrote
// it: runs keep the origins they were copied from, so
// `runferry copy postgres://… mlflow+http://…` restores, and check compares.
package sqldb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"sync/atomic"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// PageSize is the number of points, lines or values in one yielded page.
const PageSize = 10_000

const help = "Reads runferry's own tables (docs/SQL.md) as the SQL sink wrote them: every run committed, with " +
	"the origin it was copied from. A database without runferry's schema, or with a newer version of it, is refused. " +
	"With ?mapping=FILE it reads a database of your own design instead: the mapping file (docs/SQL-MAPPING.md) gives " +
	"the SQL yielding experiments, runs, params, tags and metrics; check it with 'runferry mapping check LOCATION'."

// PostgresDescription describes the PostgreSQL source.
func PostgresDescription() location.Description {
	return location.Description{
		Scheme: "postgres", Aliases: []string{"postgresql"}, Kind: location.URLKind,
		Syntax:  "postgres://USER@HOST[:PORT]/DATABASE[?mapping=FILE]",
		Summary: "PostgreSQL database in runferry's schema, or of your own design through a mapping file",
		Help:    help, Options: append(sqlstore.PostgresOptions(), mappingOption),
		Example: "PGPASSWORD=... runferry copy postgres://tracking@db.example.com/runs mlflow+http://127.0.0.1:5000",
	}
}

// MySQLDescription describes the MySQL/MariaDB source.
func MySQLDescription() location.Description {
	return location.Description{
		Scheme: "mysql", Kind: location.URLKind,
		Syntax:  "mysql://USER@HOST[:PORT]/DATABASE[?mapping=FILE]",
		Summary: "MySQL or MariaDB database in runferry's schema, or of your own design through a mapping file",
		Help:    help, Options: append(sqlstore.MySQLOptions(), mappingOption),
		Example: "MYSQL_PWD=... runferry check parquet:./archive mysql://tracking@db.example.com/runs",
	}
}

// SQLiteDescription describes the SQLite source.
func SQLiteDescription() location.Description {
	return location.Description{
		Scheme: "sqlite", Kind: location.PathKind,
		Syntax:  "sqlite:PATH[?mapping=FILE]",
		Summary: "SQLite database file in runferry's schema, or of your own design through a mapping file",
		Help:    help, Options: []location.Option{mappingOption},
		Example: "runferry copy sqlite:./runs.db parquet:./archive",
	}
}

// Factories returns the registry entries of the source, one per database.
func Factories() []sources.Factory {
	return []sources.Factory{
		{Description: PostgresDescription(), Open: Open},
		{Description: MySQLDescription(), Open: Open},
		{Description: SQLiteDescription(), Open: Open},
	}
}

// Open opens the source at loc (the sources.Factory Open function):
// through the mapping file ?mapping= names, if any, else runferry's own
// schema.
func Open(ctx context.Context, loc location.Location) (sources.Source, error) {
	if path := loc.Query("mapping"); path != "" {
		return OpenMapped(ctx, loc, path)
	}
	st, err := sqlstore.Open(ctx, loc, sqlstore.ForReading)
	if err != nil {
		return nil, err
	}
	return New(st), nil
}

// Source reads one database.
type Source struct {
	st     *sqlstore.Store
	closed atomic.Bool
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.LogReader       = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.Fingerprinter   = (*Source)(nil)
	_ sources.TransformReader = (*Source)(nil)
	_ sources.Sizer           = (*Source)(nil)
)

// New returns a source over an open store; Close closes the store.
func New(st *sqlstore.Store) *Source { return &Source{st: st} }

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("sql source: closed")

// Check proves the database reachable.
func (s *Source) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fault.Fatal(ErrClosed)
	}
	if err := s.st.DB.PingContext(ctx); err != nil {
		return fault.Fatal(fmt.Errorf("%s: %w", s.st.Where(), err))
	}
	return nil
}

func (s *Source) open() error {
	if s.closed.Load() {
		return fault.Fatal(ErrClosed)
	}
	return nil
}

// classify makes a missing row permanent for the run; other errors
// (connections) stay retryable.
func (s *Source) classify(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("%s: %w", s.st.Where(), err)
	if errors.Is(err, sqlstore.ErrNotFound) {
		return fault.Permanent(err)
	}
	return err
}

// Experiments yields the stored experiments sorted by origin.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		exps, err := s.st.Experiments(ctx)
		if err != nil {
			yield(schema.Experiment{}, fault.Fatal(s.classify(err)))
			return
		}
		for _, e := range exps {
			if ctx.Err() != nil {
				yield(schema.Experiment{}, ctx.Err())
				return
			}
			if !yield(e.Experiment, nil) {
				return
			}
		}
	}
}

// Runs yields the runs of exp sorted by origin.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Run{}, err)
			return
		}
		id, found, err := s.st.ExperimentID(ctx, exp.String())
		if err != nil || !found {
			if err == nil {
				err = fmt.Errorf("experiment %s: %w", exp, sqlstore.ErrNotFound)
			}
			yield(schema.Run{}, s.classify(err))
			return
		}
		runs, err := s.st.Runs(ctx, id, exp)
		if err != nil {
			yield(schema.Run{}, s.classify(err))
			return
		}
		for _, r := range runs {
			if ctx.Err() != nil {
				yield(schema.Run{}, ctx.Err())
				return
			}
			if !yield(r.Run, nil) {
				return
			}
		}
	}
}

// Fingerprint returns the fingerprint the run was stored with, so that a
// sync from the database skips unchanged runs.
func (s *Source) Fingerprint(ctx context.Context, r schema.Run) (string, error) {
	if r.Status == schema.StatusRunning {
		return "", nil
	}
	found, fp, err := s.st.FindRun(ctx, r.Origin.String())
	if err != nil || !found {
		return "", s.classify(err)
	}
	return fp, nil
}

// RecordedTransform returns the transform the run was stored through.
func (s *Source) RecordedTransform(ctx context.Context, run schema.Ref) string {
	found, fp, err := s.st.FindRun(ctx, run.String())
	if err != nil || !found {
		return ""
	}
	return transform.Recorded(fp)
}

// Size returns the run's points and file bytes as stored.
func (s *Source) Size(ctx context.Context, r schema.Run) (points, bytes int64, ok bool) {
	sr, err := s.st.Run(ctx, r.Origin.String())
	if err != nil {
		return 0, 0, false
	}
	files, err := s.st.Files(ctx, sr.ID)
	if err != nil {
		return 0, 0, false
	}
	for _, f := range files {
		if f.Size > 0 {
			bytes += f.Size
		}
	}
	return sr.Points, bytes, true
}

// pages adapts a callback reader of the store to an iterator.
func pages[T any](ctx context.Context, s *Source, run schema.Ref, read func(context.Context, int64, int, func([]T) error) error) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		if err := s.open(); err != nil {
			yield(nil, err)
			return
		}
		id, err := s.st.RunID(ctx, run.String())
		if err != nil {
			yield(nil, s.classify(err))
			return
		}
		err = sources.ReadPages(ctx, yield, func(each func([]T) error) error {
			return read(ctx, id, PageSize, each)
		})
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			} else {
				err = s.classify(err)
			}
			yield(nil, err)
		}
	}
}

// Metrics yields the run's points each key's together, by step, then in
// the order written; the keys come in name order, except on MySQL from
// schema version 4 on, where they come in the order of their name_hash
// (two keys of one hash come interleaved, each still by step).
func (s *Source) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return pages(ctx, s, run, s.st.Metrics)
}

// Logs yields the run's console lines in the order written.
func (s *Source) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return pages(ctx, s, run, s.st.Logs)
}

// RichValues yields the run's rich values in the order written.
func (s *Source) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	return pages(ctx, s, run, s.st.RichValues)
}

// Artifacts yields the run's files sorted by path; Open streams the body
// chunk by chunk.
func (s *Source) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		id, err := s.st.RunID(ctx, run.String())
		if err != nil {
			yield(schema.Artifact{}, s.classify(err))
			return
		}
		files, err := s.st.Files(ctx, id)
		if err != nil {
			yield(schema.Artifact{}, s.classify(err))
			return
		}
		for _, f := range files {
			if ctx.Err() != nil {
				yield(schema.Artifact{}, ctx.Err())
				return
			}
			// A stored problem is what the copy that wrote the database
			// recorded of its source: inherited.
			a := schema.Artifact{Path: f.Path, Size: -1, Problem: f.Problem, Inherited: f.Problem != ""}
			if f.Problem == "" {
				a.Size, a.Digest = f.Size, "sha256:"+f.SHA256
				a.Open = func(ctx context.Context) (io.ReadCloser, error) { return s.st.OpenFile(ctx, f), nil }
			}
			if !yield(a, nil) {
				return
			}
		}
	}
}

// Close closes the connection pool; every later call fails with
// ErrClosed.
func (s *Source) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.st.Close()
}

var _ sources.ManifestLister = (*Source)(nil)

// Manifests lists the W&B Artifacts versions the run logged and used from
// the manifest files among its files (see sources.ManifestsFromFiles).
func (s *Source) Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return sources.ManifestsFromFiles(ctx, s, run)
}
