package parquetdir

import (
	"context"
	"iter"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.TraceReader = (*Source)(nil)

// Traces yields the traces the archive holds for experiment exp (its
// traces table file, format version 3), ordered by request time and
// origin; an archive written before version 3 holds none.
func (s *Source) Traces(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Trace, error] {
	return func(yield func(schema.Trace, error) bool) {
		if err := s.Check(ctx); err != nil {
			yield(schema.Trace{}, err)
			return
		}
		e, ok := s.r.Experiment(exp.String())
		if !ok {
			return
		}
		traces, err := s.r.Traces(e)
		if err != nil {
			yield(schema.Trace{}, classify(err))
			return
		}
		for _, t := range traces {
			if ctx.Err() != nil {
				yield(schema.Trace{}, ctx.Err())
				return
			}
			t.Canonicalize()
			if !yield(t, nil) {
				return
			}
		}
	}
}
