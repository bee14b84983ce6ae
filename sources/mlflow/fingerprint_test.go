package mlflow_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/mlflow"
)

// BenchmarkFingerprint measures what change detection costs per run of a
// real MLflow server: listing the runs (runs/search, which Fingerprint's
// header digest comes from) and one artifacts/list walk per run (each run
// has three files in two directories). Reported as ms/run.
func BenchmarkFingerprint(b *testing.B) {
	srv := testenv.SharedMLflow(b)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		b.Fatal(err)
	}
	prefix := fmt.Sprintf("fpbench-%d/", testenv.FreePort(b))
	expID, err := api.CreateExperiment(ctx, prefix+"exp", nil)
	if err != nil {
		b.Fatal(err)
	}
	const runs = 50
	for i := range runs {
		r, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, StartTime: int64(1_700_000_000_000 + i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := api.LogBatch(ctx, mlflowapi.LogBatch{RunID: r.Info.RunID,
			Metrics: []mlflowapi.Metric{{Key: "loss", Value: 1, Step: 1, Timestamp: 1}},
			Params:  []mlflowapi.Param{{Key: "lr", Value: "0.1"}}}); err != nil {
			b.Fatal(err)
		}
		for _, p := range []string{"a.txt", "dir/b.txt", "dir/c.txt"} {
			if err := api.UploadArtifact(ctx, r.Info.ArtifactURI, p, strings.NewReader("x"), 1); err != nil {
				b.Fatal(err)
			}
		}
	}
	src, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		n := 0
		for e, err := range src.Experiments(ctx) {
			if err != nil {
				b.Fatal(err)
			}
			for r, err := range src.Runs(ctx, e.Origin) {
				if err != nil {
					b.Fatal(err)
				}
				if fp, err := src.Fingerprint(ctx, r); err != nil || fp == "" {
					b.Fatalf("fingerprint %q: %v", fp, err)
				}
				n++
			}
		}
		if n != runs {
			b.Fatalf("fingerprinted %d runs, want %d", n, runs)
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(b.N*runs), "ms/run")
}

// TestChangedAt checks the change time sync --lookback judges an MLflow
// run by: the latest of its start, its end and each metric key's latest
// timestamp, as runs/search tells them, on a real server.
func TestChangedAt(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("changedat-%d/", testenv.FreePort(t))
	expID, err := api.CreateExperiment(ctx, prefix+"exp", nil)
	if err != nil {
		t.Fatal(err)
	}
	const start = int64(1_700_000_000_000)
	want := map[string]int64{}
	for name, c := range map[string]struct{ end, metric int64 }{
		"ended-last":   {end: start + 5000, metric: start + 2000},
		"metric-last":  {end: start + 3000, metric: start + 9000},
		"started-only": {},
	} {
		r, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: name, StartTime: start})
		if err != nil {
			t.Fatal(err)
		}
		want[name] = max(start, c.end, c.metric)
		if c.metric > 0 {
			if err := api.LogBatch(ctx, mlflowapi.LogBatch{RunID: r.Info.RunID, Metrics: []mlflowapi.Metric{
				{Key: "loss", Value: 1, Step: 1, Timestamp: c.metric - 1000}, {Key: "loss", Value: 1, Step: 2, Timestamp: c.metric},
				{Key: "acc", Value: 1, Step: 2, Timestamp: c.metric - 500}}}); err != nil {
				t.Fatal(err)
			}
		}
		if c.end > 0 {
			end := c.end
			if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: r.Info.RunID, Status: "FINISHED", EndTime: &end}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]int64{}
	prefixRuns(t, srv.URL, prefix, func(src *mlflow.Source, r schema.Run) {
		at, ok := src.ChangedAt(ctx, r)
		if !ok {
			t.Errorf("%s: no change time", r.Name)
		}
		got[r.Name] = at.UnixMilli()
	})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("change times %v, want %v", got, want)
	}
}

// TestFingerprintSeesEachSignal: the fingerprint of a run of a real
// MLflow server, taken by a fresh source each time as the next sync's
// process would, is the same while nothing changed, a RUNNING run's
// included (so an unchanged live run is not copied again every night), and
// changes for that run alone when the run ends (status and end time), a
// param is added, or a tag is set.
func TestFingerprintSeesEachSignal(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("fpsignal-%d/", testenv.FreePort(t))
	expID, err := api.CreateExperiment(ctx, prefix+"exp", nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, name := range []string{"ends", "param", "tag", "still"} {
		r, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: name, StartTime: 1_700_000_000_000})
		if err != nil {
			t.Fatal(err)
		}
		if err := api.LogBatch(ctx, mlflowapi.LogBatch{RunID: r.Info.RunID,
			Metrics: []mlflowapi.Metric{{Key: "loss", Value: 1, Step: 1, Timestamp: 1_700_000_001_000}},
			Params:  []mlflowapi.Param{{Key: "lr", Value: "0.1"}}}); err != nil {
			t.Fatal(err)
		}
		ids[name] = r.Info.RunID // left RUNNING
	}
	fingerprints := func() map[string]string {
		t.Helper()
		fps := map[string]string{}
		prefixRuns(t, srv.URL, prefix, func(src *mlflow.Source, r schema.Run) {
			fp, err := src.Fingerprint(ctx, r)
			if err != nil || fp == "" {
				t.Fatalf("%s (%s): fingerprint %q, %v; want one, also while running", r.Name, r.Status, fp, err)
			}
			fps[r.Name] = fp
		})
		return fps
	}
	before := fingerprints()
	if again := fingerprints(); fmt.Sprint(again) != fmt.Sprint(before) || len(before) != len(ids) {
		t.Fatalf("nothing changed, yet the fingerprints moved: %v, then %v", before, again)
	}
	for _, c := range []struct {
		run    string
		change func() error
	}{
		{"ends", func() error {
			end := int64(1_700_000_002_000)
			return api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: ids["ends"], Status: "FINISHED", EndTime: &end})
		}},
		{"param", func() error {
			return api.LogBatch(ctx, mlflowapi.LogBatch{RunID: ids["param"], Params: []mlflowapi.Param{{Key: "layers", Value: "4"}}})
		}},
		{"tag", func() error { return api.SetTag(ctx, ids["tag"], "team", "vision") }},
	} {
		if err := c.change(); err != nil {
			t.Fatal(err)
		}
		after := fingerprints()
		for name, fp := range after {
			if changed := fp != before[name]; changed != (name == c.run) {
				t.Errorf("after changing run %s: run %s's fingerprint changed: %v", c.run, name, changed)
			}
		}
		before = after
	}
}

// prefixRuns opens a fresh source on the server's experiments under
// prefix, as the next sync's process would, and calls each for every run
// it lists.
func prefixRuns(t *testing.T, url, prefix string, each func(*mlflow.Source, schema.Run)) {
	t.Helper()
	ctx := context.Background()
	src, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			each(src, r)
		}
	}
}
