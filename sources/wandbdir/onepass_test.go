package wandbdir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/schema"
)

// The one read of onepass.go: RichValues and Logs after a run's Metrics
// yield from what that pass kept, exactly what their own passes over the
// logs yield, and read no log doing so.

// readRich and readLogs drain a run's RichValues and Logs into text (as
// %#v, so that pages compare value for value).
func readRich(t *testing.T, src *Source, run schema.Ref) string {
	t.Helper()
	var b strings.Builder
	for page, err := range src.RichValues(context.Background(), run) {
		if err != nil {
			t.Fatalf("RichValues %s: %v", run, err)
		}
		fmt.Fprintf(&b, "%#v\n", page)
	}
	return b.String()
}

func readLogs(t *testing.T, src *Source, run schema.Ref) string {
	t.Helper()
	var b strings.Builder
	for page, err := range src.Logs(context.Background(), run) {
		if err != nil {
			t.Fatalf("Logs %s: %v", run, err)
		}
		fmt.Fprintf(&b, "%#v\n", page)
	}
	return b.String()
}

// drainMetrics reads a run's Metrics to the end and returns its points.
func drainMetrics(t *testing.T, src *Source, run schema.Ref) int {
	t.Helper()
	n := 0
	for page, err := range src.Metrics(context.Background(), run) {
		if err != nil {
			t.Fatalf("Metrics %s: %v", run, err)
		}
		n += len(page)
	}
	return n
}

// allRuns lists the runs of src, read in full (as a copy plans them).
func allRuns(t *testing.T, src *Source) []schema.Run {
	t.Helper()
	ctx := context.Background()
	var out []schema.Run
	for exp, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for run, err := range src.Runs(ctx, exp.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, run)
		}
	}
	return out
}

// passesOf reads every run of root as a copy does (Runs, then Metrics,
// RichValues, Logs; withMetrics false leaves Metrics out, so that
// RichValues and Logs read the logs themselves) and returns the rich
// values and lines of each run.
func passesOf(t *testing.T, root string, withMetrics bool) []string {
	t.Helper()
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var out []string
	for _, run := range allRuns(t, src) {
		if withMetrics {
			drainMetrics(t, src, run.Origin)
		}
		out = append(out, run.Origin.ID+"\n"+readRich(t, src, run.Origin)+readLogs(t, src, run.Origin))
	}
	return out
}

// TestOnePassYieldsTheSame compares RichValues and Logs read after
// Metrics (from the capture) with the same calls without Metrics before
// (their own passes over the logs): on a generated log of several pages,
// the SDK-made fixtures and the real samples.
func TestOnePassYieldsTheSame(t *testing.T) {
	for _, root := range comparisonRoots(t) {
		passes, once := passesOf(t, root, false), passesOf(t, root, true)
		if len(passes) != len(once) {
			t.Fatalf("%s: %d runs, %d", root, len(passes), len(once))
		}
		for i := range passes {
			if passes[i] != once[i] {
				t.Errorf("%s: run %d differs:\nown passes %.1000s\nafter Metrics %.1000s", root, i, passes[i], once[i])
			}
		}
	}
}

