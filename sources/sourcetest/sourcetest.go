// Package sourcetest is the conformance suite every source adapter runs. It
// checks the iterator contract of sources.Source (stable order, early
// break, cancellation, concurrent reads, steps non-decreasing per key,
// canonical form) and, when the adapter supplies the dataset it expects to
// read, compares everything read with it.
package sourcetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
)

// Opt configures the suite for one adapter.
type Opt struct {
	// Open returns a source over the adapter's fixture. It is called once
	// per subtest; the suite closes what it returns.
	Open func(t *testing.T) sources.Source
	// Want is what the fixture holds; nil skips the content comparison
	// (the adapter then compares in its own tests).
	Want *dataset.Dataset
	// Diff relaxes the comparison; say why at the call site.
	Diff dataset.DiffOptions
	// OpenOther returns a source over the same data on another instance
	// of the source system (another server, another folder), so that the
	// suite can demand that origins name the instance: no experiment or
	// run it yields may share an origin with one Open's source yields,
	// else two instances synced into one destination would be merged.
	// Leave it nil only with a reason in Skip["OriginsNameTheInstance"].
	OpenOther func(t *testing.T) sources.Source
	// Skip maps a subtest name to the reason it does not apply.
	Skip map[string]string
}

// Run runs the suite.
func Run(t *testing.T, opt Opt) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opt)
	}{
		{"MatchesWant", testMatchesWant},
		{"Canonical", testCanonical},
		{"StableOrder", testStableOrder},
		{"StepsNonDecreasingPerKey", testStepsNonDecreasing},
		{"EarlyBreak", testEarlyBreak},
		{"ContextCancel", testContextCancel},
		{"ConcurrentReads", testConcurrent},
		{"CloseTwice", testCloseTwice},
		{"OriginsNameTheInstance", testOriginsNameTheInstance},
		{"FormerOrigins", testFormerOrigins},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if why, ok := opt.Skip[tt.name]; ok {
				t.Skip(why)
			}
			tt.fn(t, opt)
		})
	}
}

func open(t *testing.T, opt Opt) sources.Source {
	src := opt.Open(t)
	t.Cleanup(func() { src.Close() })
	return src
}

func readAll(t *testing.T, src sources.Source) *dataset.Dataset {
	t.Helper()
	d, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatalf("reading the source: %v", err)
	}
	if len(d.Runs) == 0 {
		t.Fatal("the fixture holds no run: the suite proves nothing")
	}
	return d
}

func testMatchesWant(t *testing.T, opt Opt) {
	if opt.Want == nil {
		t.Skip("the adapter compares content in its own tests")
	}
	got := readAll(t, open(t, opt))
	if diff := dataset.Diff(opt.Want, got, opt.Diff); diff != nil {
		t.Fatalf("source differs from the expected dataset:\n%s", strings.Join(diff, "\n"))
	}
}

func testCanonical(t *testing.T, opt Opt) {
	d := readAll(t, open(t, opt))
	for _, e := range d.Experiments {
		if err := e.Validate(); err != nil {
			t.Error(err)
		}
	}
	for _, r := range d.Runs {
		if err := r.Run.Validate(); err != nil {
			t.Error(err)
		}
		for i := 1; i < len(r.Files); i++ {
			if r.Files[i-1].Path >= r.Files[i].Path {
				t.Errorf("run %s: files not sorted by path at %q", r.Run.Origin, r.Files[i].Path)
			}
		}
	}
}

func order(d *dataset.Dataset) []string {
	var out []string
	for _, e := range d.Experiments {
		out = append(out, "exp "+e.Origin.String())
	}
	for _, r := range d.Runs {
		out = append(out, fmt.Sprintf("run %s points %d", r.Run.Origin, len(r.Metrics)))
		for _, m := range r.Metrics {
			out = append(out, fmt.Sprintf("%s %d %d", m.Key, m.Step, m.Time))
		}
	}
	return out
}

func testStableOrder(t *testing.T, opt Opt) {
	a := order(readAll(t, open(t, opt)))
	b := order(readAll(t, open(t, opt)))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two reads of the same source yield different orders")
	}
}

func testStepsNonDecreasing(t *testing.T, opt Opt) {
	d := readAll(t, open(t, opt))
	for _, r := range d.Runs {
		last := map[string]int64{}
		for _, m := range r.Metrics {
			if s, ok := last[m.Key]; ok && m.Step < s {
				t.Fatalf("run %s key %q: step %d after %d", r.Run.Origin, m.Key, m.Step, s)
			}
			last[m.Key] = m.Step
		}
	}
}

