package main

import (
	"math"
	"runtime/debug"
	"testing"
)

// TestTuneGC: without GOGC and GOMEMLIMIT runferry sets GOGC 400 and its
// soft memory limit (160 MiB); a user's GOMEMLIMIT or GOGC, which the Go
// runtime read at start, is left as the runtime set it.
func TestTuneGC(t *testing.T) {
	limit, percent := debug.SetMemoryLimit(-1), debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(limit); debug.SetGCPercent(percent) })

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	debug.SetMemoryLimit(math.MaxInt64)
	debug.SetGCPercent(100)
	tuneGC()
	if got := debug.SetMemoryLimit(-1); got != 160<<20 {
		t.Errorf("soft memory limit %d, want %d", got, 160<<20)
	}
	if got := debug.SetGCPercent(100); got != 400 {
		t.Errorf("GOGC %d, want 400", got)
	}

	// As the runtime leaves them when started with GOMEMLIMIT=1GiB GOGC=50.
	t.Setenv("GOGC", "50")
	t.Setenv("GOMEMLIMIT", "1GiB")
	debug.SetMemoryLimit(1 << 30)
	debug.SetGCPercent(50)
	tuneGC()
	if got := debug.SetMemoryLimit(-1); got != 1<<30 {
		t.Errorf("with GOMEMLIMIT=1GiB: soft memory limit %d", got)
	}
	if got := debug.SetGCPercent(50); got != 50 {
		t.Errorf("with GOGC=50: GOGC %d", got)
	}
}
