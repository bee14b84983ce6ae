package wandbdir

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// readAll reads every run of root as a copy does, listed by its light
// header (its Metrics pass then runs readRun's pass beside its own) or, with
// full set, in full first, and returns, run by run, every Metrics page as
// it was yielded, the rich values, lines and manifests, and the run.
func readAll(t *testing.T, root string, full bool) []string {
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
		var b strings.Builder
		for page, err := range src.Metrics(ctx, run.Origin) {
			if err != nil {
				t.Fatalf("Metrics %s: %v", run.Origin, err)
			}
			// %#v: pages compare value for value (NaN too) and page by page.
			fmt.Fprintf(&b, "page %d %#v\n", len(page), page)
		}
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

// TestConvertAheadYieldsTheSame reads every run with its history rows
// converted ahead on other goroutines and converted one by one as read:
// the same Metrics pages (split at the same points), rich values, console
// lines, manifests and run, read by the light header or in full; on a
// generated log of many batches of rows, the SDK-made fixtures (damaged,
// resumed, crashed runs among them) and the real samples.
func TestConvertAheadYieldsTheSame(t *testing.T) {
	read := func(root string, full, ahead bool) []string {
		defer func(old bool) { convertAhead = old }(convertAhead)
		convertAhead = ahead
		return readAll(t, root, full)
	}
	for _, root := range comparisonRoots(t) {
		for _, full := range []bool{false, true} {
			want, got := read(root, full, false), read(root, full, true)
			if len(want) != len(got) {
				t.Fatalf("%s: %d runs, %d", root, len(want), len(got))
			}
			for i := range want {
				if want[i] != got[i] {
					t.Errorf("%s (full %v): run %d differs:\nconverted as read %.2000s\nconverted ahead %.2000s", root, full, i, want[i], got[i])
				}
			}
		}
	}
}

// TestConvertAheadStops stops reading Metrics after the first page, with
// rows converted ahead: the pass ends without error, and a later read
// yields every point, as many as a read converting each row as read.
func TestConvertAheadStops(t *testing.T) {
	root := comparisonRoots(t)[0] // the generated log of many batches
	count := func(ahead bool) (int, *Source) {
		defer func(old bool) { convertAhead = old }(convertAhead)
		convertAhead = ahead
		src, err := New(Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		run := allRuns(t, src)[0]
		for page, err := range src.Metrics(context.Background(), run.Origin) {
			if err != nil || len(page) == 0 {
				t.Fatalf("first page: %d points, %v", len(page), err)
			}
			break
		}
		return drainMetrics(t, src, run.Origin), src
	}
	want, _ := count(false)
	if got, _ := count(true); got != want || want < aheadRows*aheadBatches*4 {
		t.Errorf("%d points after a stopped read, want %d (and many batches)", got, want)
	}
}
