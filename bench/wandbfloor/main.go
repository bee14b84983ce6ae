// Command wandbfloor measures the machine's floor of a W&B cloud export
// for bench/wandbcloud.sh: the work of `runferry copy wandb+https://…
// parquet:ARCHIVE --state NEW` that no server, listing or download can
// take away, on the same runs as bench/wandbserve serves.
//
// wandbfloor -prepare DIR -runs N -steps S -keys K writes run i's parquet
// history export, the bytes bench/wandbserve sends for it
// (wandbtest.BenchRun, Generated.WriteExport), to DIR/runNNNNN.parquet, and
// prints {"runs": N, "points": P, "bytes": B}. It runs before the clock.
//
// wandbfloor -copy DIR -archive ARCHIVE -state LEDGER copies those runs
// into the Parquet archive ARCHIVE through runferry's engine
// (engine/transfer, a fresh ledger, 4 runs at once, runferry's GC
// settings) and Parquet sink, each run's points read from its file with
// the W&B cloud source's decoding (wandbcloud.ExportFileMetrics): what a
// first copy of the same runs does with their exports once downloaded.
// Runs carry the cloud source's origins, names, times and config; not
// its listing, files or artifacts (the benchmark's runs have none).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"iter"
	"log"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// created is bench/wandbserve's project creation time.
var created = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	prepare := flag.String("prepare", "", "write the runs' export files into this folder")
	runs := flag.Int("runs", 100, "runs (-prepare)")
	steps := flag.Int("steps", 2000, "history rows per run (-prepare)")
	keys := flag.Int("keys", 10, "metrics per row (-prepare)")
	from := flag.String("copy", "", "copy the runs of this folder")
	archive := flag.String("archive", "", "the Parquet archive to copy into (-copy)")
	ledger := flag.String("state", "", "a new ledger (-copy)")
	flag.Parse()
	var err error
	switch {
	case *prepare != "":
		err = prepareRuns(*prepare, *runs, *steps, *keys)
	case *from != "" && *archive != "" && *ledger != "":
		stop := startProfile()
		err = copyRuns(*from, *archive, *ledger)
		stop()
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// startProfile writes a CPU profile of -copy to the file RUNFERRY_CPUPROFILE
// names, as runferry does (bench/NOTES.md); without it, it does nothing.
func startProfile() func() {
	path := os.Getenv("RUNFERRY_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

func prepareRuns(dir string, runs, steps, keys int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var names []string
	for k := range keys {
		names = append(names, fmt.Sprintf("m%02d", k))
	}
	var size int64
	for i := range runs {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("run%05d.parquet", i)))
		if err != nil {
			return err
		}
		err = wandbtest.BenchRun(i, steps, names, created).WriteExport(f)
		if st, serr := f.Stat(); err == nil && serr == nil {
			size += st.Size()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]int64{"runs": int64(runs), "points": int64(runs * steps * keys), "bytes": size})
}

func copyRuns(dir, archive, ledgerPath string) error {
	// As cmd/runferry's tuneGC.
	debug.SetGCPercent(400)
	debug.SetMemoryLimit(200 << 20)
	files, err := filepath.Glob(filepath.Join(dir, "run*.parquet"))
	if err != nil {
		return err
	}
	slices.Sort(files)
	dst, err := parquetdir.New(archive)
	if err != nil {
		return err
	}
	l, err := state.Open(ledgerPath, state.Job{Source: "wandbfloor:" + dir, Sink: "parquet:" + archive}, false)
	if err != nil {
		return err
	}
	defer l.Close()
	src := &exports{files: files, exp: schema.Ref{System: wandbcloud.System, ID: "bench/bench"}}
	rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{Concurrency: 4, Ledger: l,
		Source: "wandbfloor:" + dir, Sink: "parquet:" + archive})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if rep.Totals.Committed != len(files) {
		return fmt.Errorf("%d of %d runs committed: %+v", rep.Totals.Committed, len(files), rep.Totals)
	}
	fmt.Fprintf(os.Stderr, "copied %d runs (%d points)\n", rep.Totals.Committed, rep.Totals.Points)
	return nil
}

// exports is a source of the runs whose export files are files.
type exports struct {
	files []string
	exp   schema.Ref
}

func (s *exports) Experiments(context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		yield(schema.Experiment{Origin: s.exp, Name: "bench/bench", CreatedAt: created}, nil)
	}
}

func (s *exports) Runs(_ context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for i, f := range s.files {
			id := strings.TrimSuffix(filepath.Base(f), ".parquet")
			start := created.Add(time.Duration(i) * time.Minute)
			r := schema.Run{Origin: schema.Ref{System: wandbcloud.System, ID: exp.ID + "/" + id}, Experiment: exp,
				Name: fmt.Sprintf("bench-%d", i), User: "bench", Status: schema.StatusFinished, Start: start, End: start.Add(30 * time.Second),
				Config: json.RawMessage(fmt.Sprintf(`{"lr":%v,"seed":%d}`, 0.001*float64(i+1), i))}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func (s *exports) Metrics(_ context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		id := run.ID[strings.LastIndex(run.ID, "/")+1:]
		stop := fmt.Errorf("stopped")
		err := wandbcloud.ExportFileMetrics(filepath.Join(filepath.Dir(s.files[0]), id+".parquet"), func(page []schema.Metric) error {
			if !yield(page, nil) {
				return stop
			}
			return nil
		})
		if err != nil && err != stop {
			yield(nil, err)
		}
	}
}

func (s *exports) Close() error { return nil }
