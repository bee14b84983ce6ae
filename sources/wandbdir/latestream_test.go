package wandbdir

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runferry/runferry/schema"
)

// A run listed by its light header and read only by its streams (a copy
// into a sink that takes the run at commit): its Metrics pass runs
// readRun's pass beside its own, and RunAfterStreams gives the run in full
// from it, as Run would, without reading the logs again.

// headers lists the light headers of every run of src.
func headers(t *testing.T, src *Source) []schema.Run {
	t.Helper()
	ctx := context.Background()
	var out []schema.Run
	for exp, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for run, err := range src.RunHeaders(ctx, exp.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, run)
		}
	}
	return out
}

// streamedRuns reads every run of root as a copy does with a late run
// (headers, then Metrics, RichValues, Logs, Manifests, then
// RunAfterStreams), or, with full set, as before (Runs first, then the
// same streams), and returns for each run the run and the streams as text.
// blank, when set, blanks each run's logs (same size and time) once its
// Metrics were read.
func streamedRuns(t *testing.T, root string, full, blank bool) []string {
	t.Helper()
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	runs := headers(t, src)
	if full {
		runs = allRuns(t, src)
	}
	var out []string
	for _, run := range runs {
		drainMetrics(t, src, run.Origin)
		if blank {
			blankLogs(t, src, run.Origin, true)
		}
		var b strings.Builder
		b.WriteString(readRich(t, src, run.Origin) + readLogs(t, src, run.Origin))
		for m, err := range src.Manifests(ctx, run.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%#v\n", m)
		}
		if !full {
			if run, err = src.RunAfterStreams(ctx, run.Origin); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, fmt.Sprintf("%#v\n%s", run, b.String()))
	}
	return out
}

// TestRunAfterStreamsIsRun compares, run by run, what a copy reading the
// run in full first gets (Runs, then its streams) with what one reading
// only its header first gets (its streams, then RunAfterStreams): the
// same run, value for value, and the same rich values, lines and
// manifests; on a generated log of several pages, the SDK-made fixtures
// (damaged, resumed, crashed and artifact-logging runs among them) and the
// real samples.
func TestRunAfterStreamsIsRun(t *testing.T) {
	for _, root := range comparisonRoots(t) {
		want, got := streamedRuns(t, root, true, false), streamedRuns(t, root, false, false)
		if len(want) != len(got) {
			t.Fatalf("%s: %d runs, %d", root, len(want), len(got))
		}
		for i := range want {
			if want[i] != got[i] {
				t.Errorf("%s: run %d differs:\nread in full first %.2000s\nafter its streams %.2000s", root, i, want[i], got[i])
			}
		}
	}
}

// TestRunAfterStreamsReadsNoLog blanks each run's logs (same size, same
// time) right after its Metrics, listed by its header: RunAfterStreams
// still gives the run the untouched logs hold, so it was read by the
// Metrics pass, not again.
func TestRunAfterStreamsReadsNoLog(t *testing.T) {
	const fixtures = "../../testdata/wandb/fixtures"
	want := streamedRuns(t, fixtures, true, false)
	root := copyTree(t, fixtures)
	got := streamedRuns(t, root, false, true)
	if len(got) != len(want) {
		t.Fatalf("%d runs, want %d", len(got), len(want))
	}
	for i := range want {
		w := strings.ReplaceAll(want[i], fixtureIdentity(t, fixtures), fixtureIdentity(t, root))
		// The run's folder moved: its paths in damage notes and files
		// name the copy.
		w = strings.ReplaceAll(w, fixtures, root)
		if got[i] != w {
			t.Errorf("run %d: after Metrics and blanked logs:\n%.2000s\nwant\n%.2000s", i, got[i], w)
		}
	}
}

// TestRunAfterStreamsRereadsChangedLog changes a run's logs after its
// Metrics (blanked, with a new modification time): RunAfterStreams reads
// them again, as Run does, and does not give the run the pass saw.
func TestRunAfterStreamsRereadsChangedLog(t *testing.T) {
	root := copyTree(t, "../../testdata/wandb/fixtures")
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for _, h := range headers(t, src) {
		drainMetrics(t, src, h.Origin)
		blankLogs(t, src, h.Origin, false)
		got, err := src.RunAfterStreams(ctx, h.Origin)
		if err != nil {
			t.Fatal(err)
		}
		want, err := src.Run(ctx, h.Origin)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := fmt.Sprintf("%#v", got), fmt.Sprintf("%#v", want); g != w {
			t.Errorf("%s: after its logs changed:\n%.2000s\nwant (Run now)\n%.2000s", h.Origin, g, w)
		}
	}
}
