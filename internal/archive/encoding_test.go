package archive_test

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// extremeMetrics returns points whose steps and times stress the delta
// encoding of the metrics table: int64 extremes next to each other (deltas
// that overflow), runs of equal steps, unknown times between known ones,
// and random jumps over several pages.
func extremeMetrics() []schema.Metric {
	r := rand.New(rand.NewPCG(1, 2))
	var out []schema.Metric
	add := func(key string, step, time int64) {
		out = append(out, schema.Metric{Key: key, Step: step, Time: time, Value: float64(len(out))})
	}
	for _, s := range []int64{math.MinInt64, math.MinInt64, -1, 0, 0, 1, math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64} {
		add("extremes", s, []int64{math.MinInt64, 0, math.MaxInt64, -1, 1}[len(out)%5])
	}
	step := int64(-1 << 40)
	for range 20_000 {
		switch r.IntN(4) {
		case 0:
			step += r.Int64N(1 << 62) // may wrap: the points are sorted below
		case 1:
			// equal step
		default:
			step += r.Int64N(100)
		}
		add("random", step, int64(r.Uint64()))
	}
	slices.SortStableFunc(out, func(a, b schema.Metric) int { return cmp.Compare(a.Step, b.Step) })
	return out
}

// TestMetricsEncodingRoundTrip writes extreme steps and times and reads
// them back with the archive's reader, with pyarrow, and (steps) with
// DuckDB.
func TestMetricsEncodingRoundTrip(t *testing.T) {
	run, dir := oneRunArchive(t, "extreme", extremeMetrics())
	out := runPython(t, dir, `
import glob, json, sys
import duckdb, pyarrow as pa, pyarrow.parquet as pq
f = glob.glob(sys.argv[1] + "/metrics/*/*.parquet")[0]
t = pq.read_table(f)
steps = t.column("step").to_pylist()
# DuckDB decodes the steps too (its timestamps cannot hold the extreme times)
assert [r[0] for r in duckdb.execute("select step from read_parquet(?)", [f]).fetchall()] == steps, "duckdb steps differ"
print(json.dumps([t.column("key").to_pylist(), steps,
                  t.column("time").cast(pa.int64()).to_pylist(), t.column("value").to_pylist()]))
`)
	var cols struct {
		keys   []string
		steps  []int64
		times  []*int64
		values []float64
	}
	if err := json.Unmarshal(out, &[]any{&cols.keys, &cols.steps, &cols.times, &cols.values}); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(run.Metrics)
	slices.SortStableFunc(want, func(a, b schema.Metric) int { return cmp.Compare(a.Key, b.Key) })
	if len(cols.steps) != len(want) || len(cols.times) != len(want) || len(cols.values) != len(want) || len(cols.keys) != len(want) {
		t.Fatalf("pyarrow read %d/%d/%d rows, want %d", len(cols.steps), len(cols.times), len(cols.values), len(want))
	}
	for i, m := range want {
		tm := int64(0)
		if cols.times[i] != nil {
			tm = *cols.times[i]
		}
		if cols.keys[i] != m.Key || cols.steps[i] != m.Step || tm != m.Time || cols.values[i] != m.Value {
			t.Fatalf("row %d: pyarrow read %s %d %d %v, want %+v", i, cols.keys[i], cols.steps[i], tm, cols.values[i], m)
		}
	}
}

// TestMetricValuesByteStreamSplit writes values of every kind (NaN,
// infinities, signed zeros, subnormals, extremes, random bit patterns and a
// noisy training curve, over several pages) and checks that the metrics
// file stores them BYTE_STREAM_SPLIT and that the archive's reader, pyarrow
// and DuckDB all read back the same bits.
func TestMetricValuesByteStreamSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var values []float64
	values = append(values, math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1),
		math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64, math.MaxFloat64, -math.MaxFloat64, 1, -1)
	for range 30_000 {
		v := math.Float64frombits(r.Uint64())
		if math.IsNaN(v) {
			v = 0.5
		}
		values = append(values, v)
	}
	loss := 2.5
	for range 70_000 {
		loss = loss*0.9999 + r.NormFloat64()*1e-3
		values = append(values, loss)
	}
	var metrics []schema.Metric
	for i, v := range values {
		metrics = append(metrics, schema.Metric{Key: "v", Step: int64(i), Time: int64(1_700_000_000_000 + i), Value: v})
	}
	_, dir := oneRunArchive(t, "values", metrics)
	out := runPython(t, dir, `
import glob, json, math, struct, sys
import duckdb, pyarrow.parquet as pq
f = glob.glob(sys.argv[1] + "/metrics/*/*.parquet")[0]
md = pq.ParquetFile(f).metadata
encodings = sorted({e for g in range(md.num_row_groups) for e in md.row_group(g).column(4).encodings})
bits = lambda v: "nan" if math.isnan(v) else struct.pack("<d", v).hex()
t = pq.read_table(f)
con = duckdb.connect()
con.execute("set enable_progress_bar = false")
print(json.dumps([encodings, [bits(v) for v in t.column("value").to_pylist()],
                  [bits(r[0]) for r in con.execute("select value from read_parquet(?) order by step", [f]).fetchall()]]))
`)
	var encodings, fromArrow, fromDuckDB []string
	if err := json.Unmarshal(out, &[]any{&encodings, &fromArrow, &fromDuckDB}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(encodings, []string{"BYTE_STREAM_SPLIT"}) {
		t.Errorf("value column encodings %v, want [BYTE_STREAM_SPLIT]", encodings)
	}
	want := make([]string, len(values))
	for i, v := range values {
		if math.IsNaN(v) {
			want[i] = "nan"
			continue
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		want[i] = hex.EncodeToString(b[:])
	}
	for name, got := range map[string][]string{"pyarrow": fromArrow, "duckdb": fromDuckDB} {
		if !slices.Equal(got, want) {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Errorf("%s read %d values, want %d; first difference at row %d", name, len(got), len(want), i)
		}
	}
}

// oneRunArchive writes, into a new archive, a dataset of one finished run
// (origin memory/id, in the canonical dataset's first experiment) holding
// metrics, checks that the archive's reader gives it back whole, and
// returns the run and the archive's directory.
func oneRunArchive(t *testing.T, id string, metrics []schema.Metric) (*dataset.RunData, string) {
	t.Helper()
	base := dataset.Canonical()
	run := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: id},
		Experiment: base.Experiments[0].Origin, Name: id, Status: schema.StatusFinished,
		Start: base.Runs[0].Run.Start, End: base.Runs[0].Run.End}, Metrics: metrics}
	d := &dataset.Dataset{Experiments: base.Experiments[:1], Runs: []*dataset.RunData{run}}
	dir := filepath.Join(t.TempDir(), "archive")
	write(t, dir, d)
	expectEqual(t, dir, d)
	return run, dir
}

// runPython runs the Python script src (the test venv's Python, with
// pyarrow and DuckDB) with the archive directory dir as its argument and
// returns what it printed; the test fails, with the script's stderr, when
// it fails (and is skipped without the venv).
func runPython(t *testing.T, dir, src string) []byte {
	t.Helper()
	python := testenv.Python(t)
	script := filepath.Join(t.TempDir(), "read.py")
	if err := os.WriteFile(script, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, script, dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("pyarrow reader: %v\n%s", err, stderr)
	}
	return out
}
