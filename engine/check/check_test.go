package check_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

func TestCheckDetectsEachSingleChange(t *testing.T) {
	base := dataset.Canonical()
	base.Experiments = append(base.Experiments, schema.Experiment{ // one without runs
		Origin: schema.Ref{System: "memory", ID: "exp-empty"}, Name: "empty", CreatedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)})
	ctx := context.Background()
	res, err := check.Run(ctx, memsrc.New(base), memsrc.New(base.Clone()), check.Options{})
	if err != nil || len(res.Differences) != 0 || res.Matching != len(base.Runs) || res.Points == 0 {
		t.Fatalf("identical datasets: err %v, %+v", err, res)
	}
	changes := []struct {
		name   string
		change func(d *dataset.Dataset)
		want   string
	}{
		{"changed point", func(d *dataset.Dataset) { d.Runs[0].Metrics[100].Value = 42 }, "metric val/acc"},
		{"changed step", func(d *dataset.Dataset) { d.Runs[0].Metrics[7].Step++ }, "metric loss"},
		{"changed time", func(d *dataset.Dataset) { d.Runs[3].Metrics[0].Time++ }, "metric k00"},
		{"missing point", func(d *dataset.Dataset) { d.Runs[1].Metrics = d.Runs[1].Metrics[1:] }, "metric inf"},
		{"extra point", func(d *dataset.Dataset) {
			d.Runs[1].Metrics = append(d.Runs[1].Metrics, schema.Metric{Key: "nan", Value: 1, Step: 9})
		}, "metric nan"},
		{"duplicated point", func(d *dataset.Dataset) {
			d.Runs[4].Metrics = append(d.Runs[4].Metrics, d.Runs[4].Metrics[0])
		}, "metric x"},
		{"extra key", func(d *dataset.Dataset) {
			d.Runs[2].Metrics = append(d.Runs[2].Metrics, schema.Metric{Key: "new", Value: 1})
		}, "metric new unexpected"},
		{"NaN became 0", func(d *dataset.Dataset) { d.Runs[1].Metrics[2].Value = 0 }, "metric nan"},
		{"changed param", func(d *dataset.Dataset) { d.Runs[0].Run.Params[0].Value = "0.01" }, "param lr"},
		{"missing param", func(d *dataset.Dataset) { d.Runs[0].Run.Params = d.Runs[0].Run.Params[1:] }, "param lr missing"},
		{"extra tag", func(d *dataset.Dataset) {
			d.Runs[2].Run.Tags = append(d.Runs[2].Run.Tags, schema.Tag{Key: "x", Value: "y"})
		}, "tag x unexpected"},
		{"changed tag", func(d *dataset.Dataset) { d.Runs[4].Run.Tags[0].Value = "other" }, "tag note"},
		{"changed artifact", func(d *dataset.Dataset) { d.Runs[0].Files[0].Content = []byte("lr: 0.002\n") }, "file config.yaml"},
		{"missing artifact", func(d *dataset.Dataset) { d.Runs[0].Files = d.Runs[0].Files[:3] }, "file model/weights.bin missing"},
		{"extra artifact", func(d *dataset.Dataset) {
			d.Runs[2].Files = append(d.Runs[2].Files, dataset.File{Path: "x.txt", Content: []byte("x")})
		}, "file x.txt unexpected"},
		{"missing run", func(d *dataset.Dataset) { d.Runs = d.Runs[1:] }, "missing run"},
		{"status", func(d *dataset.Dataset) { d.Runs[3].Run.Status = schema.StatusFinished }, "field Status"},
		{"config", func(d *dataset.Dataset) { d.Runs[0].Run.Config = []byte(`{"batch":64}`) }, "field Config"},
		{"log line", func(d *dataset.Dataset) { d.Runs[0].Logs[2].Line = "x" }, "console output: source"},
		{"log line stream", func(d *dataset.Dataset) { d.Runs[0].Logs[0].Stream = schema.Stderr }, "console output: source"},
		{"log lines swapped", func(d *dataset.Dataset) {
			l := d.Runs[0].Logs
			l[0], l[1] = l[1], l[0]
		}, "console output: source"},
		{"log line time", func(d *dataset.Dataset) { d.Runs[0].Logs[2].Time += 1000 }, check.ConsoleTimes + ": source"},
		{"rich value", func(d *dataset.Dataset) { d.Runs[0].RichValues = nil }, "rich values"},
		{"experiment name", func(d *dataset.Dataset) { d.Experiments[0].Name = "renamed" }, "experiment name"},
		{"experiment description", func(d *dataset.Dataset) { d.Experiments[0].Description = "" }, "experiment description"},
		{"experiment tag", func(d *dataset.Dataset) { d.Experiments[0].Tags[0].Value = "x" }, "experiment tag team"},
		{"experiment creation time", func(d *dataset.Dataset) { d.Experiments[1].CreatedAt = time.Time{} }, "experiment creation time"},
		{"experiment deleted", func(d *dataset.Dataset) { d.Experiments[1].Deleted = true }, "experiment deleted"},
		{"missing experiment without runs", func(d *dataset.Dataset) { d.Experiments = d.Experiments[:2] }, "missing experiment"},
		{"run copied twice", func(d *dataset.Dataset) {
			twin := *d.Runs[2]
			twin.Run.Name = "second copy"
			d.Runs = append(d.Runs, &twin)
		}, "run held more than once in the destination"},
		{"run the source does not have", func(d *dataset.Dataset) {
			extra := *d.Runs[2]
			extra.Run.Origin.ID = "deleted-at-the-source"
			d.Runs = append(d.Runs, &extra)
		}, "memory:deleted-at-the-source: unexpected run in the destination"},
	}
	for _, c := range changes {
		dst := base.Clone()
		c.change(dst)
		res, err := check.Run(ctx, memsrc.New(base), memsrc.New(dst), check.Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(res.Differences) != 1 || !strings.Contains(res.Differences[0].String(), c.want) {
			t.Errorf("%s: differences %v, want exactly one mentioning %q", c.name, res.Differences, c.want)
		}
	}
}

