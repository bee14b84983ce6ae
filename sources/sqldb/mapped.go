package sqldb

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// mappingOption is the source option naming a mapping file.
var mappingOption = location.Option{Name: "mapping",
	Help: "A YAML mapping file (docs/SQL-MAPPING.md) that reads a database of your own design: the SQL yielding experiments, " +
		"runs, params, tags and metrics, and which column holds which field. Without it the database must hold runferry's own schema."}

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
	_ sources.Source  = (*MappedSource)(nil)
	_ sources.Checker = (*MappedSource)(nil)
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
	return func(yield func(schema.Run, error) bool) {
		if s.closed.Load() {
			yield(schema.Run{}, fault.Fatal(ErrClosed))
			return
		}
		runs, err := s.r.Runs(ctx, exp)
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
	return func(yield func([]schema.Metric, error) bool) {
		if s.closed.Load() {
			yield(nil, fault.Fatal(ErrClosed))
			return
		}
		err := sources.ReadPages(ctx, yield, func(each func([]schema.Metric) error) error {
			return s.r.Metrics(ctx, run, PageSize, each)
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
