package archive

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/runferry/runferry/schema"
)

// TestMetricSorterOrder checks the sorter against a stable sort by (key,
// step) of the arrival order, with buffers small enough to spill many times,
// for sources that keep each key's steps in order and for ones that do not.
func TestMetricSorterOrder(t *testing.T) {
	type input struct {
		name string
		gen  func(r *rand.Rand) []schema.Metric
	}
	history := func(keys, steps int, jump func(r *rand.Rand, step int) int) func(r *rand.Rand) []schema.Metric {
		return func(r *rand.Rand) []schema.Metric {
			var out []schema.Metric
			step := 0
			for range steps {
				for k := range keys {
					if r.IntN(4) > 0 { // not every key at every step
						out = append(out, schema.Metric{Key: fmt.Sprintf("k%03d", (k*37)%keys), Step: int64(step)})
					}
				}
				step = jump(r, step)
			}
			return out
		}
	}
	inputs := []input{
		{"history", history(5, 300, func(_ *rand.Rand, s int) int { return s + 1 })},
		{"repeated steps", history(3, 300, func(r *rand.Rand, s int) int { return s + r.IntN(2) })},
		{"resumed back", history(4, 400, func(r *rand.Rand, s int) int {
			if r.IntN(50) == 0 {
				return max(0, s-r.IntN(40))
			}
			return s + 1
		})},
		{"many keys", history(300, 8, func(_ *rand.Rand, s int) int { return s + 1 })},
		{"random", func(r *rand.Rand) []schema.Metric {
			out := make([]schema.Metric, 2000)
			for i := range out {
				out[i] = schema.Metric{Key: fmt.Sprintf("k%d", r.IntN(7)), Step: int64(r.IntN(50))}
			}
			return out
		}},
	}
	for _, in := range inputs {
		for _, limit := range []int{1, 3, 17, 100, 1000, 1 << 20} {
			t.Run(fmt.Sprintf("%s/limit=%d", in.name, limit), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(limit), 7))
				pts := in.gen(r)
				for i := range pts {
					pts[i].Value = float64(i) // arrival number
					pts[i].Time = int64(i) * 3
				}
				want := slices.Clone(pts)
				slices.SortStableFunc(want, func(a, b schema.Metric) int {
					return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Step, b.Step))
				})
				dir := t.TempDir()
				s := newMetricSorter(dir, limit)
				for len(pts) > 0 { // uneven batches
					n := min(len(pts), 1+r.IntN(50))
					if err := s.add(pts[:n]); err != nil {
						t.Fatal(err)
					}
					pts = pts[n:]
				}
				if s.count != int64(len(want)) {
					t.Fatalf("count %d, want %d", s.count, len(want))
				}
				var got []schema.Metric
				err := s.finish(func(key string, p []pt) error {
					if len(p) == 0 || len(p) > emitBatch {
						t.Fatalf("emitted %d points", len(p))
					}
					for _, q := range p {
						got = append(got, schema.Metric{Key: key, Step: q.step, Time: q.time, Value: q.val})
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, want) {
					for i := range min(len(got), len(want)) {
						if got[i] != want[i] {
							t.Fatalf("point %d: got %+v, want %+v (of %d, got %d)", i, got[i], want[i], len(want), len(got))
						}
					}
					t.Fatalf("got %d points, want %d", len(got), len(want))
				}
				if ents, _ := os.ReadDir(dir); len(ents) != 0 {
					t.Fatalf("spill files left: %v", ents)
				}
			})
		}
	}
}
