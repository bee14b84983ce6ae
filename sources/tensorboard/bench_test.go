package tensorboard_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/tensorboard"
)

// BenchmarkMetrics reads a run of 200,000 points (bench/gentb: half
// simple_value, half TF2 tensor scalars) through Runs and Metrics, as copy
// does; b.N runs of it.
func BenchmarkMetrics(b *testing.B) {
	dir := b.TempDir()
	root := testenv.RepoRoot(b)
	gen := exec.Command("go", "run", "./bench/gentb", "-out", dir, "-steps", "10000", "-keys", "20")
	gen.Dir, gen.Stderr = root, os.Stderr
	if err := gen.Run(); err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "run", "events.out.tfevents.1750000000.gentb"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		src, err := tensorboard.New(tensorboard.Config{Root: dir})
		if err != nil {
			b.Fatal(err)
		}
		var n int
		for e := range src.Experiments(ctx) {
			for r := range src.Runs(ctx, e.Origin) {
				for page, err := range src.Metrics(ctx, r.Origin) {
					if err != nil {
						b.Fatal(err)
					}
					n += len(page)
				}
			}
		}
		if n != 200000 {
			b.Fatalf("%d points", n)
		}
		src.Close()
	}
}
