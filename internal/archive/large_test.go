package archive_test

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
)

// TestLargeRunBoundedMemory writes one run of RUNFERRY_LARGE_POINTS points
// (10 keys interleaved, as a W&B history is) straight through a RunWriter
// and reports time, file size and peak RSS; it fails if the peak RSS
// passes 256 MB. Opt-in: it takes minutes at 100 million points.
func TestLargeRunBoundedMemory(t *testing.T) {
	n, _ := strconv.ParseInt(os.Getenv("RUNFERRY_LARGE_POINTS"), 10, 64)
	if n == 0 {
		t.Skip("set RUNFERRY_LARGE_POINTS (e.g. 100000000) to run")
	}
	dir := filepath.Join(t.TempDir(), "archive")
	w, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e"}
	if err := w.PutExperiment(exp); err != nil {
		t.Fatal(err)
	}
	rw := w.OpenRun(schema.Run{Origin: schema.Ref{System: "memory", ID: "big"}, Experiment: exp.Origin, Status: schema.StatusFinished})
	start := time.Now()
	keys := []string{"loss", "acc", "lr", "grad_norm", "val/loss", "val/acc", "system/gpu", "system/cpu", "tokens", "epoch"}
	batch := make([]schema.Metric, 0, 10_000)
	for i := int64(0); i < n; i++ {
		batch = append(batch, schema.Metric{Key: keys[i%10], Step: i / 10, Time: 1.7e12 + i/10, Value: float64(i%1000) / 7})
		if len(batch) == cap(batch) {
			if err := rw.WriteMetrics(batch); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := rw.WriteMetrics(batch); err != nil {
		t.Fatal(err)
	}
	if err := rw.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	peak := ru.Maxrss * 1024
	sum, err := archive.Summary(dir)
	if err != nil || len(sum) != 1 || sum[0].Points != n {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	t.Logf("%d points in %v (%.1f M points/s), metrics+runs files %d bytes, peak RSS %d MB",
		n, elapsed, float64(n)/elapsed.Seconds()/1e6, sum[0].Bytes, peak>>20)
	if peak > 256<<20 {
		t.Errorf("peak RSS %d MB exceeds 256 MB", peak>>20)
	}
}
