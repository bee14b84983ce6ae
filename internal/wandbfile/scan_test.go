package wandbfile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// The zero-copy scanner (PeekRecord, Row.Scan, RowConverter's fast path)
// must give exactly what Decode, ParseItems and ConvertValues give
// wherever it accepts its input. These tests compare the two on the real
// logs and on fuzzed records.

// checkRecord compares the scanner with Decode and ConvertValues on one
// record payload. It returns whether the record took the whole fast path
// (scanned, and converted without ConvertValues).
func checkRecord(t *testing.T, payload []byte, conv *RowConverter) bool {
	t.Helper()
	kind, body, clean := PeekRecord(payload)
	rec, err := Decode(payload)
	if err == nil && rec.History != nil {
		// A decoded row, the way rows the scan declines reach the converter.
		var dec Row
		dec.SetHistory(rec.History)
		checkRow(t, &dec, rec.History, conv)
	}
	if !clean {
		return false
	}
	// Clean records of other kinds may still hold malformed content: a
	// reader skips them only when it does not want them, else decodes them.
	if err == nil && rec.Kind != kind {
		t.Fatalf("PeekRecord kind %v, Decode %v", kind, rec.Kind)
	}
	if kind != KindHistory {
		return false
	}
	var row Row
	if !row.Scan(body) {
		return false
	}
	if err != nil {
		t.Fatalf("the scanner accepts a history record Decode rejects: %v", err)
	}
	checkRow(t, &row, rec.History, conv)
	_, fast := (&RowConverter{}).convert(&row, false)
	return fast
}

// checkRow compares a Row with the History it stands for, and its
// conversion by conv (fast path, then cached orders) with ConvertValues'.
func checkRow(t *testing.T, row *Row, h *History, conv *RowConverter) {
	t.Helper()
	if got := row.Items(); !reflect.DeepEqual(normItems(got), normItems(h.Items)) || row.Len() != len(h.Items) {
		t.Fatalf("row items %q, Decode %q", got, h.Items)
	}
	if !reflect.DeepEqual(row.Step(), h.Step) {
		t.Fatalf("row step %v, Decode %v", row.Step(), h.Step)
	}
	want, wantPoints := ConvertValues(ParseItems(h.Items), h.Step)
	if got := conv.Header(row); got.Step != want.Step || got.HasStep != want.HasStep || got.Time != want.Time {
		t.Fatalf("header %+v, want %+v", got, want)
	}
	got := conv.Convert(row, true)
	if points := conv.AppendPoints(nil, 0, 0); !sameValues(got, want) || !samePoints(points, wantPoints) {
		t.Fatalf("convert %+v %v, want %+v %v", got, points, want, wantPoints)
	}
	if got := conv.Convert(row, false); !sameValues(got, want) || conv.NumPoints() != 0 {
		t.Fatalf("convert without points %+v (%d points), want %+v", got, conv.NumPoints(), want)
	}
}

// normItems makes Decode's and the scan's items comparable: an empty
// NestedKey either way.
func normItems(items []Item) []Item {
	out := make([]Item, len(items))
	for i, it := range items {
		if len(it.NestedKey) == 0 {
			it.NestedKey = nil
		}
		out[i] = it
	}
	return out
}

// sameValues compares two converted rows but for their points.
func sameValues(a, b RowValues) bool {
	return a.Step == b.Step && a.HasStep == b.HasStep && a.Time == b.Time &&
		reflect.DeepEqual(a.Rich, b.Rich) && reflect.DeepEqual(a.Bad, b.Bad)
}

// samePoints compares points, values bit for bit (all NaNs equal).
func samePoints(a, b []schema.Metric) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || a[i].Step != b[i].Step || a[i].Time != b[i].Time || !sameFloat(a[i].Value, b[i].Value) {
			return false
		}
	}
	return true
}

