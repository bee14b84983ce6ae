package wandbfile

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestWriterMatchesTestWriter checks the exported Writer against the
// test-only writer the reader tests are built on, byte for byte, in both
// layouts, with record sizes that leave every interesting block tail (none,
// less than a chunk header, exactly a chunk header) and span several blocks.
func TestWriterMatchesTestWriter(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, BlockSize - FileHeaderSize - 2*ChunkHeaderSize - 3, 5, 2, BlockSize, 3 * BlockSize, 100}
	for range 200 {
		sizes = append(sizes, rng.IntN(3000))
	}
	for _, legacy := range []bool{false, true} {
		var out bytes.Buffer
		w := NewWriter(&out)
		if legacy {
			w = NewLegacyCoreWriter(&out)
		}
		tw := newTestWriter(legacy)
		for i, n := range sizes {
			payload := make([]byte, n)
			for j := range payload {
				payload[j] = byte(i + j)
			}
			off, err := w.WriteRecord(payload)
			if err != nil {
				t.Fatal(err)
			}
			if want := tw.write(payload); off != want.offset {
				t.Fatalf("legacy=%v record %d: offset %d, want %d", legacy, i, off, want.offset)
			}
			if w.Offset() != int64(tw.buf.Len()) {
				t.Fatalf("legacy=%v record %d: Offset %d, want %d", legacy, i, w.Offset(), tw.buf.Len())
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), tw.bytes()) {
			t.Fatalf("legacy=%v: Writer output differs from the test writer's", legacy)
		}
		res := readBytes(t, out.Bytes())
		assertRecords(t, res, tw.written)
	}
}

// TestWriterEmptyFile checks that a Writer with no records writes a valid,
// empty file.
func TestWriterEmptyFile(t *testing.T) {
	var out bytes.Buffer
	if err := NewWriter(&out).Flush(); err != nil {
		t.Fatal(err)
	}
	if out.Len() != FileHeaderSize {
		t.Fatalf("empty file is %d bytes, want %d", out.Len(), FileHeaderSize)
	}
	if res := readBytes(t, out.Bytes()); len(res.payloads) != 0 || len(res.damage) != 0 {
		t.Fatalf("empty file read as %d records, damage %v", len(res.payloads), res.damage)
	}
}

// failingWriter accepts limit bytes, then fails.
type failingWriter struct{ limit int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n := f.limit
		f.limit = 0
		return n, errors.New("disk full")
	}
	f.limit -= len(p)
	return len(p), nil
}

// TestWriterStickyError checks that a write error is returned by the write
// that hit it and by every later call.
func TestWriterStickyError(t *testing.T) {
	w := NewWriter(&failingWriter{limit: BlockSize + 100})
	var err error
	for i := 0; err == nil && i < 100; i++ {
		_, err = w.WriteRecord(make([]byte, 1000))
	}
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("error %v, want disk full", err)
	}
	if _, err2 := w.WriteRecord([]byte("x")); err2 == nil {
		t.Fatal("write after error succeeded")
	}
	if w.Flush() == nil {
		t.Fatal("Flush after error succeeded")
	}
	if _, err := NewWriter(io.Discard).WriteRecord(make([]byte, MaxRecordSize+1)); err == nil {
		t.Fatal("oversized record accepted")
	}
}