// blankLogs overwrites every log of run with zeros, keeping its size, and,
// when keepTime, its modification time: a pass reading it would find no
// record.
func blankLogs(t *testing.T, src *Source, run schema.Ref, keepTime bool) {
	t.Helper()
	ri, err := src.find(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	for _, seg := range ri.segments {
		fi, err := os.Stat(seg.wandbFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seg.wandbFile, make([]byte, fi.Size()), 0o644); err != nil {
			t.Fatal(err)
		}
		if keepTime {
			if err := os.Chtimes(seg.wandbFile, fi.ModTime(), fi.ModTime()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestOnePassReadsNoLog blanks each run's logs (same size, same time)
// right after its Metrics: RichValues and Logs still yield what the
// untouched logs hold, so they did not read them.
func TestOnePassReadsNoLog(t *testing.T) {
	const fixtures = "../../testdata/wandb/fixtures"
	want := passesOf(t, fixtures, false)
	if joined := strings.Join(want, ""); !strings.Contains(joined, "RichValue{") || !strings.Contains(joined, "LogLine{") {
		t.Fatal("the fixtures hold no rich value or no console line: the test proves nothing")
	}
	root := copyTree(t, fixtures)
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []string
	for _, run := range allRuns(t, src) {
		drainMetrics(t, src, run.Origin)
		blankLogs(t, src, run.Origin, true)
		got = append(got, run.Origin.ID+"\n"+readRich(t, src, run.Origin)+readLogs(t, src, run.Origin))
	}
	if len(got) != len(want) {
		t.Fatalf("%d runs, want %d", len(got), len(want))
	}
	for i := range want {
		// Origins of runs without an entity name their folder.
		w := strings.ReplaceAll(want[i], fixtureIdentity(t, fixtures), fixtureIdentity(t, root))
		if got[i] != w {
			t.Errorf("run %d: after Metrics and blanked logs:\n%.1000s\nwant\n%.1000s", i, got[i], w)
		}
	}
}

// fixtureIdentity is the folder identity origins under root carry.
func fixtureIdentity(t *testing.T, root string) string {
	t.Helper()
	return folderIdentity(filepath.Join(root, "wandb"))
}

// TestOnePassRereadsChangedLog changes each run's logs after its Metrics
// (blanked, with a new modification time): RichValues and Logs read them
// again, as they did before there was a capture, and find no record.
func TestOnePassRereadsChangedLog(t *testing.T) {
	root := copyTree(t, "../../testdata/wandb/fixtures")
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	rich := 0
	for _, run := range allRuns(t, src) {
		drainMetrics(t, src, run.Origin)
		ri, _ := src.find(context.Background(), run.Origin)
		if stamps, ok := stampLogs(ri); ok {
			for i := range stamps {
				// A time the copy cannot have: the stamps must differ.
				if err := os.Chtimes(ri.segments[i].wandbFile, stamps[i].mtime, stamps[i].mtime.Add(-3600e9)); err != nil {
					t.Fatal(err)
				}
			}
		}
		blankLogs(t, src, run.Origin, true)
		rich += strings.Count(readRich(t, src, run.Origin), "RichValue{")
	}
	if rich != 0 {
		t.Errorf("%d rich values yielded from changed (blank) logs: the capture was used", rich)
	}
}

// TestOnePassStoppedMetricsKeepsNothing: a Metrics pass its consumer
// stops early keeps no capture.
func TestOnePassStoppedMetricsKeepsNothing(t *testing.T) {
	gen := t.TempDir()
	dir := filepath.Join(gen, "bench", "wandb", "run-20240601_120000-bench1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-bench1.wandb"), 1500); err != nil {
		t.Fatal(err)
	}
	src, err := New(Config{Root: gen})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	runs := allRuns(t, src)
	ri, _ := src.find(context.Background(), runs[0].Origin)
	for _, err := range src.Metrics(context.Background(), runs[0].Origin) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if src.captures.byRun[ri] != nil {
		t.Fatal("a Metrics pass stopped after its first page kept a capture")
	}
	if n := drainMetrics(t, src, runs[0].Origin); n != 1500*20+15*4 {
		t.Fatalf("%d points", n)
	}
	if src.captures.byRun[ri] == nil {
		t.Fatal("a whole Metrics pass kept no capture")
	}
}

// TestCaptureBound: a capture that outgrows maxCaptureBytes keeps
// nothing and is not kept, and a Source keeps at most maxCaptures.
func TestCaptureBound(t *testing.T) {
	c := &passCapture{}
	big := strings.Repeat("x", 1<<20)
	for range maxCaptureBytes>>20 - 1 {
		_ = c.addRich(schema.RichValue{Key: "k", JSON: big})
	}
	if c.over || len(c.rich) == 0 {
		t.Fatalf("over %v with %d values under the bound", c.over, len(c.rich))
	}
	_ = c.addRich(schema.RichValue{Key: "k", JSON: big})
	_ = c.addRich(schema.RichValue{Key: "k", JSON: big})
	if !c.over || c.rich != nil {
		t.Fatalf("over %v with %d values past the bound", c.over, len(c.rich))
	}
	var cs captureSet
	ri := &runInfo{}
	cs.keep(ri, c)
	if cs.byRun[ri] != nil {
		t.Fatal("a capture past the bound was kept")
	}
	for range maxCaptures + 3 {
		cs.keep(&runInfo{}, &passCapture{stamps: []fileStamp{}})
	}
	if len(cs.runs) != maxCaptures || len(cs.byRun) != maxCaptures {
		t.Fatalf("%d/%d captures kept, at most %d", len(cs.runs), len(cs.byRun), maxCaptures)
	}
}

// comparisonRoots returns the folders the read-path comparisons run on: a
// generated log of several pages (15,000 rows), the SDK-made fixtures and
// the real samples, each where it exists (a missing one is logged).
func comparisonRoots(t *testing.T) []string {
	t.Helper()
	gen := t.TempDir()
	dir := filepath.Join(gen, "bench", "wandb", "run-20240601_120000-bench1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-bench1.wandb"), 15000); err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, root := range []string{gen, "../../testdata/wandb/fixtures", "../../../shared/samples/wandb"} {
		if _, err := os.Stat(root); err != nil {
			t.Logf("%s: %v: skipped", root, err)
			continue
		}
		roots = append(roots, root)
	}
	return roots
}
