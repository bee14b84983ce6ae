package wandbfile

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"sync"
	"testing"

	"github.com/runferry/runferry/schema"
)

// benchHistoryFile is a ~50 MB `.wandb` file of history rows shaped like
// wandb-core's (nested keys, _step, _timestamp, _runtime and 12 metrics),
// built once.
var benchHistoryFile = sync.OnceValue(func() []byte {
	w := newTestWriter(false)
	metrics := map[string]string{}
	for step := int64(0); w.buf.Len() < 50<<20; step++ {
		for i := range 12 {
			metrics["train/metric_"+strconv.Itoa(i)] = strconv.FormatFloat(float64(step)*0.001+float64(i), 'g', -1, 64)
		}
		metrics["_runtime"] = strconv.FormatFloat(float64(step)*0.25, 'g', -1, 64)
		w.write(historyPayload(step+1, step, metrics))
	}
	return bytes.Clone(w.bytes())
})

// BenchmarkReadHistory reads the file, decodes every record and turns each
// history item into a (key, step, value) point, the work a W&B source does
// per metric point. Reported per byte of file; see also points/op.
func BenchmarkReadHistory(b *testing.B) {
	data := benchHistoryFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var points int
	for b.Loop() {
		points = 0
		r, err := NewReader(bytes.NewReader(data), "bench.wandb")
		if err != nil {
			b.Fatal(err)
		}
		for {
			payload, _, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rec, err := Decode(payload)
			if err != nil || rec.History == nil {
				b.Fatalf("record does not decode as history: %v", err)
			}
			step, ok := rec.History.StepValue()
			if !ok {
				b.Fatal("row without step")
			}
			for _, it := range rec.History.Items {
				if len(it.NestedKey) == 1 && it.NestedKey[0] == "_step" {
					continue
				}
				if _, err := ParseValueJSON(it.ValueJSON); err != nil {
					b.Fatal(err)
				}
				_ = step
				points++
			}
		}
		if len(r.Damage()) != 0 {
			b.Fatalf("damage: %v", r.Damage())
		}
	}
	b.ReportMetric(float64(points), "points/op")
}

// BenchmarkScanHistory does the work of BenchmarkReadHistory the way the
// run-folder source does it: the zero-copy scanner (Scanner, PeekRecord,
// Row.Scan) and RowConverter, points written into a reused page. Its
// points/op leave out `_runtime`, as the conversion does (ReadHistory
// counts it). Reported per byte of file.
func BenchmarkScanHistory(b *testing.B) {
	data := benchHistoryFile()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	var points int
	var row Row
	var conv RowConverter
	page := make([]schema.Metric, 0, 4096)
	for b.Loop() {
		points = 0
		r, err := NewReader(bytes.NewReader(data), "bench.wandb")
		if err != nil {
			b.Fatal(err)
		}
		s := NewScanner(r)
		for {
			payload, _, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			kind, body, ok := PeekRecord(payload)
			if !ok || kind != KindHistory || !row.Scan(body) {
				b.Fatal("record does not scan as history")
			}
			v := conv.Convert(&row, true)
			if !v.HasStep {
				b.Fatal("row without step")
			}
			n := conv.NumPoints()
			if len(page)+n > cap(page) {
				page = page[:0]
			}
			page = page[:len(page)+n]
			conv.PutPoints(page[len(page)-n:], 0, v.Step, v.Time)
			points += n
		}
		if len(s.Damage()) != 0 {
			b.Fatalf("damage: %v", s.Damage())
		}
		s.Close()
	}
	b.ReportMetric(float64(points), "points/op")
}
