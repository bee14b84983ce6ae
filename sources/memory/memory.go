// Package memory is a source that serves a dataset.Dataset held in memory.
// It is the reference implementation of the sources.Source contract, drives
// the engine's tests, and reads back what sinks/memory stored.
package memory

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
)

// PageSize is the number of points, lines or values in one yielded page.
const PageSize = 500

// Source serves a dataset. The dataset must not change while it is served.
type Source struct {
	mu     sync.Mutex
	data   *dataset.Dataset
	closed bool
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.LogReader       = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
)

// New returns a source serving d.
func New(d *dataset.Dataset) *Source { return &Source{data: d} }

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("memory source: closed")

func (s *Source) snapshot() (*dataset.Dataset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fault.Fatal(ErrClosed)
	}
	return s.data, nil
}

// Check reports whether the source is open.
func (s *Source) Check(context.Context) error {
	_, err := s.snapshot()
	return err
}

// Experiments yields the dataset's experiments in their stored order.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		d, err := s.snapshot()
		if err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		for _, e := range d.Experiments {
			if ctx.Err() != nil {
				yield(schema.Experiment{}, ctx.Err())
				return
			}
			e.Canonicalize()
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Runs yields the runs of exp in their stored order.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		d, err := s.snapshot()
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		for _, rd := range d.Runs {
			if rd.Run.Experiment != exp {
				continue
			}
			if ctx.Err() != nil {
				yield(schema.Run{}, ctx.Err())
				return
			}
			r := ownSlices(rd.Run)
			r.Canonicalize()
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (s *Source) run(ref schema.Ref) (*dataset.RunData, error) {
	d, err := s.snapshot()
	if err != nil {
		return nil, err
	}
	if rd := d.Run(ref); rd != nil {
		return rd, nil
	}
	return nil, fault.Permanent(fmt.Errorf("memory source: run %s not found", ref))
}

// Metrics yields the run's points in stored order, PageSize at a time.
func (s *Source) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return pages(ctx, s, run, func(rd *dataset.RunData) []schema.Metric { return rd.Metrics })
}

// RichValues yields the run's rich values in stored order.
func (s *Source) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	return pages(ctx, s, run, func(rd *dataset.RunData) []schema.RichValue { return rd.RichValues })
}

// Logs yields the run's console lines in stored order.
func (s *Source) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return pages(ctx, s, run, func(rd *dataset.RunData) []schema.LogLine { return rd.Logs })
}

func pages[T any](ctx context.Context, s *Source, run schema.Ref, field func(*dataset.RunData) []T) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		rd, err := s.run(run)
		if err != nil {
			yield(nil, err)
			return
		}
		all := field(rd)
		for i := 0; i < len(all); i += PageSize {
			if ctx.Err() != nil {
				yield(nil, ctx.Err())
				return
			}
			page := append([]T(nil), all[i:min(i+PageSize, len(all))]...)
			if !yield(page, nil) {
				return
			}
		}
	}
}

// Artifacts yields the run's files sorted by path.
func (s *Source) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		rd, err := s.run(run)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		for _, f := range rd.Files {
			if ctx.Err() != nil {
				yield(schema.Artifact{}, ctx.Err())
				return
			}
			if !yield(f.Artifact(), nil) {
				return
			}
		}
	}
}

// Close makes every later call fail with ErrClosed.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// ownSlices returns r with copies of the slices Canonicalize rewrites in
// place, so that listing a run never writes the dataset's own (runs of
// one dataset may share them, and a job transfers runs while it lists
// others).
func ownSlices(r schema.Run) schema.Run {
	r.Params, r.Tags, r.Labels = slices.Clone(r.Params), slices.Clone(r.Tags), slices.Clone(r.Labels)
	r.Inputs = slices.Clone(r.Inputs)
	for i := range r.Inputs {
		r.Inputs[i].Tags = slices.Clone(r.Inputs[i].Tags)
	}
	return r
}