// TestCheckExtraRunsWithinTheSelection: a run the source lacks is flagged
// only where the selection would have compared it.
func TestCheckExtraRunsWithinTheSelection(t *testing.T) {
	base := dataset.Canonical()
	dst := base.Clone()
	extra := *dst.Runs[2]
	extra.Run.Origin.ID = "only-in-destination"
	dst.Runs = append(dst.Runs, &extra)
	ctx := context.Background()
	res, err := check.Run(ctx, memsrc.New(base), memsrc.New(dst), check.Options{Filter: transfer.Filter{RunIDs: []string{base.Runs[0].Run.Origin.ID}}})
	if err != nil || len(res.Differences) != 0 || res.Runs != 1 {
		t.Fatalf("--run selecting one run: err %v, %+v", err, res)
	}
	res, err = check.Run(ctx, memsrc.New(base), memsrc.New(dst), check.Options{Filter: transfer.Filter{RunIDs: []string{"only-in-destination"}}})
	if err != nil || len(res.Differences) != 1 || !strings.Contains(res.Differences[0].What, "unexpected run") {
		t.Fatalf("--run naming the extra run: err %v, %+v", err, res)
	}
}

// gapped is a source with a known gap: it cannot give tag "note".
type gapped struct{ *memsrc.Source }

func (gapped) KnownGaps() []sources.Gap {
	return []sources.Gap{{Name: "no notes", Match: func(what, this, _ string) bool {
		return strings.HasPrefix(what, "tag note ") && this == ""
	}}}
}

// TestKnownGaps: a difference that a known gap of either side explains
// (only where that side lacks the value) is counted apart, naming the gap,
// and its run still matches; the same difference the other way round is a
// difference.
func TestKnownGaps(t *testing.T) {
	ctx := context.Background()
	base := dataset.Canonical()
	lacking := base.Clone()
	var i int
	for i = range lacking.Runs {
		if slices.ContainsFunc(lacking.Runs[i].Run.Tags, func(tg schema.Tag) bool { return tg.Key == "note" }) {
			break
		}
	}
	lacking.Runs[i].Run.Tags = slices.DeleteFunc(slices.Clone(lacking.Runs[i].Run.Tags), func(tg schema.Tag) bool { return tg.Key == "note" })
	for _, c := range []struct {
		name     string
		src, dst sources.Source
		known    bool
	}{
		{"destination lacks it", memsrc.New(base), gapped{memsrc.New(lacking)}, true},
		{"source lacks it", gapped{memsrc.New(lacking)}, memsrc.New(base), true},
		{"the gapped side has it", gapped{memsrc.New(base)}, memsrc.New(lacking), false},
	} {
		res, err := check.Run(ctx, c.src, c.dst, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.known && (len(res.Differences) != 0 || len(res.Known) != 1 || res.Known[0].Gap != "no notes" || res.Matching != len(base.Runs)):
			t.Errorf("%s: %+v", c.name, res)
		case !c.known && (len(res.Differences) != 1 || len(res.Known) != 0 || res.Matching != len(base.Runs)-1):
			t.Errorf("%s: %+v", c.name, res)
		}
	}
}

