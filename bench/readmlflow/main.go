// Command readmlflow is the Go side of the MLflow store benchmark
// (bench/mlflowfile.sh): it opens a source location (mlflow+file:STORE read directly, or mlflow+http://HOST:PORT, a
// server serving the same store, read with runferry's MLflow source),
// reads every experiment, run and metric point as copy does, and prints
// {"runs", "points", "sum", "seconds"} as one JSON line, so the harness
// checks both sides saw the same.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflow"
	"github.com/runferry/runferry/sources/mlflowfile"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: readmlflow LOCATION")
		os.Exit(2)
	}
	start := time.Now()
	runs, points, sum, err := read(context.Background(), os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "readmlflow:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(map[string]any{"runs": runs, "points": points, "sum": sum,
		"seconds": time.Since(start).Seconds()})
}

func read(ctx context.Context, loc string) (runs int, points int64, sum float64, err error) {
	r := &sources.Registry{} // the two sources compared, as sources/all registers them
	r.Add(sources.Factory{Description: mlflow.Description(), Open: mlflow.Open})
	r.Add(sources.Factory{Description: mlflowfile.Description(), Open: mlflowfile.Open})
	src, _, err := r.Open(ctx, loc)
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
	return runs, points, sum, nil
}
