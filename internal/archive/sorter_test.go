package archive

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

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
				collect := func(got *[]schema.Metric) func(key string, p []pt) error {
					return func(key string, p []pt) error {
						for _, q := range p {
							*got = append(*got, schema.Metric{Key: key, Step: q.step, Time: q.time, Value: q.val})
						}
						return nil
					}
				}
				pieces, ok, err := s.layout()
				if err != nil {
					t.Fatal(err)
				}
				if ok { // read back in ranges of random sizes, as parallel row groups do
					var got []schema.Metric
					for lo := int64(0); lo < int64(len(want)); {
						hi := min(lo+1+r.Int64N(300), int64(len(want)))
						if err := s.emitRows(pieces, lo, hi, make([]pt, 1+r.IntN(20)), collect(&got)); err != nil {
							t.Fatal(err)
						}
						lo = hi
					}
					if !slices.Equal(got, want) {
						t.Fatalf("emitRows: got %d points, differing from the %d wanted", len(got), len(want))
					}
				} else if s.spill != nil && strings.HasPrefix(in.name, "history") {
					t.Fatalf("layout refused a history whose keys keep step order")
				}
				var got []schema.Metric
				err = s.finish(func(key string, p []pt) error {
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

// TestParallelMetricsFile checks that a run written with parallel row
// groups (spilled, keys in step order, more than a row group of points)
// gets exactly the file one goroutine writes, and that a run whose keys go
// back in steps (merged, then written by one goroutine) reads back sorted.
func TestParallelMetricsFile(t *testing.T) {
	defer func(n int) { SortBufferPoints = n }(SortBufferPoints)
	SortBufferPoints = 100_000
	n := metricRowGroup + metricRowGroup/3
	gen := func(back bool) []schema.Metric {
		out := make([]schema.Metric, 0, n)
		for i := range n {
			step := int64(i / 7)
			if back && i > n/2 {
				step -= 1000 // a resumed run going back
			}
			out = append(out, schema.Metric{Key: fmt.Sprintf("key%d", i%7), Step: step, Time: 1e12 + step, Value: float64(i)})
		}
		return out
	}
	write := func(procs int, pts []schema.Metric) (FileEntry, []MetricRow) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		root := filepath.Join(t.TempDir(), "archive")
		w, err := OpenWriter(root)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		rw := w.OpenRun(schema.Run{Origin: schema.Ref{System: "memory", ID: "r"}})
		for b := range slices.Chunk(pts, 10_000) {
			if err := rw.WriteMetrics(b); err != nil {
				t.Fatal(err)
			}
		}
		entry, err := rw.finish()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range entry.Files {
			if f.Table == TableMetrics {
				if f.Rows != int64(n) {
					t.Fatalf("%d rows, want %d", f.Rows, n)
				}
				rows, err := parquet.ReadFile[MetricRow](abs(root, stagingDir+"/"+f.Path))
				if err != nil {
					t.Fatal(err)
				}
				return f, rows
			}
		}
		t.Fatal("no metrics file")
		return FileEntry{}, nil
	}
	one, _ := write(1, gen(false))
	four, _ := write(4, gen(false))
	if one.SHA256 != four.SHA256 || one.Bytes != four.Bytes {
		t.Fatalf("parallel file differs: %+v vs %+v", four, one)
	}
	pts := gen(true)
	_, rows := write(4, pts)
	slices.SortStableFunc(pts, func(a, b schema.Metric) int {
		return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Step, b.Step))
	})
	for i, r := range rows {
		if r.Metric() != pts[i] {
			t.Fatalf("row %d: %+v, want %+v", i, r.Metric(), pts[i])
		}
	}
}

// TestMetricSorterReusedBlocks checks that runs sorted one after another,
// whose arenas reuse the blocks the runs before freed (blockPools), each
// emit exactly their own points: a block's former points never show. The
// rounds differ in size, key order and spilling (limit 8192 is two
// pooled blocks of 4096; 20,000 points spill), and one goes back in steps.
func TestMetricSorterReusedBlocks(t *testing.T) {
	for round, n := range []int{20_000, 3_000, 9_000, 500, 20_000, 7_000} {
		r := rand.New(rand.NewPCG(uint64(round), 11))
		keys := 3 + round
		var pts []schema.Metric
		for i := range n {
			step := int64(i / keys)
			if round == 3 && i%97 == 0 {
				step = int64(r.IntN(10)) // back in steps: sorted in tmp
			}
			pts = append(pts, schema.Metric{Key: fmt.Sprintf("r%d/k%02d", round, (i*7)%keys), Step: step,
				Time: int64(round*1_000_000 + i), Value: float64(round) + float64(i)/1e6})
		}
		want := slices.Clone(pts)
		slices.SortStableFunc(want, func(a, b schema.Metric) int {
			return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Step, b.Step))
		})
		s := newMetricSorter(t.TempDir(), 1<<13)
		for len(pts) > 0 {
			k := min(len(pts), 10_000)
			if err := s.add(pts[:k]); err != nil {
				t.Fatal(err)
			}
			pts = pts[k:]
		}
		var got []schema.Metric
		if round%2 == 1 {
			// as writeMetrics: layout first (it may spill the rest), then finish
			if _, _, err := s.layout(); err != nil {
				t.Fatal(err)
			}
		}
		err := s.finish(func(key string, p []pt) error {
			for _, q := range p {
				got = append(got, schema.Metric{Key: key, Step: q.step, Time: q.time, Value: q.val})
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		s.discard()
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: got %d points, want %d, not the same", round, len(got), len(want))
		}
	}
}
