package mlflowconv

import (
	"encoding/json"
	"math"
	"reflect"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

func TestStepAxes(t *testing.T) {
	r := schema.Run{Tags: []schema.Tag{
		{Key: "other", Value: "x"},
		{Key: "wandb.step_metric.*", Value: "step"},
		{Key: "wandb.step_metric.train/loss", Value: "global"},
		{Key: "wandb.step_metric.val/*", Value: "epoch"},
		{Key: "wandb.step_metric.val/*/acc", Value: "round"},
		{Key: "wandb.step_metric.val/a/acc", Value: "round"}, // expanded from the glob
	}}
	a := StepAxesOf(r)
	for key, want := range map[string]string{
		"train/loss":     "global", // exact wins
		"val/x/acc":      "round",  // longest glob
		"val/acc":        "epoch",
		"lr":             "step",
		"step":           "", // never its own axis
		"system/cpu":     "", // system metrics have none
		"val/deep/x/acc": "round",
	} {
		if got := a.Axis(key); got != want {
			t.Errorf("Axis(%q) = %q, want %q", key, got, want)
		}
	}
	if !a.IsAxis("epoch") || a.IsAxis("lr") {
		t.Error("IsAxis")
	}
	tag, ok := a.Tag()
	want := mlflowapi.Tag{Key: TagStepMetric, Value: `{"*":"step","train/loss":"global","val/*":"epoch","val/*/acc":"round"}`}
	if !ok || tag != want {
		t.Errorf("Tag() = %v, want %v", tag, want)
	}
	if _, ok := StepAxesOf(schema.Run{}).Tag(); ok {
		t.Error("a run without definitions has a step metric tag")
	}
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{{"a*", "a", true}, {"a*", "ba", false}, {"*b", "ab", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "acb", false}, {"ab", "ab", true}, {"ab", "abc", false}, {"a*a", "a", false}} {
		if got := globMatch(c.pattern, c.s); got != c.want {
			t.Errorf("globMatch(%q, %q) = %v", c.pattern, c.s, got)
		}
	}
}

// TestRunEntitiesView: define_metric tags are folded into one readable tag
// (no mangled wandb.step_metric.__xxxxxxxx), string summary values become
// tags, and a user tag of the same key wins.
func TestRunEntitiesView(t *testing.T) {
	r := schema.Run{
		Tags: []schema.Tag{
			{Key: "wandb.step_metric.*", Value: "step"},
			{Key: "wandb.step_metric.val/acc", Value: "epoch"},
			{Key: "wandb.summary.taken", Value: "by the user"},
		},
		Summary: json.RawMessage(`{"best_model":"ckpt-2","taken":"by the summary","n":1,"odd key+":"v","_wandb":{"runtime":3},"nested":{"s":"deep"}}`),
	}
	cov := &Coverage{MetricKeys: map[string]string{}, ParamKeys: map[string]string{}, TagKeys: map[string]string{}}
	_, tags, err := RunEntities(r, cov)
	if err != nil {
		t.Fatal(err)
	}
	odd, _ := MapKey("wandb.summary.odd key+")
	want := []mlflowapi.Tag{
		{Key: "wandb.summary.taken", Value: "by the user"},
		{Key: TagStepMetric, Value: `{"*":"step","val/acc":"epoch"}`},
		{Key: "wandb.summary.best_model", Value: "ckpt-2"},
		{Key: "wandb.summary.nested/s", Value: "deep"},
		{Key: odd, Value: "v"},
	}
	if !reflect.DeepEqual(tags, want) {
		t.Errorf("tags %v\nwant %v", tags, want)
	}
	if len(cov.TagKeys) != 0 {
		t.Errorf("tag keys mapped: %v", cov.TagKeys)
	}
}

func TestSummaryValues(t *testing.T) {
	nums, strs, step, ok := SummaryValues(json.RawMessage(`{"_step":15,"_runtime":3.5,"_wandb":{"runtime":3},
		"a":1.5,"b":"text","c":true,"d":{"e":2,"f":"g"},"h":"NaN","i":"-Infinity","j":[1],"k":null,
		"img":{"_type":"image-file","path":"x.png"},"big":1e999}`))
	wantNums := []SummaryValue{{"a", 1.5}, {"big", math.Inf(1)}, {"c", 1}, {"d/e", 2}, {"h", math.NaN()}, {"i", math.Inf(-1)}}
	wantStrs := []schema.Tag{{Key: "b", Value: "text"}, {Key: "d/f", Value: "g"}}
	if len(nums) != len(wantNums) {
		t.Fatalf("nums %v, want %v", nums, wantNums)
	}
	for i := range nums {
		w := wantNums[i]
		if nums[i].Key != w.Key || !(nums[i].Value == w.Value || math.IsNaN(w.Value) && math.IsNaN(nums[i].Value)) {
			t.Errorf("nums[%d] = %v, want %v", i, nums[i], w)
		}
	}
	if !reflect.DeepEqual(strs, wantStrs) || step != 15 || !ok {
		t.Errorf("strs %v step %d %v; want %v 15 true", strs, step, ok, wantStrs)
	}
	if n, s, _, ok := SummaryValues(nil); n != nil || s != nil || ok {
		t.Error("an absent summary has values")
	}
}

func TestStepMapper(t *testing.T) {
	var m StepMapper
	pairs := [][2]int64{{1, 30}, {1, 30}, {2, 60}, {3, 90}, {4, 120}, {7, 121}, {8, 500}, {10, 900}}
	for _, p := range pairs {
		if !m.Add(p[0], p[1]) {
			t.Fatalf("Add%v refused", p)
		}
	}
	want := []StepRun{{30, 1, 30, 1, 4}, {121, 7, 379, 1, 2}, {900, 10, 0, 0, 1}}
	if !reflect.DeepEqual(m.Runs, want) {
		t.Errorf("runs %v, want %v", m.Runs, want)
	}
	rb := Rebase{Runs: m.Runs}
	for _, p := range pairs {
		if got, ok := rb.Source(p[1]); !ok || got != p[0] {
			t.Errorf("Source(%d) = %d %v, want %d", p[1], got, ok, p[0])
		}
	}
	for _, s := range []int64{0, 29, 31, 150, 122, 501, 901} {
		if got, ok := rb.Source(s); ok {
			t.Errorf("Source(%d) = %d, want none", s, got)
		}
	}
	for _, bad := range [][2][2]int64{
		{{1, 30}, {2, 30}}, // two steps, one x: ambiguous
		{{1, 30}, {1, 31}}, // one step, two x
		{{2, 30}, {1, 40}}, // steps going back
		{{1, 30}, {2, 20}}, // x going back
	} {
		var m StepMapper
		if !m.Add(bad[0][0], bad[0][1]) || m.Add(bad[1][0], bad[1][1]) || m.Add(9, 900) {
			t.Errorf("pairs %v accepted", bad)
		}
	}
}

func TestSummaryPointIs(t *testing.T) {
	p := SummaryPoint{Key: "k", Step: 3, Time: 10, Value: mlflowapi.Float(math.NaN())}
	if !p.Is(schema.Metric{Key: "k", Step: 3, Time: 10, Value: math.NaN()}) || p.Is(schema.Metric{Key: "k", Step: 3, Time: 10, Value: 1}) ||
		p.Is(schema.Metric{Key: "k", Step: 2, Time: 10, Value: math.NaN()}) || p.Is(schema.Metric{Key: "j", Step: 3, Time: 10, Value: math.NaN()}) {
		t.Error("Is")
	}
}
