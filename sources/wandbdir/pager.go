package wandbdir

import (
	"context"
	"errors"
	"iter"
	"slices"

	"github.com/runferry/runferry/schema"
)

// stream runs one pass over a run's segments with the handler build
// returns, yielding what it adds to the pager in pages of PageSize; after,
// if not nil, runs once the segments are read, with the walk's damage
// notes.
func stream[T any](ctx context.Context, s *Source, run schema.Ref, build func(p *pager[T]) (handler, func(*runInfo, []string) error)) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(nil, err)
			return
		}
		p := &pager[T]{yield: yield}
		h, after := build(p)
		damage, err := walk(ctx, ri, h)
		if err == nil && after != nil {
			err = after(ri, damage)
		}
		switch {
		case errors.Is(err, errStop):
		case err != nil:
			yield(nil, err)
		case len(p.page) > 0:
			yield(p.page, nil)
		}
	}
}

// pager gathers values into pages of PageSize and yields each page as it
// fills. Pages belong to the consumer once yielded, so each is a new slice;
// after the first page, they are allocated at their full size at once.
type pager[T any] struct {
	yield func([]T, error) bool
	page  []T
	full  bool // a page was yielded
}

// add appends v. It returns errStop when the consumer stopped iterating.
func (p *pager[T]) add(v T) error {
	if p.page == nil && p.full {
		p.page = make([]T, 0, PageSize)
	}
	p.page = append(p.page, v)
	if len(p.page) >= PageSize {
		return p.flush()
	}
	return nil
}

// extend adds room for up to n values at the end of the current page and
// returns it (at most what the page has left) for the caller to fill; the
// caller then calls flushFull.
func (p *pager[T]) extend(n int) []T {
	if p.page == nil && p.full {
		p.page = make([]T, 0, PageSize)
	}
	n = min(n, PageSize-len(p.page))
	p.page = slices.Grow(p.page, n)
	start := len(p.page)
	p.page = p.page[:start+n]
	return p.page[start:]
}

// flushFull yields the current page if it is full.
func (p *pager[T]) flushFull() error {
	if len(p.page) >= PageSize {
		return p.flush()
	}
	return nil
}

// flush yields the current page.
func (p *pager[T]) flush() error {
	page := p.page
	p.page, p.full = nil, true
	if !p.yield(page, nil) {
		return errStop
	}
	return nil
}
