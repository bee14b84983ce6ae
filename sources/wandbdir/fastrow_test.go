package wandbdir

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// The fast path (peekRecord, rawRow, rowConverter) must give exactly what
// wandbfile.Decode, ParseValueJSON and convertRow give wherever it accepts
// its input. These tests compare the two on the real logs and on fuzzed
// records. (wandbfile's tests check ParseScalar.)

// sameFloat compares floats bit for bit, all NaNs equal.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// checkRecord compares the fast path with Decode and convertRow on one
// record payload. It returns whether the fast path took the record.
func checkRecord(t *testing.T, payload []byte, conv *rowConverter) bool {
	t.Helper()
	kind, body, clean := peekRecord(payload)
	rec, err := wandbfile.Decode(payload)
	if !clean {
		return false
	}
	// Clean records of other kinds may still hold malformed content: walk
	// skips them only when no handler wants them, else decodes them.
	if err == nil && rec.Kind != kind {
		t.Fatalf("peekRecord kind %v, Decode %v", kind, rec.Kind)
	}
	if kind != wandbfile.KindHistory {
		return false
	}
	var raw rawRow
	if !raw.scanHistory(body) {
		return false
	}
	if err != nil {
		t.Fatalf("the fast path accepts a history record Decode rejects: %v", err)
	}
	if got := raw.wandbItems(); !reflect.DeepEqual(normItems(got), normItems(rec.History.Items)) {
		t.Fatalf("scanned items %q, Decode %q", got, rec.History.Items)
	}
	if !reflect.DeepEqual(raw.recStep(), rec.History.Step) {
		t.Fatalf("scanned step %v, Decode %v", raw.recStep(), rec.History.Step)
	}
	want := histRow{items: rec.History.Items, recStep: rec.History.Step}
	if got, w := raw.header(), want.header(); !sameFastRow(got, w) {
		t.Fatalf("header %+v, want %+v", got, w)
	}
	got, ok := conv.convert(&raw, true)
	if !ok {
		return false
	}
	got = withPoints(conv, got)
	w := want.convert()
	if len(w.rich) > 0 || len(w.bad) > 0 {
		t.Fatalf("fast path took a row with rich or bad values: %+v", w)
	}
	if !sameFastRow(got, w) {
		t.Fatalf("convert %+v, want %+v", got, w)
	}
	return true
}

// withPoints returns r with the points conv holds for it.
func withPoints(conv *rowConverter, r row) row {
	var got []schema.Metric
	p := &pager[schema.Metric]{yield: func(page []schema.Metric, _ error) bool {
		got = append(got, page...)
		return true
	}}
	conv.appendPoints(p, 0, 0)
	r.metrics = append(got, p.page...)
	return r
}

// normItems makes Decode's and the scan's items comparable: an empty
// NestedKey either way.
func normItems(items []wandbfile.Item) []wandbfile.Item {
	out := make([]wandbfile.Item, len(items))
	for i, it := range items {
		if len(it.NestedKey) == 0 {
			it.NestedKey = nil
		}
		out[i] = it
	}
	return out
}

// sameFastRow compares the step, time and points of two rows.
func sameFastRow(a, b row) bool {
	if a.step != b.step || a.hasStep != b.hasStep || a.time != b.time || len(a.metrics) != len(b.metrics) {
		return false
	}
	for i := range a.metrics {
		if a.metrics[i].Key != b.metrics[i].Key || !sameFloat(a.metrics[i].Value, b.metrics[i].Value) {
			return false
		}
	}
	return true
}

// TestFastPathOnLogs checks the fast path against Decode on every record
// of the SDK-made fixtures and the real-world samples.
func TestFastPathOnLogs(t *testing.T) {
	var files []string
	for _, root := range []string{"../../testdata/wandb/fixtures", "../../../shared/samples/wandb"} {
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".wandb") {
				files = append(files, p)
			}
			return nil
		})
	}
	if len(files) == 0 {
		t.Skip("no .wandb fixtures or samples")
	}
	testenv.Samples(t, "wandb") // fails under CI when the samples are missing
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := wandbfile.NewReader(f, p)
		if err != nil {
			f.Close()
			continue
		}
		var conv rowConverter
		rows, fast := 0, 0
		for {
			payload, _, err := rd.Next()
			if err != nil {
				break
			}
			if k, _, _ := peekRecord(payload); k == wandbfile.KindHistory {
				rows++
			}
			if checkRecord(t, payload, &conv) {
				fast++
			}
		}
		f.Close()
		t.Logf("%s: %d of %d history rows on the fast path", filepath.Base(p), fast, rows)
	}
}

