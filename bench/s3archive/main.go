// Command s3archive times runferry's archive writer alone, like for like
// with pyarrow writing Parquet files from tables already in memory
// (bench/py/s3_write.py): it reads every run of a source into memory first
// (untimed: the W&B decoding pyarrow's side does not do), then starts the
// clock and copies them from memory (sources/memory) into an archive
// location through the engine and the parquet sink, as `runferry copy`
// does (sorting, encoding, upload, staging moves, manifest commit), and
// prints {"runs", "points", "decode_seconds", "seconds", "cpu_seconds"} as
// one JSON line, seconds being the write alone (the sink's Close included)
// and cpu_seconds the process's CPU time (user + system, all threads,
// garbage collection included) over the same span.
//
//	s3archive -src wandb:DIR -to 'parquet:s3://BUCKET/PREFIX?endpoint=...&path-style=true'
//
// It reads wandb: locations and writes parquet: ones only. With
// -cpuprofile FILE it writes a CPU profile of the timed write alone.
//
// The run must be whole in memory: meant for the benchmark's input (2 M
// points take about 100 MB), not for large runs. What the source holds
// besides experiments, runs, metrics, rich values, console lines and files
// (artifact manifests, traces, the model registry) is not carried.
// bench/s3.sh runs it beside pyarrow on the same server and compares the
// two outputs' points.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/sources/wandbdir"
)

func main() {
	src := flag.String("src", "", "source location read into memory first (untimed)")
	to := flag.String("to", "", "archive location written from memory (timed)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed write alone to this file")
	flag.Parse()
	if err := run(*src, *to, *cpuprofile); err != nil {
		fmt.Fprintln(os.Stderr, "s3archive:", err)
		os.Exit(1)
	}
}

func run(srcLoc, to, cpuprofile string) error {
	ctx := context.Background()
	t0 := time.Now()
	// Only the command knows every adapter: the two this program uses.
	srcs := &sources.Registry{}
	srcs.Add(sources.Factory{Description: wandbdir.Description(), Open: wandbdir.Open})
	dsts := &sinks.Registry{}
	dsts.Add(parquetdir.Factory())
	src, _, err := srcs.Open(ctx, srcLoc)
	if err != nil {
		return err
	}
	d, err := dataset.Read(ctx, src)
	src.Close()
	if err != nil {
		return err
	}
	decode := time.Since(t0)
	var points int64
	for _, r := range d.Runs {
		points += int64(len(r.Metrics))
	}

	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	start, cpu0 := time.Now(), cpuTime()
	dst, _, err := dsts.Open(ctx, to)
	if err != nil {
		return err
	}
	rep, err := transfer.Copy(ctx, memory.New(d), dst, transfer.Options{})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	secs, cpu := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
	if err != nil {
		return err
	}
	if rep.Totals.Committed != len(d.Runs) || rep.Totals.Points != points {
		return fmt.Errorf("wrote %d of %d runs, %d of %d points", rep.Totals.Committed, len(d.Runs), rep.Totals.Points, points)
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"runs": len(d.Runs), "points": points,
		"decode_seconds": round(decode.Seconds()), "seconds": round(secs), "cpu_seconds": round(cpu)})
}

func round(s float64) float64 { return float64(int64(s*1000)) / 1000 }
