package mlflow

import (
	"math"
	"testing"

	"github.com/runferry/runferry/schema"
)

// TestCPUFoldIsOrderFree: the folded mean is the same, to the bit, in
// whatever order the per-core points arrive (a copy straight from W&B and
// one through an archive write the same series), and non-finite values
// are kept as MLflow stores them.
func TestCPUFoldIsOrderFree(t *testing.T) {
	vals := []float64{0.1, 0.2, 0.3, 1e16, -1e16, 7.7, 33.3, 99.9}
	fold := func(order []int) []float64 {
		f := &cpuFold{steps: map[int64]*foldSum{}, mean: true}
		for _, i := range order {
			f.add(schema.Metric{Key: "system/cpu.N.cpu_percent", Value: vals[i], Step: 3, Time: int64(100 + i)})
		}
		f.add(schema.Metric{Value: math.NaN(), Step: 4, Time: 5})
		f.add(schema.Metric{Value: 1, Step: 4, Time: 5})
		f.add(schema.Metric{Value: math.Inf(1), Step: 5, Time: 6})
		f.add(schema.Metric{Value: 1, Step: 5, Time: 6})
		var out []float64
		for i, p := range f.points() {
			if want := []int64{3, 4, 5}[i]; p.Step != want {
				t.Fatalf("step %d, want %d", p.Step, want)
			}
			if i == 0 && p.Timestamp != 100 {
				t.Errorf("time %d, want the earliest, 100", p.Timestamp)
			}
			out = append(out, float64(p.Value))
		}
		return out
	}
	a := fold([]int{0, 1, 2, 3, 4, 5, 6, 7})
	b := fold([]int{7, 3, 5, 0, 4, 2, 6, 1})
	if math.Float64bits(a[0]) != math.Float64bits(b[0]) {
		t.Errorf("mean depends on order: %v vs %v", a[0], b[0])
	}
	if want := (0.1 + 0.2 + 0.3 + 7.7 + 33.3 + 99.9) / 8; math.Abs(a[0]-want) > 1e-12 {
		t.Errorf("mean %v, want about %v", a[0], want)
	}
	if !math.IsNaN(a[1]) || a[2] != math.MaxFloat64 {
		t.Errorf("non-finite samples: %v", a[1:])
	}
}
