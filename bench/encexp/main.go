// Command encexp times the Parquet encoding of a metrics file alone: it
// reads the rows of a metrics file of an archive into memory, then encodes
// them once with the archive's writer settings (zstd fastest, 1 Mi-row row
// groups, no page bounds statistics for run and key) into a counting
// writer, with the value column PLAIN (the encoding before session 12) or
// BYTE_STREAM_SPLIT (the archive's now), and prints the CPU time of the
// encoding and the bytes written. Meant to run under valgrind's callgrind
// for instruction counts (docs/BENCHMARKS.md, "Parquet archive in S3"):
//
//	GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind encexp FILE plain|split
package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"
	"github.com/runferry/runferry/internal/archive"
)

// plainRow is archive.MetricRow as it was before session 12 (value PLAIN).
type plainRow struct {
	Run   string  `parquet:"run,dict"`
	Key   string  `parquet:"key,dict"`
	Step  int64   `parquet:"step,delta"`
	Time  int64   `parquet:"time,optional,timestamp(millisecond),delta"`
	Value float64 `parquet:"value"`
}

// splitRow is the same with value BYTE_STREAM_SPLIT.
type splitRow struct {
	Run   string  `parquet:"run,dict"`
	Key   string  `parquet:"key,dict"`
	Step  int64   `parquet:"step,delta"`
	Time  int64   `parquet:"time,optional,timestamp(millisecond),delta"`
	Value float64 `parquet:"value,split"`
}

type countW struct{ n int64 }

func (c *countW) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func base(extra ...parquet.WriterOption) []parquet.WriterOption {
	return append([]parquet.WriterOption{
		parquet.MaxRowsPerRowGroup(1 << 20),
		parquet.Compression(&zstd.Codec{Level: zstd.SpeedFastest}),
		parquet.SkipPageStatistics("run"),
		parquet.SkipPageStatistics("key"),
	}, extra...)
}

func run[T any](name string, rows []T, opts []parquet.WriterOption, reps int) {
	best := time.Duration(1 << 62)
	var size int64
	for range reps {
		c0 := cpu()
		cw := &countW{}
		w := parquet.NewGenericWriter[T](cw, opts...)
		for i := 0; i < len(rows); i += 16384 {
			if _, err := w.Write(rows[i:min(i+16384, len(rows))]); err != nil {
				panic(err)
			}
		}
		if err := w.Close(); err != nil {
			panic(err)
		}
		d := cpu() - c0
		best = min(best, d)
		size = cw.n
	}
	fmt.Printf("%-28s cpu(min of %d) %6.3f s  size %d\n", name, reps, best.Seconds(), size)
}

func main() {
	f, _ := os.Open(os.Args[1])
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		panic(err)
	}
	r := parquet.NewGenericReader[archive.MetricRow](pf)
	rows := make([]archive.MetricRow, pf.NumRows())
	n, err := r.Read(rows)
	if err != nil && err != io.EOF {
		panic(err)
	}
	rows = rows[:n]
	prows, srows := make([]plainRow, n), make([]splitRow, n)
	for i, x := range rows {
		prows[i], srows[i] = plainRow(x), splitRow(x)
	}
	reps := 1
	if len(os.Args) > 3 {
		fmt.Sscan(os.Args[3], &reps)
	}
	switch os.Args[2] {
	case "plain":
		run("value plain", prows, base(), reps)
	case "split":
		run("value split", srows, base(), reps)
	}
}
