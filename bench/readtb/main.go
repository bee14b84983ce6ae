// Command readtb is the Go side of the TensorBoard reading benchmark
// (bench/run.sh): it reads a log folder with the tensorboard source
// adapter (New, Experiments, Runs, Metrics: what copy does), counts the
// metric points and sums their values, and prints {"points", "sum",
// "runs", "seconds"} as one JSON line, the shape of
// bench/py/tensorboard_read.py, so the harness checks both saw the same.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/runferry/runferry/sources/tensorboard"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: readtb LOGDIR")
		os.Exit(2)
	}
	start := time.Now()
	points, sum, runs, err := read(context.Background(), os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "readtb:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"mode": "source", "points": points, "sum": sum, "runs": runs,
		"seconds": time.Since(start).Seconds()})
}

func read(ctx context.Context, root string) (points int64, sum float64, runs int, err error) {
	src, err := tensorboard.New(tensorboard.Config{Root: root})
	if err != nil {
		return 0, 0, 0, err
	}
	defer src.Close()
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			return 0, 0, 0, err
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				return 0, 0, 0, err
			}
			if len(r.Damage) > 0 {
				return 0, 0, 0, fmt.Errorf("run %s: %v", r.Origin, r.Damage)
			}
			runs++
			for page, err := range src.Metrics(ctx, r.Origin) {
				if err != nil {
					return 0, 0, 0, err
				}
				for _, m := range page {
					points++
					sum += m.Value
				}
			}
		}
	}
	return points, sum, runs, nil
}
