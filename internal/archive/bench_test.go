package archive_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// benchPoints is how many points one BenchmarkWriteMetrics operation writes
// (RUNFERRY_BENCH_POINTS, default 4 Mi: four sort buffers, so the spill and
// merge path is measured too).
func benchPoints() int {
	if n, _ := strconv.Atoi(os.Getenv("RUNFERRY_BENCH_POINTS")); n > 0 {
		return n
	}
	return 4 << 20
}

// benchSplitmix is SplitMix64's output function: cheap deterministic noise.
func benchSplitmix(x uint64) uint64 {
	z := x + 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// BenchmarkWriteMetrics writes one run of benchPoints points through the
// path the parquet sink uses (RunWriter.WriteMetrics in batches of 10,000,
// then Commit), in W&B history order: step by step, 20 keys interleaved.
func BenchmarkWriteMetrics(b *testing.B) {
	benchWriteMetrics(b, func() string { return filepath.Join(b.TempDir(), "archive") })
}

// BenchmarkWriteMetricsS3 is BenchmarkWriteMetrics into an archive in a
// bucket of the test S3 server (versitygw on 127.0.0.1, its folder on the
// same disk): what object storage adds (uploads, server-side copies, lock
// objects and journal records) to the same work.
func BenchmarkWriteMetricsS3(b *testing.B) {
	s := testenv.SharedS3(b)
	bucket := s.CreateBucket(b, "bench")
	i := 0
	benchWriteMetrics(b, func() string {
		i++
		return s.Location(bucket, fmt.Sprintf("archive-%d", i))
	})
}

func benchWriteMetrics(b *testing.B, newArchive func() string) {
	n := benchPoints()
	const numKeys = 20
	keys := make([]string, numKeys)
	for k := range keys {
		keys[k] = fmt.Sprintf("train/metric_%02d", (k*7)%numKeys) // arrival order differs from name order
	}
	batch := make([]schema.Metric, 0, 10_000)
	b.SetBytes(32) // one point: report MB/s as 32-byte points
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		dir := newArchive()
		w, err := archive.OpenWriter(dir)
		if err != nil {
			b.Fatal(err)
		}
		exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e"}
		if err := w.PutExperiment(exp); err != nil {
			b.Fatal(err)
		}
		rw := w.OpenRun(schema.Run{Origin: schema.Ref{System: "memory", ID: "bench"}, Experiment: exp.Origin, Status: schema.StatusFinished})
		for j := range n {
			step := int64(j / numKeys)
			noise := float64(benchSplitmix(uint64(j))>>11) * 0x1p-53
			batch = append(batch, schema.Metric{Key: keys[j%numKeys], Step: step,
				Time: 1717243200000 + step*50, Value: float64(float32(1/(1+float64(step)*1e-4) + noise*0.01))})
			if len(batch) == cap(batch) {
				if err := rw.WriteMetrics(batch); err != nil {
					b.Fatal(err)
				}
				batch = batch[:0]
			}
		}
		if err := rw.WriteMetrics(batch); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
		if err := rw.Commit(); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			sum, err := archive.Summary(dir)
			if err != nil || len(sum) != 1 {
				b.Fatal(sum, err)
			}
			b.ReportMetric(float64(sum[0].Bytes), "file-bytes")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpoints/s")
}
