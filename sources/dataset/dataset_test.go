package dataset

import (
	"math"
	"strings"
	"testing"
)

func TestCanonicalIsValid(t *testing.T) {
	d := Canonical()
	for _, e := range d.Experiments {
		if err := e.Validate(); err != nil {
			t.Error(err)
		}
	}
	for _, r := range d.Runs {
		if err := r.Run.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestDiffFindsEachChange(t *testing.T) {
	base := Canonical()
	if diff := Diff(base, base.Clone(), DiffOptions{}); diff != nil {
		t.Fatalf("clone differs: %v", diff)
	}
	changes := map[string]func(d *Dataset){
		"metric value":   func(d *Dataset) { d.Runs[0].Metrics[5].Value += 1e-12 },
		"NaN to Inf":     func(d *Dataset) { d.Runs[1].Metrics[2].Value = math.Inf(1) },
		"missing point":  func(d *Dataset) { d.Runs[0].Metrics = d.Runs[0].Metrics[1:] },
		"extra point":    func(d *Dataset) { d.Runs[3].Metrics = append(d.Runs[3].Metrics, d.Runs[3].Metrics[0]) },
		"param":          func(d *Dataset) { d.Runs[0].Run.Params[0].Value = "0.002" },
		"tag":            func(d *Dataset) { d.Runs[4].Run.Tags = nil },
		"file content":   func(d *Dataset) { d.Runs[0].Files[3].Content[0] = 'x' },
		"missing file":   func(d *Dataset) { d.Runs[0].Files = d.Runs[0].Files[1:] },
		"log line":       func(d *Dataset) { d.Runs[0].Logs[1].Stream = "stdout" },
		"config":         func(d *Dataset) { d.Runs[0].Run.Config = []byte(`{"batch":65}`) },
		"missing run":    func(d *Dataset) { d.Runs = d.Runs[1:] },
		"experiment tag": func(d *Dataset) { d.Experiments[0].Tags = nil },
		"rich value":     func(d *Dataset) { d.Runs[0].RichValues[1].JSON = `"cooldown"` },
		"negative zero":  func(d *Dataset) { d.Runs[1].Metrics[3].Value = 0 },
	}
	for name, change := range changes {
		got := base.Clone()
		change(got)
		if diff := Diff(base, got, DiffOptions{}); len(diff) == 0 {
			t.Errorf("%s: change not detected", name)
		} else if testing.Verbose() {
			t.Logf("%s: %s", name, strings.Join(diff, "; "))
		}
	}
}
