// Command parquetwrite is the Go side of the Parquet metrics-table write
// benchmark (bench/run.sh). It builds N rows of the archive's metrics table
// in memory (one run, 20 keys, N/20 steps each, sorted by key and step, as
// the archive stores them), then writes them with the archive's row type and
// settings (archive.MetricRow, zstd, dictionary-encoded run and key, 1 Mi
// rows per row group) and prints {"rows", "bytes", "sum", "seconds"}, where
// seconds is the write alone. bench/py/parquet_write.py builds the same rows
// (the same arithmetic, so "sum" must be equal) and writes them with pyarrow.
//
// Usage: parquetwrite -rows 50000000 OUT.parquet
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/internal/archive"
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
	flag.Parse()
	if flag.NArg() != 1 || *rows <= 0 || *rows%numKeys != 0 {
		fmt.Fprintln(os.Stderr, "usage: parquetwrite [-rows N] OUT.parquet   (N a multiple of 20)")
		os.Exit(2)
	}
	data, sum := makeRows(*rows)
	start := time.Now()
	size, err := write(flag.Arg(0), data)
	seconds := time.Since(start).Seconds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parquetwrite:", err)
		os.Exit(1)
	}
	out := map[string]any{"rows": len(data), "bytes": size, "sum": sum, "seconds": seconds}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(1)
	}
}

// splitmix64 is the SplitMix64 output function of x (wrapping arithmetic).
func splitmix64(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// makeRows builds the table and the sum of its values. Every operation is
// an IEEE-754 one numpy performs identically (explicit conversions keep the
// compiler from fusing multiply-adds).
func makeRows(n int) ([]archive.MetricRow, float64) {
	steps := n / numKeys
	var keys [numKeys]string
	for k := range keys {
		keys[k] = fmt.Sprintf("metric_%02d", k)
	}
	rows := make([]archive.MetricRow, n)
	var sum float64
	for i := range rows {
		k, step := i/steps, i%steps
		noise := float64(splitmix64(uint64(i))>>11) * 0x1p-53
		base := float64(k) + float64(step)/float64(steps)
		jitter := float64((noise - 0.5) * 0.01)
		v := float64(float32(float64(base + jitter)))
		rows[i] = archive.MetricRow{
			Run:   runOrigin,
			Key:   keys[k],
			Step:  int64(step),
			Time:  startMs + int64(step)*50,
			Value: v,
		}
		sum += v
	}
	return rows, sum
}

// write writes rows to path the way the archive writes a metrics file
// (without the archive's hashing and fsync).
func write(path string, rows []archive.MetricRow) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	pw := parquet.NewGenericWriter[archive.MetricRow](buf, parquet.MaxRowsPerRowGroup(1<<20))
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
