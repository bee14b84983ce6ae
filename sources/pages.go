package sources

import (
	"context"
	"errors"
)

// errStopped ends a paged read early when the consumer stops iterating.
var errStopped = errors.New("sources: consumer stopped")

// ReadPages runs read, which delivers pages to the function it is given,
// and yields each page to the consumer. It stops read when the consumer
// stops iterating (then it returns nil) or when ctx is done (the callback
// returns ctx.Err()). Otherwise it returns read's error, unchanged, for the
// adapter to classify and yield: ReadPages itself yields only pages.
func ReadPages[T any](ctx context.Context, yield func([]T, error) bool, read func(each func([]T) error) error) error {
	err := read(func(page []T) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !yield(page, nil) {
			return errStopped
		}
		return nil
	})
	if errors.Is(err, errStopped) {
		return nil
	}
	return err
}
