package mlflowfile_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/sources/mlflowfile"
)

// BenchmarkReadStore reads a file store of 10 runs x 20 keys x 1000 steps
// (200,000 points, in MLflow's layout) through Experiments, Runs and
// Metrics, as copy does; b.N stores of it.
func BenchmarkReadStore(b *testing.B) {
	root := filepath.Join(b.TempDir(), "mlruns")
	files := map[string]string{"1/meta.yaml": "artifact_location: file:///x\nexperiment_id: '1'\nlifecycle_stage: active\nname: bench\n"}
	var size int64
	for r := range 10 {
		id := fmt.Sprintf("%032x", r)
		files["1/"+id+"/meta.yaml"] = runMeta(id, "1", "file:///x/1/"+id+"/artifacts", 1)
		files["1/"+id+"/params/lr"] = "0.1"
		for k := range 20 {
			var sb strings.Builder
			for st := range 1000 {
				fmt.Fprintf(&sb, "%d %g %d\n", 1_700_000_000_000+st, float64(st*k)/7, st)
			}
			files[fmt.Sprintf("1/%s/metrics/key_%02d", id, k)] = sb.String()
			size += int64(sb.Len())
		}
	}
	for p, body := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		src := mlflowfile.New(mlflowfile.Config{Root: root, Instance: "bench"})
		n := 0
		for e, err := range src.Experiments(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			for r, err := range src.Runs(ctx, e.Origin) {
				if err != nil {
					b.Fatal(err)
				}
				for page, err := range src.Metrics(ctx, r.Origin) {
					if err != nil {
						b.Fatal(err)
					}
					n += len(page)
				}
			}
		}
		if n != 200_000 {
			b.Fatalf("%d points", n)
		}
		src.Close()
	}
}
