package wandbdir

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
)

// TestHeadersMatchRuns compares every run's light header with the run read
// in full, on the fixtures and the real-world samples: same runs in the
// same order, same Name, Start, Status and wandb.state, header damage a
// part of the full damage, and one fingerprint for both.
func TestHeadersMatchRuns(t *testing.T) {
	roots := []string{filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "fixtures"), testenv.Samples(t, "wandb")}
	for _, root := range roots {
		for _, after := range []time.Duration{time.Nanosecond, 0} {
			t.Run(fmt.Sprintf("%s/crashed-after=%s", filepath.Base(root), after), func(t *testing.T) {
				ctx := context.Background()
				src, err := New(Config{Root: root, CrashedAfter: after})
				if err != nil {
					t.Fatal(err)
				}
				defer src.Close()
				n := 0
				for e, err := range src.Experiments(ctx) {
					if err != nil {
						t.Fatal(err)
					}
					var full, light []schema.Run
					for r, err := range src.Runs(ctx, e.Origin) {
						if err != nil {
							t.Fatal(err)
						}
						full = append(full, r)
					}
					for r, err := range src.RunHeaders(ctx, e.Origin) {
						if err != nil {
							t.Fatal(err)
						}
						light = append(light, r)
					}
					if len(full) != len(light) {
						t.Fatalf("%s: %d runs, %d headers", e.Origin, len(full), len(light))
					}
					for i, f := range full {
						h := light[i]
						n++
						if h.Origin != f.Origin || h.Experiment != f.Experiment || h.Name != f.Name || !h.Start.Equal(f.Start) || h.Status != f.Status {
							t.Errorf("header %v %q %v %s, want %v %q %v %s", h.Origin, h.Name, h.Start, h.Status, f.Origin, f.Name, f.Start, f.Status)
						}
						if hs, fs := tagValue(h, "wandb.state"), tagValue(f, "wandb.state"); hs != fs {
							t.Errorf("%s: header state %q, want %q", f.Origin, hs, fs)
						}
						for _, d := range h.Damage {
							if !slices.Contains(f.Damage, d) {
								t.Errorf("%s: header damage %q not among the run's %q", f.Origin, d, f.Damage)
							}
						}
						if len(f.Damage) > 0 && len(h.Damage) == 0 && slices.ContainsFunc(f.Damage, func(d string) bool { return bytes.Contains([]byte(d), []byte("truncated")) }) {
							t.Errorf("%s: a truncated log's header has no damage", f.Origin)
						}
						hf, err1 := src.Fingerprint(ctx, h)
						ff, err2 := src.Fingerprint(ctx, f)
						if err1 != nil || err2 != nil || hf != ff || hf == "" {
							t.Errorf("%s: fingerprints %q (%v) and %q (%v)", f.Origin, hf, err1, ff, err2)
						}
					}
				}
				if n < 5 {
					t.Errorf("only %d runs compared", n)
				}
			})
		}
	}
}

func tagValue(r schema.Run, key string) string {
	for _, t := range r.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// readBytes is how many bytes this process has read through system calls
// (rchar of /proc/self/io), counting every file the job opens.
func readBytes(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io to count reads: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("rchar: ")); ok {
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no rchar in /proc/self/io")
	return 0
}

// TestNoChangeSyncReadsHeadersOnly syncs a folder holding a large finished
// run and a small live one, then syncs again with nothing changed, as a new
// process would (a new source, the same ledger): the second plan finds
// both unchanged and reads, counted by the kernel, a small part of the
// large log. A file added to the large run makes the next sync read it in
// full and append the file to its copy.
func TestNoChangeSyncReadsHeadersOnly(t *testing.T) {
	root := t.TempDir()
	start := time.Unix(1735689600, 0)
	big := filepath.Join(root, "run-20250101_000000-big1")
	values := map[string]string{}
	for k := range 20 {
		values[fmt.Sprintf("layer_%02d/grad_norm", k)] = "0.123456789012345"
	}
	records := [][]byte{runRecord("big1", "p", start)}
	for step := range int64(12000) {
		records = append(records, historyRecord(step, float64(start.Unix())+float64(step)/10, values))
	}
	records = append(records, exitRecord(0, 1200))
	writeRunFolder(t, big, records...)
	writeRunFolder(t, filepath.Join(root, "run-20250102_000000-live1"), runRecord("live1", "p", start.Add(24*time.Hour)),
		historyRecord(0, float64(start.Unix()+86400), map[string]string{"loss": "1"}))
	fi, err := os.Stat(filepath.Join(big, "run-big1.wandb"))
	if err != nil {
		t.Fatal(err)
	}
	logSize := fi.Size()
	if logSize < 8<<20 {
		t.Fatalf("log of %d bytes: want a large one", logSize)
	}
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	sink := memory.New(sinks.Limits{})
	sync := func() (*transfer.Report, int64) {
		t.Helper()
		ctx := context.Background()
		src, err := New(Config{Root: root, CrashedAfter: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		l, err := state.Open(ledger, state.Job{Source: "wandb:" + root, Sink: "memory"}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		before := readBytes(t)
		rep, err := transfer.Copy(ctx, src, sink, transfer.Options{Ledger: l, Concurrency: 1})
		if err != nil {
			t.Fatal(err)
		}
		return rep, readBytes(t) - before
	}
	rep, read := sync()
	if rep.Totals.Committed != 2 || read < logSize {
		t.Fatalf("first sync: %+v, read %d bytes of a %d-byte log", rep.Totals, read, logSize)
	}
	for i := range 3 {
		rep, read = sync()
		if rep.Totals.Committed != 0 || rep.Totals.Unchanged != 2 {
			t.Fatalf("sync %d with nothing changed: %+v, want 2 unchanged", i+2, rep.Totals)
		}
		// The run records and the layout probe at the logs' starts, their
		// tails and the ledger: far less than the large log.
		if read > logSize/8 {
			t.Errorf("sync %d with nothing changed read %d bytes; the large log has %d", i+2, read, logSize)
		}
	}
	if err := os.WriteFile(filepath.Join(big, "files", "notes.txt"), []byte("later"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, read = sync()
	if rep.Totals.Committed != 1 || rep.Totals.Unchanged != 1 || read < logSize {
		t.Errorf("sync after a file was added: %+v, read %d bytes of a %d-byte log; want the large run copied again", rep.Totals, read, logSize)
	}
	// The run is appended to: the new file goes, none of its points again.
	for _, r := range rep.Runs {
		if r.Outcome == transfer.Committed && (r.Name != "big1" || !r.Appended || r.Points != 0 || r.Files != 1) {
			t.Errorf("copied %s (%s): appended %v with %d points and %d files, want big1 appended to with 0 points and 1 file", r.Origin, r.Name, r.Appended, r.Points, r.Files)
		}
	}
}
