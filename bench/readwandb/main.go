// Command readwandb is the Go side of the .wandb decoding benchmark
// (bench/run.sh). It turns a W&B run into metric points, counts them and
// sums their values, and prints {"points", "sum", "runs", "seconds"} as one
// JSON line, the same shape as bench/py/wandb_sdk_read.py, so the harness
// can check that both sides saw the same data.
//
// Two paths are measured:
//
//	readwandb -mode file FILE.wandb     internal/wandbfile only: Reader, Decode,
//	                                    ParseValueJSON on history and stats items
//	readwandb -mode source DIR          the real source adapter: wandbdir.New and
//	                                    Experiments, Runs, Metrics (what copy does)
//
// Point semantics are those of sources/wandbdir: a history item is a point
// unless its key is _step, _timestamp, _runtime or under _wandb, a stats
// item is a point, and only numbers and booleans (as 0/1) count.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbdir"
)

// result is what readwandb prints.
type result struct {
	Mode    string  `json:"mode"`
	Points  int64   `json:"points"`
	Sum     float64 `json:"sum"`
	Runs    int     `json:"runs,omitempty"`
	Records int64   `json:"records,omitempty"`
	Seconds float64 `json:"seconds"`
}

func main() {
	mode := flag.String("mode", "source", "file: decode one .wandb file with internal/wandbfile; source: read a folder with the wandb source adapter")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if flag.NArg() != 1 || (*mode != "file" && *mode != "source") {
		fmt.Fprintln(os.Stderr, "usage: readwandb [-mode file|source] PATH")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "readwandb:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	var res result
	var err error
	switch *mode {
	case "file":
		res, err = readFile(flag.Arg(0))
	case "source":
		res, err = readSource(context.Background(), flag.Arg(0))
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "readwandb:", err)
		os.Exit(1)
	}
	res.Mode = *mode
	res.Seconds = time.Since(start).Seconds()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "readwandb:", err)
		os.Exit(1)
	}
}

// readFile decodes every record of one .wandb file and turns the history
// and stats items into points.
func readFile(path string) (result, error) {
	var res result
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	r, err := wandbfile.NewReader(f, path)
	if err != nil {
		return res, err
	}
	for {
		payload, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, err
		}
		res.Records++
		rec, err := wandbfile.Decode(payload)
		if err != nil {
			return res, err
		}
		switch {
		case rec.History != nil:
			for _, it := range rec.History.Items {
				key := joinKey(it.Path())
				if key == "_step" || key == "_timestamp" || key == "_runtime" || key == "_wandb" || strings.HasPrefix(key, "_wandb/") {
					continue
				}
				addPoint(&res, it.ValueJSON)
			}
		case rec.Stats != nil:
			for _, it := range rec.Stats.Items {
				_ = wandbdir.SystemPrefix + joinKey(it.Path()) // the point's key, built as the adapter does
				addPoint(&res, it.ValueJSON)
			}
		}
	}
	if d := r.Damage(); len(d) > 0 {
		return res, fmt.Errorf("%d damaged regions, first: %v", len(d), d[0])
	}
	return res, nil
}

// joinKey joins a key path with "/", without allocating for one segment.
func joinKey(path []string) string {
	if len(path) == 1 {
		return path[0]
	}
	return strings.Join(path, "/")
}

// addPoint parses one value_json and counts it when it is a number or a
// boolean.
func addPoint(res *result, valueJSON string) {
	v, err := wandbfile.ParseValueJSON(valueJSON)
	if err != nil {
		return
	}
	var f float64
	switch v := v.(type) {
	case float64:
		f = v
	case int64:
		f = float64(v)
	case json.Number:
		f, err = v.Float64()
		if err != nil {
			return
		}
	case bool:
		if v {
			f = 1
		}
	default:
		return
	}
	res.Points++
	res.Sum += f
}

// readSource reads every run under dir through the wandb source adapter.
func readSource(ctx context.Context, dir string) (result, error) {
	var res result
	src, err := wandbdir.New(wandbdir.Config{Root: dir})
	if err != nil {
		return res, err
	}
	defer src.Close()
	var runs []schema.Ref
	for exp, err := range src.Experiments(ctx) {
		if err != nil {
			return res, err
		}
		for run, err := range src.Runs(ctx, exp.Origin) {
			if err != nil {
				return res, err
			}
			runs = append(runs, run.Origin)
		}
	}
	for _, run := range runs {
		res.Runs++
		for page, err := range src.Metrics(ctx, run) {
			if err != nil {
				return res, err
			}
			for i := range page {
				res.Points++
				res.Sum += page[i].Value
			}
		}
	}
	return res, nil
}
