package wandbdir

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// Benchmarks of the `.wandb` path of the source: Open, Runs (the metadata
// pass) and Metrics over one large log shaped like wandb-core's (20
// nested_key metrics per row plus _step, _timestamp and _runtime, a stats
// record every 100 rows, a console line every 1000 rows).
//
// The log is generated once per benchmark function (b.Loop runs the
// function once) into a temp dir. RUNFERRY_BENCH_ROWS sets the row count
// (default 100000, about 87 MB); RUNFERRY_BENCH_DIR reads an existing
// folder instead (e.g. the output of bench/genwandb).
//
//	go test -run='^$' -bench=BenchmarkMetrics -cpuprofile cpu.out ./sources/wandbdir

// benchLog returns the folder to read and the (first) run in it.
func benchLog(b *testing.B) (string, schema.Ref) {
	b.Helper()
	if dir := os.Getenv("RUNFERRY_BENCH_DIR"); dir != "" {
		return dir, firstRun(b, dir)
	}
	rows := 100_000
	if s := os.Getenv("RUNFERRY_BENCH_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	root := b.TempDir()
	dir := filepath.Join(root, "bench", "wandb", "run-20240601_120000-bench1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-bench1.wandb"), rows); err != nil {
		b.Fatal(err)
	}
	return root, firstRun(b, root)
}

// firstRun returns the origin of the first run under root. (Origins of
// runs without an entity name their folder, so they are looked up rather
// than spelled out.)
func firstRun(b *testing.B, root string) schema.Ref {
	b.Helper()
	src, err := New(Config{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	runs, err := src.index(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	if len(runs) == 0 {
		b.Fatalf("no run under %s", root)
	}
	return runs[0].ref
}

// writeBenchLog writes a wandb-core-shaped log of rows history rows.
func writeBenchLog(path string, rows int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := wandbfile.NewWriter(bw)
	start := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	var buf []byte
	num := int64(0)
	write := func(rec *wandbfile.Record) error {
		num++
		rec.Num = num
		buf, err = wandbfile.AppendRecord(buf[:0], rec)
		if err == nil {
			_, err = w.WriteRecord(buf)
		}
		return err
	}
	err = write(&wandbfile.Record{Kind: wandbfile.KindRun, Run: &wandbfile.Run{RunID: "bench1", Project: "bench", StartTime: start,
		Config: &wandbfile.Config{Update: []wandbfile.Item{{Key: "lr", ValueJSON: `{"value":0.0003}`}}}}})
	if err != nil {
		return err
	}
	keys := make([][]string, 20)
	for i := range keys {
		keys[i] = []string{fmt.Sprintf("train/metric_%02d", (i*7)%20)}
	}
	items := make([]wandbfile.Item, 0, len(keys)+3)
	for row := range rows {
		step := int64(row)
		items = items[:0]
		for i, k := range keys {
			v := math.Sin(float64(row)*0.001+float64(i)) * 100
			items = append(items, wandbfile.Item{NestedKey: k, ValueJSON: strconv.FormatFloat(v, 'g', -1, 64)})
		}
		ts := float64(start.Unix()) + float64(row)*0.05 + 0.0123
		items = append(items,
			wandbfile.HistoryItem(strconv.FormatFloat(ts, 'g', -1, 64), "_timestamp"),
			wandbfile.HistoryItem(strconv.FormatFloat(float64(row)*0.05+1.5, 'f', 9, 64), "_runtime"),
			wandbfile.HistoryItem(strconv.FormatInt(step, 10), "_step"))
		if err := write(&wandbfile.Record{Kind: wandbfile.KindHistory, History: &wandbfile.History{Items: items, Step: &step}}); err != nil {
			return err
		}
		t := start.Add(time.Duration(row) * 50 * time.Millisecond)
		if (row+1)%100 == 0 {
			var stats []wandbfile.Item
			for _, k := range []string{"cpu", "memory_percent", "gpu.0.temp", "proc.memory.rssMB"} {
				stats = append(stats, wandbfile.Item{Key: k, ValueJSON: strconv.Itoa(row % 97)})
			}
			if err := write(&wandbfile.Record{Kind: wandbfile.KindStats, Stats: &wandbfile.Stats{Timestamp: t, Items: stats}}); err != nil {
				return err
			}
		}
		if (row+1)%1000 == 0 {
			out := &wandbfile.Output{Timestamp: t, Line: fmt.Sprintf("step %d\n", step)}
			if err := write(&wandbfile.Record{Kind: wandbfile.KindOutputRaw, Output: out}); err != nil {
				return err
			}
		}
	}
	if err := write(&wandbfile.Record{Kind: wandbfile.KindExit, Exit: &wandbfile.Exit{Runtime: int32(rows / 20)}}); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return bw.Flush()
}

// BenchmarkMetrics reads the log as a migration does: Runs (one metadata
// pass), then Metrics. It reports points/s, the log's MB/s and the peak
// heap seen between pages.
func BenchmarkMetrics(b *testing.B) {
	root, ref := benchLog(b)
	ctx := context.Background()
	var size int64
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && filepath.Ext(p) == ".wandb" {
			size += fi.Size()
		}
		return nil
	})
	b.Run("framing", func(b *testing.B) {
		for b.Loop() {
			filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
				if err == nil && filepath.Ext(p) == ".wandb" {
					readFraming(b, p)
				}
				return nil
			})
		}
		b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e6, "MB/s")
	})
	for _, mode := range []string{"runs", "metrics", "both"} {
		b.Run(mode, func(b *testing.B) {
			var points, pages int64
			var peak uint64
			var ms runtime.MemStats
			runtime.GC()
			cpu0 := cpuTime()
			for b.Loop() {
				src, err := New(Config{Root: root})
				if err != nil {
					b.Fatal(err)
				}
				if mode != "metrics" {
					for exp, err := range src.Experiments(ctx) {
						if err != nil {
							b.Fatal(err)
						}
						for _, err := range src.Runs(ctx, exp.Origin) {
							if err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				if mode != "runs" {
					for page, err := range src.Metrics(ctx, ref) {
						if err != nil {
							b.Fatal(err)
						}
						points += int64(len(page))
						if pages++; pages%64 == 0 {
							runtime.ReadMemStats(&ms)
							peak = max(peak, ms.HeapInuse)
						}
					}
				}
				src.Close()
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			sec := b.Elapsed().Seconds()
			cpu := (cpuTime() - cpu0).Seconds()
			if points > 0 {
				b.ReportMetric(float64(points)/sec/1e6, "Mpoints/s")
				b.ReportMetric(float64(points)/cpu/1e6, "Mpoints/cpu-s")
			}
			b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(size)*float64(b.N)/sec/1e6, "MB/s")
			b.ReportMetric(float64(peak)/(1<<20), "peakheapMB")
		})
	}
}

// readFraming reads every record payload of a log with wandbfile.Reader
// and decodes nothing: the floor under any source pass.
func readFraming(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rd, err := wandbfile.NewReader(f, path)
	if err != nil {
		b.Fatal(err)
	}
	for {
		if _, _, err := rd.Next(); err != nil {
			return
		}
	}
}

// cpuTime returns the user and system CPU time of the process so far: on a
// shared machine, a steadier measure than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
