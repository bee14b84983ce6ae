package fault

import (
	"context"
	"sync/atomic"
)

type overloadKey struct{}

// WithOverloadSignal returns a context for one request and a function
// reporting whether SignalOverload was called on it (or on a context
// derived from it): the way a client deep below reports a 429 or 503 that
// its own retries absorbed.
func WithOverloadSignal(ctx context.Context) (context.Context, func() bool) {
	var b atomic.Bool
	return context.WithValue(ctx, overloadKey{}, &b), b.Load
}

// SignalOverload records on ctx that the server answered 429 or 503. It
// does nothing for a context without a signal.
func SignalOverload(ctx context.Context) {
	if b, ok := ctx.Value(overloadKey{}).(*atomic.Bool); ok {
		b.Store(true)
	}
}