// untimed is a source whose console lines have no times: a known gap
// explains a line that differs only in its time when this side has none.
type untimed struct{ *memsrc.Source }

func (untimed) KnownGaps() []sources.Gap {
	return []sources.Gap{{Name: "no line times", Match: func(what, this, _ string) bool {
		return what == check.ConsoleTimes && this == ""
	}}}
}

// TestConsoleLinesComparedOneByOne: console lines are compared line by
// line. Lines that differ only in their times are offered to the known
// gaps one by one: those the gap explains are one known difference, a
// line it does not explain (both sides have a time) is a difference,
// both ways round; a line whose text changed is a difference naming it,
// whatever the times.
func TestConsoleLinesComparedOneByOne(t *testing.T) {
	ctx := context.Background()
	base := dataset.Canonical()
	if len(base.Runs[0].Logs) < 3 {
		t.Fatal("the canonical dataset's first run has fewer than 3 console lines")
	}
	noTimes := base.Clone()
	for i := range noTimes.Runs[0].Logs {
		noTimes.Runs[0].Logs[i].Time = 0
	}
	oneShifted := noTimes.Clone()
	oneShifted.Runs[0].Logs[1].Time = base.Runs[0].Logs[1].Time + 1000
	textChanged := noTimes.Clone()
	textChanged.Runs[0].Logs[2].Line += " (changed)"
	n := len(base.Runs[0].Logs)
	for _, c := range []struct {
		name       string
		src, dst   sources.Source
		known      string // the known difference's source side, "" for none
		difference string // the difference, "" for none
	}{
		{"times only, the gapped side has none", memsrc.New(base), untimed{memsrc.New(noTimes)}, fmt.Sprintf("%d of %d lines, first line 1 at ", n, n), ""},
		{"the same, the gapped side the source", untimed{memsrc.New(noTimes)}, memsrc.New(base), fmt.Sprintf("%d of %d lines, first line 1 at no time", n, n), ""},
		{"one line has another time", memsrc.New(base), untimed{memsrc.New(oneShifted)}, fmt.Sprintf("%d of %d lines", n-1, n), check.ConsoleTimes + ": source 1 of "},
		{"the same, the gapped side the source", untimed{memsrc.New(oneShifted)}, memsrc.New(base), fmt.Sprintf("%d of %d lines", n-1, n), check.ConsoleTimes + ": source 1 of "},
		{"a line's text changed", memsrc.New(base), untimed{memsrc.New(textChanged)}, "", "console output: source "},
		{"the same, the gapped side the source", untimed{memsrc.New(textChanged)}, memsrc.New(base), "", "console output: source "},
	} {
		res, err := check.Run(ctx, c.src, c.dst, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		known := ""
		if len(res.Known) == 1 {
			known = res.Known[0].Want
		}
		switch {
		case len(res.Known) > 1 || (c.known == "") != (known == "") || !strings.HasPrefix(known, c.known):
			t.Errorf("%s: known %+v, want one starting %q", c.name, res.Known, c.known)
		case c.difference == "" && len(res.Differences) != 0,
			c.difference != "" && (len(res.Differences) != 1 || !strings.Contains(res.Differences[0].String(), c.difference)):
			t.Errorf("%s: differences %v, want %q", c.name, res.Differences, c.difference)
		}
	}
	if res, _ := check.Run(ctx, memsrc.New(base), untimed{memsrc.New(textChanged)}, check.Options{}); len(res.Differences) == 1 &&
		!strings.Contains(res.Differences[0].Got, fmt.Sprintf("line 3: %s %q", textChanged.Runs[0].Logs[2].Stream, textChanged.Runs[0].Logs[2].Line)) {
		t.Errorf("the difference does not name the changed line: %v", res.Differences[0])
	}
}