// testEarlyBreak stops every iterator after its first element; a source
// that yields after the loop broke makes the Go runtime panic.
func testEarlyBreak(t *testing.T, opt Opt) {
	src := open(t, opt)
	ctx := context.Background()
	for _, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	var run schema.Run
	for _, e := range readAll(t, src).Experiments {
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			run = r
			break
		}
		if !run.Origin.IsZero() {
			break
		}
	}
	for _, err := range src.Metrics(ctx, run.Origin) {
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if a, ok := src.(sources.ArtifactLister); ok {
		for _, err := range a.Artifacts(ctx, run.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if l, ok := src.(sources.LogReader); ok {
		for _, err := range l.Logs(ctx, run.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
}

func testContextCancel(t *testing.T, opt Opt) {
	src := open(t, opt)
	d := readAll(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	check := func(what string, n int, err error) {
		if err == nil || !errors.Is(err, context.Canceled) || n > 1 {
			t.Errorf("%s with a canceled context: %d elements, error %v; want at most one element and context.Canceled", what, n, err)
		}
	}
	var n int
	var last error
	for _, err := range src.Experiments(ctx) {
		if last = err; err != nil {
			break
		}
		n++
	}
	check("Experiments", n, last)
	n, last = 0, nil
	for _, err := range src.Runs(ctx, d.Experiments[0].Origin) {
		if last = err; err != nil {
			break
		}
		n++
	}
	check("Runs", n, last)
	var biggest *dataset.RunData
	for _, r := range d.Runs {
		if biggest == nil || len(r.Metrics) > len(biggest.Metrics) {
			biggest = r
		}
	}
	if len(biggest.Metrics) == 0 {
		return
	}
	n, last = 0, nil
	for _, err := range src.Metrics(ctx, biggest.Run.Origin) {
		if last = err; err != nil {
			break
		}
		n++
	}
	check("Metrics", n, last)
}

func testConcurrent(t *testing.T, opt Opt) {
	src := open(t, opt)
	want := readAll(t, src)
	var wg sync.WaitGroup
	errs := make(chan error, len(want.Runs))
	for _, r := range want.Runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := dataset.ReadRun(context.Background(), src, r.Run)
			if err != nil {
				errs <- err
				return
			}
			if !reflect.DeepEqual(order(&dataset.Dataset{Runs: []*dataset.RunData{got}}), order(&dataset.Dataset{Runs: []*dataset.RunData{r}})) {
				errs <- fmt.Errorf("run %s reads differently when read concurrently", r.Run.Origin)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testCloseTwice(t *testing.T, opt Opt) {
	src := opt.Open(t)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// origins lists every experiment and run origin and run parent of d.
func origins(d *dataset.Dataset) map[schema.Ref]string {
	out := map[schema.Ref]string{}
	for _, e := range d.Experiments {
		out[e.Origin] = "experiment " + e.Name
	}
	for _, r := range d.Runs {
		out[r.Run.Origin] = "run " + r.Run.Name
	}
	return out
}

func testOriginsNameTheInstance(t *testing.T, opt Opt) {
	if opt.OpenOther == nil {
		t.Fatal("Opt.OpenOther is nil: give the same data on another instance, or say in Skip why the adapter cannot")
	}
	a := readAll(t, open(t, opt))
	other := opt.OpenOther(t)
	t.Cleanup(func() { other.Close() })
	b := readAll(t, other)
	if len(a.Experiments) != len(b.Experiments) || len(a.Runs) != len(b.Runs) {
		t.Fatalf("the other instance holds other data: %s vs %s", a.Describe(), b.Describe())
	}
	inA := origins(a)
	for ref, what := range origins(b) {
		if was, ok := inA[ref]; ok {
			t.Errorf("%s on the other instance has the origin %s of %s on the first: origins do not name the instance", what, ref, was)
		}
	}
	for _, r := range b.Runs {
		if p := r.Run.Parent; !p.IsZero() {
			if _, ok := inA[p]; ok {
				t.Errorf("run %s on the other instance names its parent %s by the first instance's origin", r.Run.Origin, p)
			}
		}
	}
}

// testFormerOrigins: a source that names former origins (origins earlier
// runferry versions gave) never names the origin itself, and names
// origins of its own system.
func testFormerOrigins(t *testing.T, opt Opt) {
	src := open(t, opt)
	fo, ok := src.(sources.FormerOriginer)
	if !ok {
		t.Skip("the source's origins never changed (it does not implement sources.FormerOriginer)")
	}
	d := readAll(t, src)
	for ref := range origins(d) {
		for _, f := range fo.FormerOrigins(ref) {
			if f == ref || f.System != ref.System || f.ID == "" {
				t.Errorf("FormerOrigins(%s) names %s", ref, f)
			}
		}
	}
}
