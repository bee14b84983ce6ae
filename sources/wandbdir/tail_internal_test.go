package wandbdir

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbfile"
)

// TestTailFastPathMatchesDecode reads the tail of every log of the
// fixtures, the real-world samples and a generated log (larger than the
// tail, so the tail starts mid-file) with the fast path (history rows
// scanned in place, records the header does not use skipped) and with
// every record decoded: the exit record, preempting flag, latest timestamp
// and damage are the same. Read without times (as discovery and a header
// whose exit record decides the status read it), the tail is the same but
// for the latest timestamp.
func TestTailFastPathMatchesDecode(t *testing.T) {
	gen := t.TempDir()
	dir := filepath.Join(gen, "bench", "wandb", "run-20240601_120000-tail1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-tail1.wandb"), 3000); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "run-tail1.wandb")); err != nil || fi.Size() <= 2*tailBytes {
		t.Fatalf("generated log: %v, %d bytes; want more than twice the tail", err, fi.Size())
	}
	roots := []string{gen, filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "fixtures"), testenv.Samples(t, "wandb")}
	logs, kept := 0, 0
	for _, root := range roots {
		runs, _, err := discover(context.Background(), root, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, ri := range runs {
			for _, seg := range ri.segments {
				if seg.wandbFile == "" {
					continue
				}
				fi, err := os.Stat(seg.wandbFile)
				if err != nil {
					t.Fatal(err)
				}
				if c := seg.tailCache; c != nil {
					// Discovery read this small log once for its run record and
					// its tail: the same tail a read of its own gives.
					cached := *c
					cached.id = fileID{}
					if fi.Size() > tailBytes {
						t.Errorf("%s: tail kept by discovery for a log of %d bytes", seg.wandbFile, fi.Size())
					}
					if want := readTail(seg, fi.Size(), false); !reflect.DeepEqual(cached, want) {
						t.Errorf("%s: tail kept by discovery %+v, read alone %+v", seg.wandbFile, cached, want)
					}
					rr := firstRunRecord(seg.wandbFile)
					if rr != nil && rr.RunID == "" {
						rr = nil // identify keeps no run record without an id
					}
					if rr != nil { // identify keeps the fields discovery and the header use
						rr = &wandbfile.Run{RunID: rr.RunID, Entity: rr.Entity, Project: rr.Project,
							DisplayName: rr.DisplayName, StartTime: rr.StartTime}
					}
					if !reflect.DeepEqual(rr, seg.run) {
						t.Errorf("%s: run record from the one read %+v, firstRunRecord %+v", seg.wandbFile, seg.run, rr)
					}
					kept++
				}
				read := func(fast, times bool) tailInfo {
					defer func(old bool) { fastPath = old }(fastPath)
					fastPath = fast
					return readTail(seg, fi.Size(), times)
				}
				got, want := read(true, true), read(false, true)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: fast tail %+v, decoded %+v", seg.wandbFile, got, want)
				}
				untimed := want
				untimed.lastTime, untimed.timed = 0, false
				for _, fast := range []bool{true, false} {
					if got := read(fast, false); !reflect.DeepEqual(got, untimed) {
						t.Errorf("%s: tail without times (fast path %v) %+v, want %+v", seg.wandbFile, fast, got, untimed)
					}
				}
				if seg.wandbFile == filepath.Join(dir, "run-tail1.wandb") {
					if want.lastTime == 0 || want.exit == nil {
						t.Errorf("generated log: tail %+v, want a timestamp and the exit record", want)
					}
					// The cache: a tail kept without times is read again
					// when times are asked for, and then serves both.
					strip := func(c tailInfo) tailInfo { c.id = fileID{}; return c }
					if got := strip(ri.tail(seg, false)); !reflect.DeepEqual(got, untimed) {
						t.Errorf("generated log: cached tail without times %+v, want %+v", got, untimed)
					}
					for _, times := range []bool{true, false} {
						if got := strip(ri.tail(seg, times)); !reflect.DeepEqual(got, want) {
							t.Errorf("generated log: cached tail (times asked: %v) %+v, want %+v", times, got, want)
						}
					}
				}
				logs++
			}
		}
	}
	if logs < 3 || kept < 2 {
		t.Fatalf("only %d logs read, %d tails kept by discovery", logs, kept)
	}
}

// TestRunHeadersStopEarly stops listing headers after each count of them
// (they are built ahead, on several goroutines): the headers seen are the
// first ones in order, and the listing returns, its goroutines done.
func TestRunHeadersStopEarly(t *testing.T) {
	gen := t.TempDir()
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		dir := filepath.Join(gen, "wandb", "run-20240601_120000-"+id)
		if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeRunRecordLog(t, filepath.Join(dir, "run-"+id+".wandb"), id)
	}
	ctx := context.Background()
	src, err := New(Config{Root: gen})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var all []string
	var exps int
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		exps++
		for r, err := range src.RunHeaders(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, r.Origin.String())
		}
		for n := range len(all) {
			var got []string
			for r, err := range src.RunHeaders(ctx, e.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				if len(got) == n {
					break
				}
				got = append(got, r.Origin.String())
			}
			if !slices.Equal(got, all[:n]) {
				t.Errorf("stopped after %d: %v, want %v", n, got, all[:n])
			}
		}
	}
	if exps != 1 || len(all) != 7 {
		t.Fatalf("%d experiments, %d headers; want 1 and 7", exps, len(all))
	}
}

// writeRunRecordLog writes a `.wandb` log holding only the run record of
// run id (project p).
func writeRunRecordLog(t *testing.T, path, id string) {
	t.Helper()
	var buf bytes.Buffer
	w := wandbfile.NewWriter(&buf)
	rec, err := wandbfile.AppendRecord(nil, &wandbfile.Record{Num: 1, Kind: wandbfile.KindRun,
		Run: &wandbfile.Run{RunID: id, Project: "p", StartTime: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteRecord(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
