package parquetdir

import (
	"context"
	"iter"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.RegistryReader = (*Source)(nil)

// RegisteredModels yields the archived model registry ordered by name
// (see sources.RegistryReader): each model with its aliases, tags and
// versions as archived, every version's Run the origin under which the
// archive holds (or would hold) its source run. An archive written before
// format version 3 holds none. A damaged file is an error naming it.
func (s *Source) RegisteredModels(ctx context.Context) iter.Seq2[schema.RegisteredModel, error] {
	return func(yield func(schema.RegisteredModel, error) bool) {
		if err := s.Check(ctx); err != nil {
			yield(schema.RegisteredModel{}, err)
			return
		}
		models, err := s.r.RegisteredModels()
		if err != nil {
			yield(schema.RegisteredModel{}, classify(err))
			return
		}
		for _, m := range models {
			if ctx.Err() != nil {
				yield(schema.RegisteredModel{}, ctx.Err())
				return
			}
			if !yield(m, nil) {
				return
			}
		}
	}
}
