package sqldb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// mappingOption is the source option naming a mapping file.
var mappingOption = location.Option{Name: "mapping",
	Help: "A YAML mapping file (docs/SQL-MAPPING.md) that reads a database of your own design: the SQL yielding experiments, " +
		"runs, params, tags, metrics, console logs, artifacts and rich values (images, histograms, text), and which column holds which field (a cursor column lets sync skip runs that did not change). Without it the database must hold runferry's own schema."}

// MappedSource reads a database of the user's own design through a
// mapping file (sqlstore.Mapping). Metrics are streamed run by run, never
// loaded whole; a mapping or data error (a missing column, a NULL where a
// value is required, a value of the wrong type) names the mapping entry
// and column, and fails the run it belongs to (the listing, when it is
// in the experiments or runs).
type MappedSource struct {
	st     *sqlstore.Store
	r      *sqlstore.Mapped
	closed atomic.Bool
}

var (
	_ sources.Source          = (*MappedSource)(nil)
	_ sources.Checker         = (*MappedSource)(nil)
	_ sources.LogReader       = (*MappedSource)(nil)
	_ sources.ArtifactLister  = (*MappedSource)(nil)
	_ sources.HeaderLister    = (*MappedSource)(nil)
	_ sources.Fingerprinter   = (*MappedSource)(nil)
	_ sources.ChangeTimer     = (*MappedSource)(nil)
	_ sources.RichValueReader = (*MappedSource)(nil)
)

// OpenMapped opens the database at loc and reads it through the mapping
// file at path.
func OpenMapped(ctx context.Context, loc location.Location, path string) (*MappedSource, error) {
	m, err := sqlstore.LoadMapping(path)
	if err != nil {
		return nil, fault.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, loc, sqlstore.ForMapping)
	if err != nil {
		return nil, err
	}
	return &MappedSource{st: st, r: sqlstore.NewMapped(st, m)}, nil
}

// CheckMapping checks the mapping against the live database (see
// sqlstore.Mapped.Check), for `runferry mapping check`.
func (s *MappedSource) CheckMapping(ctx context.Context) []string { return s.r.Check(ctx) }

func (s *MappedSource) classify(err error, fatal bool) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sqlstore.ErrMapping) || errors.Is(err, sqlstore.ErrNotFound) {
		if fatal {
			return fault.Fatal(err)
		}
		return fault.Permanent(err)
	}
	return fmt.Errorf("%s: %w", s.st.Where(), err)
}

// Check proves the database reachable.
func (s *MappedSource) Check(ctx context.Context) error {
	if s.closed.Load() {
		return fault.Fatal(ErrClosed)
	}
	if err := s.st.DB.PingContext(ctx); err != nil {
		return fault.Fatal(fmt.Errorf("%s: %w", s.st.Where(), err))
	}
	return nil
}

// Experiments yields the mapped experiments sorted by origin.
func (s *MappedSource) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		if s.closed.Load() {
			yield(schema.Experiment{}, fault.Fatal(ErrClosed))
			return
		}
		exps, err := s.r.Experiments(ctx)
		if err != nil {
			yield(schema.Experiment{}, s.classify(err, true))
			return
		}
		for _, e := range exps {
			if ctx.Err() != nil {
				yield(schema.Experiment{}, ctx.Err())
				return
			}
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Runs yields the mapped runs of exp sorted by origin.
func (s *MappedSource) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return s.runs(ctx, exp, s.r.Runs)
}

// RunHeaders yields the runs of exp as the runs query alone tells them,
// without params and tags, when the mapping declares a cursor column (so
// a sync reads nothing more of a run whose cursor did not move); without
// one it yields the runs in full, as Runs.
func (s *MappedSource) RunHeaders(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	if !s.r.HasCursor() {
		return s.Runs(ctx, exp)
	}
	return s.runs(ctx, exp, s.r.RunHeaders)
}

// Run reads the run with origin ref in full, as Runs yields it.
func (s *MappedSource) Run(ctx context.Context, ref schema.Ref) (schema.Run, error) {
	if s.closed.Load() {
		return schema.Run{}, fault.Fatal(ErrClosed)
	}
	r, err := s.r.Run(ctx, ref)
	return r, s.classify(err, false)
}

