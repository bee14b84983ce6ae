package testenv

import (
	"sync"
	"testing"
)

// sharedService holds one service shared by every test of the binary
// (SharedMLflow, SharedPostgres, SharedS3, ...): started on first use,
// the same instance to every caller, stopped by StopShared (Main). A
// failed start fails every caller with the same error, without retrying;
// missing binaries skip the test instead (fail it under CI).
type sharedService[T interface{ Stop() }] struct {
	what string // for messages: "PostgreSQL", "S3 server", ...
	mu   sync.Mutex
	inst T
	up   bool
	err  error
}

// get returns the instance, starting it with start if there is none yet.
func (h *sharedService[T]) get(t testing.TB, start func() (T, error)) T {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.up && h.err == nil {
		h.inst, h.err = start()
		h.up = h.err == nil
	}
	if h.err != nil {
		if isMissingBinaries(h.err) {
			Unavailable(t, h.what, h.err.Error())
		}
		t.Fatalf("testenv: shared %s: %v", h.what, h.err)
	}
	return h.inst
}

// stop stops the instance, if one was started, and forgets a failed
// start: the next get starts a new one.
func (h *sharedService[T]) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up {
		h.inst.Stop()
	}
	var zero T
	h.inst, h.up, h.err = zero, false, nil
}
