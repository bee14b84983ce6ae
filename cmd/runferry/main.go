// Command runferry moves ML experiment-tracking runs between W&B, MLflow,
// Parquet archives and SQL databases. See README.md and `runferry --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"
)

func main() {
	tuneGC()
	stopProfile := startProfile()
	stopHeap := startHeapProfiles()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	stopProfile()
	stopHeap()
	os.Exit(code)
}

// tuneGC lets the heap grow to four times its live size between
// collections unless GOGC says otherwise. runferry's live heap is small
// (pages of points, a sort buffer) while it allocates a page per read, so
// the default spends much of a transfer collecting; a soft memory limit
// (softMemoryLimit, unless GOMEMLIMIT gives one) keeps the total bounded.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(softMemoryLimit)
	}
}

// softMemoryLimit is the Go runtime's soft memory limit runferry sets. The
// limit, not the live heap (a few tens of MB, flat in the number of runs),
// is what sets a job's peak resident memory: with GOGC 400 the heap grows
// to it between collections, and the process holds about 45 MiB more
// (its code, the runtime). At 200 MiB a 10,000-run export peaked at
// 246-262 MiB, over the 256 MB (244 MiB) target; at 160 MiB it peaks at
// about 200 MiB, its CPU time the same within the noise. A job whose live
// heap nears the limit (30,000 runs, whose plan holds about 100 MB) pays
// for it in collections instead (docs/BENCHMARKS.md, "Memory (gap 6)").
const softMemoryLimit = 160 << 20

// startProfile writes a CPU profile of the whole process to the file
// RUNFERRY_CPUPROFILE names, for benchmarks (bench/NOTES.md), and with it an
// execution trace if RUNFERRY_TRACE names a file; without it, or if the file
// cannot be created, it does nothing. The returned function
// ends the profile.
func startProfile() func() {
	path := os.Getenv("RUNFERRY_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	stopTrace := startTrace()
	return func() {
		stopTrace()
		pprof.StopCPUProfile()
		f.Close()
	}
}

// startHeapProfiles writes a heap profile to the file RUNFERRY_MEMPROFILE
// names every 5 seconds while the command runs (each after a collection,
// replacing the one before), for benchmarks (bench/NOTES.md): the last
// one's in-use space is what the command held near its end (what grows
// with the number of runs; once the command is done it holds nothing).
// Without the variable it does nothing. The returned function stops it.
func startHeapProfiles() func() {
	path := os.Getenv("RUNFERRY_MEMPROFILE")
	if path == "" {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			runtime.GC()
			f, err := os.Create(path + ".tmp")
			if err != nil {
				continue
			}
			err = pprof.WriteHeapProfile(f)
			if cerr := f.Close(); err == nil && cerr == nil {
				_ = os.Rename(path+".tmp", path)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// startTrace writes an execution trace (go tool trace) to the file
// RUNFERRY_TRACE names, alongside the CPU profile, to see where a copy's
// wall time goes (waiting on the network or disk, idle cores); without it,
// or if the file cannot be created, it does nothing.
func startTrace() func() {
	path := os.Getenv("RUNFERRY_TRACE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		trace.Stop()
		f.Close()
	}
}