// fingerprintVersion names the recipe of Fingerprint.
const fingerprintVersion = "sqlmap1:"

// Fingerprint is, with a cursor column, a digest of the run's cursor value
// and status as the listing read them, and of the mapping's text: a run
// whose cursor did not move is unchanged, running or not, until the
// mapping is edited. Without one it is the engine's own (a digest
// of the run's metadata; "" for a running run, always read again).
func (s *MappedSource) Fingerprint(_ context.Context, run schema.Run) (string, error) {
	if s.r.HasCursor() {
		v, _, ok := s.r.Cursor(run.Origin)
		if !ok {
			return "", nil
		}
		sum := sha256.Sum256([]byte(s.r.MappingDigest() + "\x00" + v + "\x00" + string(run.Status)))
		return fingerprintVersion + hex.EncodeToString(sum[:16]), nil
	}
	if run.Status == schema.StatusRunning {
		return "", nil
	}
	b, err := json.Marshal(run)
	if err != nil {
		return "", fault.Permanent(err)
	}
	sum := sha256.Sum256(b)
	return "meta:" + hex.EncodeToString(sum[:16]), nil
}

// ChangedAt is the cursor column's value when it is a time (a timestamp,
// or epoch seconds or milliseconds as the runs entry's time says);
// otherwise the later of the run's start and end.
func (s *MappedSource) ChangedAt(_ context.Context, run schema.Run) (time.Time, bool) {
	if _, t, ok := s.r.Cursor(run.Origin); ok && !t.IsZero() {
		return t, true
	}
	t := run.Start
	if run.End.After(t) {
		t = run.End
	}
	return t, !t.IsZero()
}

func (s *MappedSource) runs(ctx context.Context, exp schema.Ref, list func(context.Context, schema.Ref) ([]schema.Run, error)) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		if s.closed.Load() {
			yield(schema.Run{}, fault.Fatal(ErrClosed))
			return
		}
		runs, err := list(ctx, exp)
		if err != nil {
			yield(schema.Run{}, s.classify(err, false))
			return
		}
		for _, r := range runs {
			if ctx.Err() != nil {
				yield(schema.Run{}, ctx.Err())
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Metrics streams the run's points in pages.
func (s *MappedSource) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return mappedPages(ctx, s, run, s.r.Metrics)
}

// Logs streams the run's console lines in pages (none without a logs
// entry).
func (s *MappedSource) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return mappedPages(ctx, s, run, s.r.Logs)
}

// RichValues streams the run's rich values in pages (none without a
// rich_values entry): images and other files, JSON documents, text.
func (s *MappedSource) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	return mappedPages(ctx, s, run, s.r.RichValues)
}

// Artifacts yields the run's files sorted by path (none without an
// artifacts entry); a local file that is missing comes with a Problem.
func (s *MappedSource) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		if s.closed.Load() {
			yield(schema.Artifact{}, fault.Fatal(ErrClosed))
			return
		}
		files, err := s.r.Artifacts(ctx, run)
		if err != nil {
			yield(schema.Artifact{}, s.classify(err, false))
			return
		}
		for _, f := range files {
			if ctx.Err() != nil {
				yield(schema.Artifact{}, ctx.Err())
				return
			}
			if !yield(f, nil) {
				return
			}
		}
	}
}

// mappedPages streams what read gives of run in pages of PageSize.
func mappedPages[T any](ctx context.Context, s *MappedSource, run schema.Ref, read func(context.Context, schema.Ref, int, func([]T) error) error) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		if s.closed.Load() {
			yield(nil, fault.Fatal(ErrClosed))
			return
		}
		err := sources.ReadPages(ctx, yield, func(each func([]T) error) error {
			return read(ctx, run, PageSize, each)
		})
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			yield(nil, s.classify(err, false))
		}
	}
}

// Close closes the connection pool; every later call fails.
func (s *MappedSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.st.Close()
}

// GenerateMapping writes a starting mapping file for the database at loc
// from its catalogue (sqlstore.Store.Generate), with notes on what it could
// not decide.
func GenerateMapping(ctx context.Context, loc location.Location) (mapping string, notes []string, err error) {
	st, err := sqlstore.Open(ctx, loc, sqlstore.ForMapping)
	if err != nil {
		return "", nil, err
	}
	defer st.Close()
	return st.Generate(ctx)
}
