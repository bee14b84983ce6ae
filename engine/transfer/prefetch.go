package transfer

import (
	"context"
	"iter"
)

// prefetch runs seq in its own goroutine, up to depth elements ahead of the
// consumer, so that reading the source and writing the sink overlap on two
// cores. The sequence is started with a context that is canceled when the
// consumer stops early; prefetch returns only after the goroutine ended.
// Elements must be owned by the consumer once yielded (the source contract
// says pages are).
func prefetch[T any](ctx context.Context, depth int, seq func(context.Context) iter.Seq2[T, error]) iter.Seq2[T, error] {
	type item struct {
		v   T
		err error
	}
	return func(yield func(T, error) bool) {
		parent := ctx
		ctx, cancel := context.WithCancel(ctx)
		ch := make(chan item, depth)
		go func() {
			defer close(ch)
			for v, err := range seq(ctx) {
				select {
				case ch <- item{v, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		defer func() {
			cancel()
			for range ch { // let the producer finish
			}
		}()
		for it := range ch {
			if !yield(it.v, it.err) || it.err != nil {
				return
			}
		}
		// The producer may have stopped on a canceled context without
		// handing over the error: never let that pass for the end of data.
		if err := parent.Err(); err != nil {
			var zero T
			yield(zero, err)
		}
	}
}
