package mlflow_test

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	pqsrc "github.com/runferry/runferry/sources/parquetdir"
	"github.com/runferry/runferry/sources/wandbdir"
)

// viewRun is what MLflow's UI reads of a run through the REST API: its
// tags, and per metric key the (step, value) history it charts.
type viewRun struct {
	Tags    map[string]string
	History map[string][][2]float64
}

// readView reads the one run of experiment name as MLflow's UI does.
func readView(t *testing.T, api *mlflowapi.Client, name string) viewRun {
	t.Helper()
	ctx := context.Background()
	exp, err := api.GetExperimentByName(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var runs []mlflowapi.Run
	for r, err := range api.SearchRuns(ctx, []string{exp.ExperimentID}, "", mlflowapi.ViewActive) {
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if len(runs) != 1 {
		t.Fatalf("experiment %s holds %d runs, want 1", name, len(runs))
	}
	r, err := api.GetRun(ctx, runs[0].Info.RunID)
	if err != nil {
		t.Fatal(err)
	}
	v := viewRun{Tags: map[string]string{}, History: map[string][][2]float64{}}
	for _, tg := range r.Data.Tags {
		if !strings.HasPrefix(tg.Key, "runferry.") && !strings.HasPrefix(tg.Key, "mlflow.") {
			v.Tags[tg.Key] = tg.Value
		}
	}
	for _, m := range r.Data.Metrics {
		var h [][2]float64
		for page, err := range api.MetricHistory(ctx, r.Info.RunID, m.Key) {
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range page {
				h = append(h, [2]float64{float64(p.Step), float64(p.Value)})
			}
		}
		slices.SortFunc(h, func(a, b [2]float64) int {
			if a[0] != b[0] {
				return int(a[0] - b[0])
			}
			return 0
		})
		v.History[m.Key] = h
	}
	return v
}

// wandbViewRun makes testdata/wandb_view.py's run with the real wandb SDK
// (offline) and opens it as a source. Its wandb-summary.json, if any, is
// emptied: the summary comes from the .wandb file's summary records.
func wandbViewRun(t *testing.T) (string, func() sources.Source) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(testenv.Python(t), "testdata/wandb_view.py", dir)
	cmd.Env = append(os.Environ(), "HOME="+dir, "WANDB_CONFIG_DIR="+dir, "WANDB_CACHE_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("wandb_view.py: %v\n%s", err, tail(string(out), 30))
	}
	summaries, _ := filepath.Glob(filepath.Join(dir, "wandb", "*", "files", "wandb-summary.json"))
	for _, s := range summaries {
		if err := os.WriteFile(s, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	open := func() sources.Source {
		loc, err := location.Parse("wandb:"+dir, func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := wandbdir.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	return dir, open
}

// TestWandbView copies a W&B run using define_metric and summary-only
// values into MLflow and reads back what MLflow's UI shows: train/* plotted
// against train/global_step, val/* (whose step metric is fractional) at
// W&B's _step with the definitions in one wandb.step_metric tag, and the
// summary values history does not end with as one point at the last step
// (strings as wandb.summary.* tags). check against the W&B run passes, and
// so does the round trip MLflow -> Parquet -> MLflow, which shows the same.
func TestWandbView(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	_, wandbSrc := wandbViewRun(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}

	dst, read, prefix := pair(t, srv.URL)
	rep, err := transfer.Copy(ctx, wandbSrc(), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 1 {
		t.Fatalf("W&B to MLflow: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	got := readView(t, api, prefix+"view-entity/view-project")
	want := viewRun{
		Tags: map[string]string{
			"wandb.step_metric":        `{"train/*":"train/global_step","val/*":"epoch"}`,
			"wandb.summary.best_model": "ckpt-2",
		},
		History: map[string][][2]float64{
			"train/global_step": {{0, 30}, {1, 60}, {2, 90}, {3, 120}},
			"train/loss":        {{30, 1}, {60, 0.5}, {90, 0.25}, {120, 0.125}},
			"train/best_loss":   {{120, 0.0625}},                          // summary-only, at the end of its x axis
			"loss":              {{0, 0.9}, {1, 0.5}, {2, 0.7}, {3, 0.5}}, // + the summary's best
			"eval/acc":          {{0, 0.5}, {2, 0.8}},                     // summary = last: no point
			"epoch":             {{1, 0.5}, {3, 1.5}},
			"val/acc":           {{1, 0.25}, {3, 0.75}}, // fractional epoch: W&B's _step
			"train_runtime":     {{3, 12.5}},
			"total_flos":        {{3, 1e15}},
			"best_epoch":        {{3, 2}},
			"converged":         {{3, 1}},
			"final/acc":         {{3, 0.875}},
		},
	}
	// The W&B source's own tags (wandb.run_id, wandb.state, ...) are
	// another matter; the mangled wandb.step_metric.__xxxxxxxx are gone.
	for k := range got.Tags {
		if strings.HasPrefix(k, "wandb.step_metric.") {
			t.Errorf("tag %s is still written", k)
		}
		if _, ok := want.Tags[k]; !ok && strings.HasPrefix(k, "wandb.") {
			delete(got.Tags, k)
		}
	}
	for k := range want.Tags {
		if _, ok := got.Tags[k]; !ok {
			t.Errorf("tag %s missing", k)
		}
	}
	for k := range got.Tags {
		if !strings.HasPrefix(k, "wandb.") {
			delete(got.Tags, k) // mlflow.*, runferry.*: not this test's
		}
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.MarshalIndent(got, "", " ")
		wb, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("MLflow shows\n%s\nwant\n%s", gb, wb)
	}
	if res, err := check.Run(ctx, wandbSrc(), read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow: %v %v", err, res.Differences)
	}

	// MLflow -> Parquet: the archive holds W&B's keys and steps.
	dir := filepath.Join(t.TempDir(), "archive")
	pq, err := parquetdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(ctx, read(), pq, transfer.Options{}); err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 1 {
		t.Fatalf("MLflow to Parquet: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	if err := pq.Close(); err != nil {
		t.Fatal(err)
	}
	openArchive := func() sources.Source {
		s, err := pqsrc.New(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if res, err := check.Run(ctx, wandbSrc(), openArchive(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs Parquet: %v %v", err, res.Differences)
	}
	// Parquet -> MLflow again: the same view, and check against W&B passes.
	dst2, read2, prefix2 := pair(t, srv.URL)
	if rep, err := transfer.Copy(ctx, openArchive(), dst2, transfer.Options{}); err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 1 {
		t.Fatalf("Parquet to MLflow: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	again := readView(t, api, prefix2+"view-entity/view-project")
	for k := range again.Tags {
		if _, ok := want.Tags[k]; !ok {
			delete(again.Tags, k)
		}
	}
	if !reflect.DeepEqual(again, want) {
		t.Errorf("after W&B -> MLflow -> Parquet -> MLflow, MLflow shows %+v, want %+v", again, want)
	}
	if res, err := check.Run(ctx, wandbSrc(), read2(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow after the round trip: %v %v", err, res.Differences)
	}
}

// TestViewEdgeCases copies a run whose define_metric step metrics cannot
// all be an x axis: a step metric logged after its metric in the stream
// (rebased, with ±Inf fixups at the new steps and two points at one step),
// one that decreases, one that repeats a value at two of its metric's
// steps, and one without a value at a metric's step (all three keep their
// steps); summary values differing from history, summary-only ones (+Inf;
// one with a step metric) and one of a rebased metric (both at the step
// metric's last value). MLflow shows what the rules say
// and the source reads back exactly the run given.
func TestViewEdgeCases(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "exp-view"}, Name: "view-edges"}
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	run := schema.Run{Origin: schema.Ref{System: "memory", ID: "run-view"}, Experiment: exp.Origin, Name: "edges",
		Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Hour),
		Tags: []schema.Tag{
			{Key: "wandb.step_metric.acc", Value: "zz_axis"}, {Key: "wandb.step_metric.best/*", Value: "zz_axis"},
			{Key: "wandb.step_metric.dec", Value: "down"},
			{Key: "wandb.step_metric.dup", Value: "zz_axis"}, {Key: "wandb.step_metric.gap", Value: "zz_axis"},
			{Key: "wandb.step_metric.rep", Value: "flat"},
		},
		Summary: json.RawMessage(`{"_step":9,"acc":7,"best":{"acc":0.9},"dec":0.5,"inf":"Infinity","rep":2}`),
	}
	ms := func(s int64) int64 { return t0.UnixMilli() + s*1000 }
	p := func(k string, v float64, step int64) schema.Metric {
		return schema.Metric{Key: k, Value: v, Step: step, Time: ms(step)}
	}
	inf := math.Inf(1)
	metrics := []schema.Metric{ // key by key, as an archive streams them: acc before its axis
		p("acc", 0.5, 0), p("acc", inf, 1), p("acc", 0.75, 2),
		p("dec", 1, 0), p("dec", 2, 1),
		p("down", 5, 0), p("down", 3, 1),
		p("dup", 1, 1), {Key: "dup", Value: 2, Step: 1, Time: ms(1) + 1},
		p("flat", 1, 0), p("flat", 1, 1), p("flat", 2, 2),
		p("gap", 4, 5),
		p("rep", 1, 0), p("rep", 2, 1),
		p("zz_axis", 10, 0), p("zz_axis", 20, 1), p("zz_axis", 30, 2),
	}
	run.Canonicalize()
	d := &dataset.Dataset{Experiments: []schema.Experiment{exp}, Runs: []*dataset.RunData{{Run: run, Metrics: metrics}}}
	dst, read, prefix := pair(t, srv.URL)
	if rep, err := transfer.Copy(ctx, memsrc.New(d), dst, transfer.Options{}); err != nil || rep.Totals.Committed != 1 {
		t.Fatalf("copy: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got := readView(t, api, prefix+"view-edges")
	want := map[string][][2]float64{
		"acc":      {{10, 0.5}, {20, math.MaxFloat64}, {30, 0.75}, {30, 7}}, // summary at the axis' end
		"best/acc": {{30, 0.9}},                                             // summary-only, with an axis
		"dec":      {{0, 1}, {1, 2}, {9, 0.5}},
		"down":     {{0, 5}, {1, 3}},
		"dup":      {{20, 1}, {20, 2}},
		"flat":     {{0, 1}, {1, 1}, {2, 2}},
		"gap":      {{5, 4}},
		"inf":      {{9, math.MaxFloat64}},
		"rep":      {{0, 1}, {1, 2}},
		"zz_axis":  {{0, 10}, {1, 20}, {2, 30}},
	}
	for k, h := range got.History {
		slices.SortStableFunc(h, func(a, b [2]float64) int { return cmp.Or(cmp.Compare(a[0], b[0]), cmp.Compare(a[1], b[1])) })
		got.History[k] = h
	}
	if !reflect.DeepEqual(got.History, want) {
		t.Errorf("MLflow shows %v\nwant %v", got.History, want)
	}
	if v := got.Tags["wandb.step_metric"]; v != `{"acc":"zz_axis","best/*":"zz_axis","dec":"down","dup":"zz_axis","gap":"zz_axis","rep":"flat"}` {
		t.Errorf("wandb.step_metric = %q", v)
	}
	expectSame(t, d, read())
}

// TestWandbViewSample copies a real Hugging Face Trainer run (W&B SDK
// 0.21: define_metric("*", step_metric="train/global_step"), expanded by
// the SDK into one definition per metric; evaluated three times at global
// step 14) into MLflow: the definitions show as one short tag, the metrics
// logged at one global step in several rows keep W&B's _step (their x
// would not be one to one), the summary-only train_* values are points at
// the last step, and check passes.
func TestWandbViewSample(t *testing.T) {
	dir := testenv.Samples(t, "wandb/NiyonshutiDavid__uruti_MLOP")
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	open := func() sources.Source {
		loc, err := location.Parse("wandb:"+dir+"?crashed-after=1ns", func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := wandbdir.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	dst, read, prefix := pair(t, srv.URL)
	if rep, err := transfer.Copy(ctx, open(), dst, transfer.Options{}); err != nil || rep.Totals.Committed != 1 {
		t.Fatalf("copy: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got := readView(t, api, prefix+"huggingface")
	if v := got.Tags["wandb.step_metric"]; v != `{"*":"train/global_step"}` {
		t.Errorf("wandb.step_metric = %q", v)
	}
	for k := range got.Tags {
		if strings.HasPrefix(k, "wandb.step_metric.") {
			t.Errorf("tag %s is still written", k)
		}
	}
	for key, want := range map[string][][2]float64{
		"train/global_step": {{0, 14}, {1, 14}, {2, 14}, {3, 14}, {4, 14}, {5, 14}},
		"test/f1":           {{1, 0.8608257052120306}, {3, 0.8608257052120306}, {5, 0.8608257052120306}},
		"train_runtime":     {{5, 19.2492}},
		"total_flos":        {{5, 5.042997931008e+12}},
	} {
		if h := got.History[key]; !reflect.DeepEqual(h, want) {
			t.Errorf("%s: MLflow shows %v, want %v", key, h, want)
		}
	}
	if res, err := check.Run(ctx, open(), read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow: %v %v", err, res.Differences)
	}
}
