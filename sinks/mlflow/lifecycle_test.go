package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// deletedExperiment is a dataset with a live experiment and a deleted one
// holding four runs (one of them deleted on its own).
func deletedExperiment() *dataset.Dataset {
	t0 := time.Date(2023, 5, 6, 7, 8, 9, 0, time.UTC)
	live := schema.Ref{System: "memory", ID: "exp-live"}
	gone := schema.Ref{System: "memory", ID: "exp-gone"}
	d := &dataset.Dataset{Experiments: []schema.Experiment{
		{Origin: live, Name: "live", CreatedAt: t0},
		{Origin: gone, Name: "gone", Deleted: true, Description: "retired", CreatedAt: t0.Add(-48 * time.Hour),
			Tags: []schema.Tag{{Key: "team", Value: "old"}}},
	}}
	add := func(exp schema.Ref, id string, deleted bool) {
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: id}, Experiment: exp,
			Name: id, Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Minute), Deleted: deleted,
			Params: []schema.Param{{Key: "p", Value: id}}}}
		for step := range int64(50) {
			r.Metrics = append(r.Metrics, schema.Metric{Key: "m", Value: float64(step), Step: step, Time: t0.UnixMilli() + step})
		}
		d.Runs = append(d.Runs, r)
	}
	add(live, "live-1", false)
	for i := range 4 {
		add(gone, fmt.Sprintf("gone-%d", i), i == 2)
	}
	return d
}

// restExperiment reads an experiment straight from MLflow's REST API, as a
// user of the server sees it.
func restExperiment(t *testing.T, base, name string) (stage string, runs map[string]string) {
	t.Helper()
	var out struct {
		Experiment struct {
			ID    string `json:"experiment_id"`
			Stage string `json:"lifecycle_stage"`
		} `json:"experiment"`
	}
	getJSON(t, base+"/api/2.0/mlflow/experiments/get-by-name?experiment_name="+url.QueryEscape(name), &out)
	var search struct {
		Runs []struct {
			Info struct {
				Name  string `json:"run_name"`
				Stage string `json:"lifecycle_stage"`
			} `json:"info"`
		} `json:"runs"`
	}
	body := fmt.Sprintf(`{"experiment_ids":[%q],"run_view_type":"ALL","max_results":1000}`, out.Experiment.ID)
	resp, err := http.Post(base+"/api/2.0/mlflow/runs/search", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&search); err != nil {
		t.Fatal(err)
	}
	runs = map[string]string{}
	for _, r := range search.Runs {
		if _, dup := runs[r.Info.Name]; dup {
			runs[r.Info.Name] += "+dup"
		}
		runs[r.Info.Name] += r.Info.Stage
	}
	return out.Experiment.Stage, runs
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestDeletedExperimentEndsDeleted copies a deleted experiment into MLflow
// with four runs in flight at once: MLflow shows the experiment deleted
// (and so every run of it), the live one active, the source's creation
// time is read back, check passes, and a second copy writes nothing and
// leaves it deleted. A job that stopped while the experiment was restored
// for a run (left active) is converged by the next one.
func TestDeletedExperimentEndsDeleted(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	t.Logf("server up at %s", time.Now().Format(time.TimeOnly))
	want := deletedExperiment()
	sink, read, prefix := pair(t, srv.URL)
	ctx := context.Background()
	rep, err := transfer.Copy(ctx, memsrc.New(want), sink, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 {
		t.Fatalf("copy: %v %+v", err, rep.Runs)
	}
	wantRuns := map[string]string{"gone-0": "deleted", "gone-1": "deleted", "gone-2": "deleted", "gone-3": "deleted"}
	expectStages := func(when string) {
		t.Helper()
		stage, runs := restExperiment(t, srv.URL, prefix+"gone")
		if stage != "deleted" || fmt.Sprint(runs) != fmt.Sprint(wantRuns) {
			t.Fatalf("%s: experiment gone is %q with runs %v, want deleted with %v", when, stage, runs, wantRuns)
		}
		stage, runs = restExperiment(t, srv.URL, prefix+"live")
		if stage != "active" || fmt.Sprint(runs) != "map[live-1:active]" {
			t.Fatalf("%s: experiment live is %q with runs %v", when, stage, runs)
		}
	}
	t.Logf("copied at %s", time.Now().Format(time.TimeOnly))
	expectStages("after the copy")
	expectCheck := func(when string) {
		t.Helper()
		res, err := check.Run(ctx, memsrc.New(want), read(), check.Options{})
		if err != nil || len(res.Differences) > 0 || res.Runs != len(want.Runs) || res.Experiments != 2 {
			t.Fatalf("%s: check: %v %+v", when, err, res)
		}
	}
	expectCheck("after the copy")
	got, err := dataset.Read(ctx, read())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got.Experiments {
		w := want.Experiments[0]
		if e.Name == "gone" {
			w = want.Experiments[1]
		}
		if !e.CreatedAt.Equal(w.CreatedAt) || e.Deleted != w.Deleted || e.Description != w.Description {
			t.Fatalf("experiment read back %+v, want %+v", e, w)
		}
	}

	t.Logf("checked at %s", time.Now().Format(time.TimeOnly))
	again, err := transfer.Copy(ctx, memsrc.New(want), sink, transfer.Options{})
	if err != nil || again.Totals.Committed != 0 || again.Totals.Failed != 0 {
		t.Fatalf("second copy wrote again: %v %+v", err, again.Totals)
	}
	expectStages("after a second copy")

	// A job killed while a run was being written: the experiment is left
	// restored, with a half-written run in it.
	killed, _, _ := pairWithPrefix(t, srv.URL, prefix)
	id, err := killed.PutExperiment(ctx, want.Experiments[1])
	if err != nil {
		t.Fatal(err)
	}
	extra := schema.Run{Origin: schema.Ref{System: "memory", ID: "gone-late"}, Experiment: want.Experiments[1].Origin,
		Name: "gone-late", Status: schema.StatusFinished, Start: time.Unix(1_700_000_000, 0).UTC(), End: time.Unix(1_700_000_100, 0).UTC()}
	if _, err := killed.OpenRun(ctx, id, extra); err != nil {
		t.Fatal(err)
	}
	if stage, _ := restExperiment(t, srv.URL, prefix+"gone"); stage != "active" {
		t.Fatalf("experiment is %q while a run is written into it", stage)
	}
	want.Runs = append(want.Runs, &dataset.RunData{Run: extra})
	final, _, _ := pairWithPrefix(t, srv.URL, prefix)
	rep, err = transfer.Copy(ctx, memsrc.New(want), final, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 1 {
		t.Fatalf("copy after the kill: %v %+v", err, rep.Totals)
	}
	wantRuns["gone-late"] = "deleted" // the half-written copy, continued in place: no duplicate
	expectStages("after the copy that followed a kill")
	expectCheck("after the copy that followed a kill")
}
