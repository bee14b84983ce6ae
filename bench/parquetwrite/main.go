// Command parquetwrite is the Go side of the Parquet metrics-table write
// benchmark (bench/run.sh). It writes N rows of the archive's metrics table
// (one run, 20 keys, N/20 steps each) and prints {"rows", "bytes", "sum",
// "seconds", "cpu_seconds", "peak_rss_mb", "mode"} as one JSON line, where
// seconds and cpu_seconds cover the write alone. bench/py/parquet_write.py
// builds the same rows (the same arithmetic, so "sum" must be equal) and
// writes them with pyarrow.
//
// Two modes:
//
//	-mode table    (default) the rows are built in memory first, sorted by key
//	               and step as the archive stores them, then written through
//	               archive.NewMetricsTableWriter: the archive's metrics-file
//	               writer and settings, without its hashing and fsync. This is
//	               the like-for-like comparison with pyarrow's write_table.
//	-mode archive  the points are generated as a W&B history delivers them
//	               (step by step, the 20 keys interleaved, batches of 10,000)
//	               and written through the path the parquet sink uses:
//	               archive.OpenWriter, RunWriter.WriteMetrics, Commit and
//	               Close, so the external sort, the spill files, hashing and
//	               fsync are included. OUT is then the archive folder (created;
//	               it must not exist) and bytes is the metrics file's size.
//
// Usage: parquetwrite [-rows N] [-mode table|archive] [-cpuprofile F] OUT
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
)

// Shape of the generated table; bench/py/parquet_write.py must match.
const (
	numKeys   = 20
	runOrigin = "wandb:bench0001"
	startMs   = 1717243200000 // 2024-06-01T12:00:00Z
	batchRows = 1 << 16
)

func main() {
	rows := flag.Int("rows", 50_000_000, "rows to write (a multiple of 20)")
	mode := flag.String("mode", "table", "table: write in-memory sorted rows with the archive's metrics writer; archive: the whole RunWriter path")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the write to this file")
	flag.Parse()
	if flag.NArg() != 1 || *rows <= 0 || *rows%numKeys != 0 || (*mode != "table" && *mode != "archive") {
		fmt.Fprintln(os.Stderr, "usage: parquetwrite [-rows N] [-mode table|archive] OUT   (N a multiple of 20)")
		os.Exit(2)
	}
	var (
		size int64
		sum  float64
		err  error
		data []archive.MetricRow
	)
	if *mode == "table" {
		data, sum = makeRows(*rows)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "parquetwrite:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuSeconds()
	start := time.Now()
	if *mode == "table" {
		size, err = write(flag.Arg(0), data)
	} else {
		size, sum, err = writeArchive(flag.Arg(0), *rows)
	}
	seconds := time.Since(start).Seconds()
	cpu := cpuSeconds() - cpu0
	if err != nil {
		fmt.Fprintln(os.Stderr, "parquetwrite:", err)
		os.Exit(1)
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	out := map[string]any{"rows": *rows, "bytes": size, "sum": sum, "seconds": seconds,
		"cpu_seconds": cpu, "peak_rss_mb": ru.Maxrss >> 10, "mode": *mode}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

// cpuSeconds is the process's user+system CPU time so far.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// splitmix64 is the SplitMix64 output function of x (wrapping arithmetic).
func splitmix64(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func keyNames() [numKeys]string {
	var keys [numKeys]string
	for k := range keys {
		keys[k] = fmt.Sprintf("metric_%02d", k)
	}
	return keys
}

// value is the value of row i (key k, step step) of a table of steps steps
// per key. Every operation is an IEEE-754 one numpy performs identically
// (explicit conversions keep the compiler from fusing multiply-adds).
func value(i, k, step, steps int) float64 {
	noise := float64(splitmix64(uint64(i))>>11) * 0x1p-53
	base := float64(k) + float64(step)/float64(steps)
	jitter := float64((noise - 0.5) * 0.01)
	return float64(float32(float64(base + jitter)))
}

// makeRows builds the table, sorted by key and step, and the sum of its
// values.
func makeRows(n int) ([]archive.MetricRow, float64) {
	steps := n / numKeys
	keys := keyNames()
	rows := make([]archive.MetricRow, n)
	var sum float64
	for i := range rows {
		k, step := i/steps, i%steps
		v := value(i, k, step, steps)
		rows[i] = archive.MetricRow{Run: runOrigin, Key: keys[k], Step: int64(step), Time: startMs + int64(step)*50, Value: v}
		sum += v
	}
	return rows, sum
}

// write writes rows to path with the archive's metrics writer (without the
// archive's hashing and fsync).
func write(path string, rows []archive.MetricRow) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	pw := archive.NewMetricsTableWriter(buf)
	for len(rows) > 0 {
		n := min(len(rows), batchRows)
		if _, err := pw.Write(rows[:n]); err != nil {
			f.Close()
			return 0, err
		}
		rows = rows[n:]
	}
	err = pw.Close()
	if err == nil {
		err = buf.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// writeArchive writes the same points, in W&B history order, as one run of
// a new archive at dir, and returns the size of its metrics file and the
// sum of the values.
func writeArchive(dir string, n int) (int64, float64, error) {
	if _, err := os.Stat(dir); err == nil {
		return 0, 0, fmt.Errorf("%s exists", dir)
	}
	w, err := archive.OpenWriter(dir)
	if err != nil {
		return 0, 0, err
	}
	defer w.Close()
	exp := schema.Experiment{Origin: schema.Ref{System: "wandb", ID: "bench"}, Name: "bench"}
	if err := w.PutExperiment(exp); err != nil {
		return 0, 0, err
	}
	origin, _ := schema.ParseRef(runOrigin)
	rw := w.OpenRun(schema.Run{Origin: origin, Experiment: exp.Origin, Status: schema.StatusFinished})
	steps := n / numKeys
	keys := keyNames()
	batch := make([]schema.Metric, 0, 10_000)
	var sum float64
	for step := range steps {
		for k := range numKeys {
			v := value(k*steps+step, k, step, steps)
			sum += v
			batch = append(batch, schema.Metric{Key: keys[k], Step: int64(step), Time: startMs + int64(step)*50, Value: v})
			if len(batch) == cap(batch) {
				if err := rw.WriteMetrics(batch); err != nil {
					return 0, 0, err
				}
				batch = batch[:0]
			}
		}
	}
	if err := rw.WriteMetrics(batch); err != nil {
		return 0, 0, err
	}
	if err := rw.Commit(); err != nil {
		return 0, 0, err
	}
	if err := w.Close(); err != nil {
		return 0, 0, err
	}
	st, err := archive.LoadState(dir)
	if err != nil {
		return 0, 0, err
	}
	e, ok := st.Manifest.Run(runOrigin)
	if !ok {
		return 0, 0, fmt.Errorf("run %s not in the archive", runOrigin)
	}
	for _, f := range e.Files {
		if f.Table == archive.TableMetrics {
			return f.Bytes, sum, nil
		}
	}
	return 0, 0, fmt.Errorf("no metrics file")
}
