// Package fault classifies errors so that the transfer engine, not the
// adapters, decides what to do about them.
//
// Adapters wrap the errors they return with Fatal, Permanent or Retryable;
// the engine reads the class with KindOf. An error that nobody classified is
// treated as Retryable: a run is retried a few times and then recorded as
// failed, which is the safe choice for a migration of many runs.
package fault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind is an error's class.
type Kind int

// The error classes, from least to most severe.
const (
	// KindRetryable: the run may succeed if tried again (a timeout, a 503).
	KindRetryable Kind = iota
	// KindPermanent: the run cannot be transferred as it is (bad data, a
	// param conflict); record it as failed and carry on with the others.
	KindPermanent
	// KindFatal: no run can succeed (bad credentials, an unreachable server
	// at start, a full disk); stop the whole job.
	KindFatal
	// KindCanceled: the job was interrupted.
	KindCanceled
)

// String names the kind as it appears in reports.
func (k Kind) String() string {
	switch k {
	case KindRetryable:
		return "retryable"
	case KindPermanent:
		return "permanent"
	case KindFatal:
		return "fatal"
	case KindCanceled:
		return "canceled"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

type classified struct {
	kind  Kind
	after time.Duration
	err   error
}

func (c *classified) Error() string { return c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

// Fatal marks err as fatal to the whole job. It returns nil for nil.
func Fatal(err error) error { return wrap(KindFatal, 0, err) }

// Permanent marks err as permanent for the run it happened in.
func Permanent(err error) error { return wrap(KindPermanent, 0, err) }

// Retryable marks err as retryable, after waiting at least after (0: the
// engine's own backoff).
func Retryable(err error, after time.Duration) error { return wrap(KindRetryable, after, err) }

func wrap(k Kind, after time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &classified{kind: k, after: after, err: err}
}

// KindOf returns the class of err: the outermost classification wins;
// context cancellation is KindCanceled; anything unclassified is retryable.
// A full disk (no space, no quota, a read-only file system) is fatal
// whatever its classification: it would fail every run alike.
func KindOf(err error) Kind {
	if err != nil && diskFull(err) {
		return KindFatal // a full disk fails every run alike: stop at once
	}
	var c *classified
	if errors.As(err, &c) {
		return c.kind
	}
	if errors.Is(err, context.Canceled) {
		return KindCanceled
	}
	return KindRetryable
}

// RetryAfter returns the wait a Retryable error asked for, or 0.
func RetryAfter(err error) time.Duration {
	var c *classified
	if errors.As(err, &c) && c.kind == KindRetryable {
		return c.after
	}
	return 0
}