// TestAppendRecordRoundTrip encodes one record of every supported kind and
// decodes it back.
func TestAppendRecordRoundTrip(t *testing.T) {
	step := int64(41)
	zero := int64(0)
	start := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC)
	records := []Record{
		{Num: 1, Kind: KindHeader, Header: &Header{Producer: "0.31.0+abc", MinConsumer: "0.0.1"}},
		{Num: 2, Kind: KindRun, Run: &Run{
			RunID: "abc123", Entity: "acme", Project: "vision", Group: "g", JobType: "train",
			DisplayName: "bright-sun-1", Notes: "n", Tags: []string{"a", "b"}, SweepID: "sw",
			Host: "node1", StartStep: 5, StorageID: "sid", StartTime: start, Resumed: true,
			Runtime: -3, GitRemote: "https://x/y.git", GitCommit: "deadbeef", Forked: true,
			BranchPoint: &BranchPoint{Run: "p", Value: 2.5, Metric: "_step"},
			Config:      &Config{Update: []Item{{NestedKey: []string{"lr"}, ValueJSON: `{"value":0.1}`}}},
			Summary:     &Summary{Update: []Item{{Key: "acc", ValueJSON: "0.9"}}},
			Settings:    []Item{{Key: "mode", ValueJSON: `"offline"`}},
		}},
		{Num: 3, Kind: KindTelemetry, Telemetry: &Telemetry{PythonVersion: "3.11", CLIVersion: "0.31.0", CoreVersion: "0.31.0", Platform: "linux"}},
		{Num: 4, Kind: KindConfig, Config: &Config{
			Update: []Item{HistoryItem("1", "a", "b"), {Key: "c", ValueJSON: `"x"`}},
			Remove: []Item{{Key: "d"}},
		}},
		{Num: 5, Kind: KindHistory, History: &History{Step: &step, Items: []Item{
			HistoryItem("41", "_step"), HistoryItem("1.7e+09", "_timestamp"),
			HistoryItem("NaN", "train/loss"), HistoryItem("", "empty"), HistoryItem("3", "nested", "", "leaf"),
		}}},
		{Num: 6, Kind: KindHistory, History: &History{Step: &zero, Items: []Item{HistoryItem("0", "_step")}}},
		{Num: 7, Kind: KindHistory, History: &History{Items: []Item{{Key: "legacy", ValueJSON: `{"a":1}`}}}},
		{Num: 8, Kind: KindStats, Stats: &Stats{Timestamp: start, Items: []Item{{Key: "cpu", ValueJSON: "12.5"}}}},
		{Num: 9, Kind: KindSummary, Summary: &Summary{Update: []Item{HistoryItem("2", "x")}, Remove: []Item{HistoryItem("", "y")}}},
		{Num: 10, Kind: KindOutputRaw, Local: true, Output: &Output{Stream: 1, Timestamp: start, Line: "héllo\n"}},
		{Num: 11, Kind: KindOutput, UUID: "u-1", Output: &Output{Line: "x"}},
		{Num: 12, Kind: KindExit, Exit: &Exit{ExitCode: -9, Runtime: 1234, NotComplete: true}},
		{Num: 13, Kind: KindFinal},
		{Num: 14, Kind: KindFooter},
		{Kind: KindPreempting},
	}
	var out bytes.Buffer
	w := NewWriter(&out)
	for i := range records {
		payload, err := AppendRecord(nil, &records[i])
		if err != nil {
			t.Fatalf("%s: %v", records[i].Kind, err)
		}
		got, err := Decode(payload)
		if err != nil {
			t.Fatalf("%s: decode: %v", records[i].Kind, err)
		}
		if !reflect.DeepEqual(got, records[i]) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", records[i].Kind, got, records[i])
		}
		if _, err := w.WriteRecord(payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	res := readBytes(t, out.Bytes())
	if len(res.payloads) != len(records) || len(res.damage) != 0 {
		t.Fatalf("read %d records, damage %v; want %d", len(res.payloads), res.damage, len(records))
	}
}

// TestAppendRecordErrors checks the kinds AppendRecord refuses.
func TestAppendRecordErrors(t *testing.T) {
	for _, rec := range []Record{
		{Kind: KindHistory},
		{Kind: KindRun},
		{Kind: KindArtifact, Artifact: &Artifact{}},
		{Kind: Kind(999)},
	} {
		if _, err := AppendRecord(nil, &rec); err == nil {
			t.Errorf("%s: no error", rec.Kind)
		}
	}
}