// TestScanOnLogs checks the scanner against Decode and ConvertValues on
// every record of the SDK-made fixtures and the real-world samples.
func TestScanOnLogs(t *testing.T) {
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
	total := 0
	for _, p := range files {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := NewReader(f, p)
		if err != nil {
			f.Close()
			continue
		}
		var conv RowConverter
		rows, fast := 0, 0
		for {
			payload, _, err := rd.Next()
			if err != nil {
				break
			}
			if k, _, _ := PeekRecord(payload); k == KindHistory {
				rows++
			}
			if checkRecord(t, payload, &conv) {
				fast++
			}
		}
		f.Close()
		total += fast
		t.Logf("%s: %d of %d history rows on the fast path", filepath.Base(p), fast, rows)
	}
	if total == 0 {
		t.Error("no history row of the logs took the fast path")
	}
}

// FuzzScan feeds record payloads to the scanner and to Decode.
func FuzzScan(f *testing.F) {
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
		var conv RowConverter
		checkRecord(t, payload, &conv)
		checkRecord(t, payload, &conv) // again, with the order of the first call cached
	})
}

// TestRowConverterOrder checks the cached key order across rows whose
// keys change, repeat or come in another order, and rows that leave the
// fast path between them.
func TestRowConverterOrder(t *testing.T) {
	var conv RowConverter
	rows := [][][2]string{
		{{"b", "1"}, {"a", "2"}, {"c", "3"}},
		{{"b", "4"}, {"a", "5"}, {"c", "6"}},
		{{"a", "7"}, {"b", "8"}, {"c", "9"}},
		{{"a", "2"}, {"a", "1"}, {"b", "0"}},
		{{"a", "2"}, {"a", "1"}, {"b", "0"}},
		{},
		{{"b", "1"}, {"a", "2"}},
		{{"b", "1"}, {"a", `"text"`}},
		{{"b", "1"}, {"a", "2"}},
	}
	for i, r := range rows {
		var items []Item
		for _, kv := range r {
			items = append(items, Item{Key: kv[0], ValueJSON: kv[1]})
		}
		var row Row
		row.SetHistory(&History{Items: items})
		got := conv.Convert(&row, true)
		points := conv.AppendPoints(nil, 4, 5)
		want, wantPoints := ConvertValues(ParseItems(items), nil)
		for j := range wantPoints {
			wantPoints[j].Step, wantPoints[j].Time = 4, 5
		}
		if !sameValues(got, want) || !samePoints(points, wantPoints) {
			t.Errorf("row %d: %+v, want %+v", i, points, wantPoints)
		}
	}
}

// TestPutPoints fills pages of every size from the points of one row, on
// the fast path and off it.
func TestPutPoints(t *testing.T) {
	for _, items := range [][]Item{
		{{Key: "c", ValueJSON: "3"}, {Key: "a", ValueJSON: "1"}, {Key: "b", ValueJSON: "2"}, {Key: "d", ValueJSON: "4"}},
		{{Key: "c", ValueJSON: "3"}, {Key: "a", ValueJSON: "1"}, {Key: "s", ValueJSON: `"x"`}, {Key: "d", ValueJSON: "4"}},
	} {
		var row Row
		row.SetHistory(&History{Items: items})
		var conv RowConverter
		conv.Convert(&row, true)
		all := conv.AppendPoints(nil, 7, 8)
		if len(all) != 3 && len(all) != 4 || conv.NumPoints() != len(all) {
			t.Fatalf("%d points, NumPoints %d", len(all), conv.NumPoints())
		}
		for size := 1; size <= len(all); size++ {
			var got []schema.Metric
			for from := 0; from < len(all); from += size {
				page := make([]schema.Metric, min(size, len(all)-from))
				conv.PutPoints(page, from, 7, 8)
				got = append(got, page...)
			}
			if !samePoints(got, all) {
				t.Errorf("pages of %d: %v, want %v", size, got, all)
			}
		}
	}
}