// FuzzFastPath feeds record payloads to both paths.
func FuzzFastPath(f *testing.F) {
	item := func(value string, path ...string) []byte {
		var b []byte
		for _, p := range path {
			b = protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), p)
		}
		return protowire.AppendString(protowire.AppendTag(b, 16, protowire.BytesType), value)
	}
	history := func(items ...[]byte) []byte {
		var h []byte
		for _, it := range items {
			h = protowire.AppendBytes(protowire.AppendTag(h, 1, protowire.BytesType), it)
		}
		step := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)
		h = protowire.AppendBytes(protowire.AppendTag(h, 2, protowire.BytesType), step)
		rec := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3)
		return protowire.AppendBytes(protowire.AppendTag(rec, 2, protowire.BytesType), h)
	}
	f.Add(history(item("1.5", "loss"), item("2", "_step"), item("1717243200.25", "_timestamp"), item("3", "a", "b")))
	f.Add(history(item("true", "flag"), item("NaN", "x"), item("1", "x"), item("0.5", "_wandb", "r")))
	f.Add(history(item(`"s"`, "img", "_type"), item("4", "img", "width")))
	f.Add(history(item("1e400", "big"), item("99999999999999999999", "_step"), item("x", "_timestamp")))
	f.Fuzz(func(t *testing.T, payload []byte) {
		var conv rowConverter
		checkRecord(t, payload, &conv)
		checkRecord(t, payload, &conv) // again, with the order of the first call cached
	})
}

// TestRowConverterOrder checks the cached key order across rows whose
// keys change, repeat or come in another order.
func TestRowConverterOrder(t *testing.T) {
	var conv rowConverter
	rows := [][][2]string{
		{{"b", "1"}, {"a", "2"}, {"c", "3"}},
		{{"b", "4"}, {"a", "5"}, {"c", "6"}},
		{{"a", "7"}, {"b", "8"}, {"c", "9"}},
		{{"a", "2"}, {"a", "1"}, {"b", "0"}},
		{{"a", "2"}, {"a", "1"}, {"b", "0"}},
		{},
		{{"b", "1"}, {"a", "2"}},
	}
	for i, r := range rows {
		var raw rawRow
		var items []wandbfile.Item
		add := func(s string) span {
			raw.body = append(raw.body, s...)
			return span{int32(len(raw.body) - len(s)), int32(len(s))}
		}
		for _, kv := range r {
			raw.items = append(raw.items, rawItem{key: add(kv[0]), value: add(kv[1])})
			items = append(items, wandbfile.Item{Key: kv[0], ValueJSON: kv[1]})
		}
		got, ok := conv.convert(&raw, true)
		got = withPoints(&conv, got)
		want := convertRow(parseItems(items), nil)
		if !ok || !sameFastRow(got, want) {
			t.Errorf("row %d: %+v, want %+v", i, got.metrics, want.metrics)
		}
	}
}

// TestFastPathEndToEnd reads runs with and without the fast path and
// compares everything the source yields, page by page: a generated log of
// several pages of points, the SDK-made fixtures and the real samples.
func TestFastPathEndToEnd(t *testing.T) {
	gen := t.TempDir()
	dir := filepath.Join(gen, "bench", "wandb", "run-20240601_120000-bench1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-bench1.wandb"), 1500); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{gen, "../../testdata/wandb/fixtures", "../../../shared/samples/wandb"} {
		if _, err := os.Stat(root); err != nil {
			continue
		}
		read := func(fast bool) []any {
			defer func(old bool) { fastPath = old }(fastPath)
			fastPath = fast
			src, err := New(Config{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			ctx := context.Background()
			var out []any
			for exp, err := range src.Experiments(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				for run, err := range src.Runs(ctx, exp.Origin) {
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, run)
					for page, err := range src.Metrics(ctx, run.Origin) {
						out = append(out, page, err)
					}
					for page, err := range src.RichValues(ctx, run.Origin) {
						out = append(out, page, err)
					}
					for page, err := range src.Logs(ctx, run.Origin) {
						out = append(out, page, err)
					}
				}
			}
			return out
		}
		fast, slow := read(true), read(false)
		if len(fast) != len(slow) {
			t.Fatalf("%s: %d runs and pages with the fast path, %d without", root, len(fast), len(slow))
		}
		for i := range fast {
			// Compare as JSON-ish text: NaN values compare unequal otherwise.
			if a, b := fmt.Sprintf("%#v", fast[i]), fmt.Sprintf("%#v", slow[i]); a != b {
				t.Fatalf("%s: item %d differs:\nfast %.500s\nslow %.500s", root, i, a, b)
			}
		}
	}
}
