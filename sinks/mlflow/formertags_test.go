package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/mlflow"
)

// post sends one MLflow REST request that runferry's client does not make.
func post(t *testing.T, url, path string, body map[string]string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url+"/api/2.0/mlflow/"+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %v: HTTP %d", path, body, resp.StatusCode)
	}
}

// formerName is the name versions before 11 gave a tag runferry writes
// ("" for a tag they did not write).
func formerName(key string) string {
	if f := mlflowconv.FormerTag(key); f != "" {
		return f
	}
	switch key {
	case mlflowconv.TagGroup:
		return mlflowconv.FormerTagGroup
	case mlflowconv.TagJobType:
		return mlflowconv.FormerTagJobType
	case mlflowconv.TagHost:
		return mlflowconv.FormerTagHost
	case mlflowconv.TagLabels:
		return mlflowconv.FormerTagLabels
	}
	if strings.HasPrefix(key, mlflowconv.TagLabelPrefix) {
		return ""
	}
	return key
}

// TestFormerTagNamesStillFound: runs and experiments a version before 11
// wrote (bookkeeping under runferry., W&B's fields as runferry.group,
// runferry.labels, ...) are read back exactly, and a re-run finds them
// complete and writes nothing again.
func TestFormerTagNamesStillFound(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	src := openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures")
	dst, read, prefix := pair(t, srv.URL)
	rep, err := transfer.Copy(ctx, src, dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed == 0 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// Turn the copy into what a version before 11 wrote.
	nRuns := 0
	for e, err := range api.SearchExperiments(ctx, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Name, prefix) {
			continue
		}
		for _, tag := range e.Tags {
			if f := formerName(tag.Key); f != tag.Key {
				if err := api.SetExperimentTag(ctx, e.ExperimentID, f, tag.Value); err != nil {
					t.Fatal(err)
				}
				post(t, srv.URL, "experiments/delete-experiment-tag", map[string]string{"experiment_id": e.ExperimentID, "key": tag.Key})
			}
		}
		for r, err := range api.SearchRuns(ctx, []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			nRuns++
			deleted := r.Info.LifecycleStage == mlflowapi.StageDeleted
			if deleted {
				if err := api.RestoreRun(ctx, r.Info.RunID); err != nil {
					t.Fatal(err)
				}
			}
			for _, tag := range r.Data.Tags {
				f := formerName(tag.Key)
				if f == tag.Key {
					continue
				}
				if f != "" {
					if err := api.SetTag(ctx, r.Info.RunID, f, tag.Value); err != nil {
						t.Fatal(err)
					}
				}
				post(t, srv.URL, "runs/delete-tag", map[string]string{"run_id": r.Info.RunID, "key": tag.Key})
			}
			if deleted {
				if err := api.DeleteRun(ctx, r.Info.RunID); err != nil {
					t.Fatal(err)
				}
			}
			got, err := api.GetRun(ctx, r.Info.RunID)
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range got.Data.Tags {
				if strings.HasPrefix(tag.Key, "mlflow.runferry.") || strings.HasPrefix(tag.Key, "wandb.tag") || tag.Key == mlflowconv.TagGroup {
					t.Fatalf("run %s still has %s", r.Info.RunName, tag.Key)
				}
			}
		}
	}
	if nRuns == 0 {
		t.Fatal("no runs")
	}
	if res, err := check.Run(ctx, src, read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs a copy with the former tag names: %v\n%v", err, res.Differences)
	}
	again, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = transfer.Copy(ctx, src, again, transfer.Options{})
	if err != nil || rep.Totals.Committed != 0 || rep.Totals.Failed != 0 {
		t.Fatalf("re-run over the former copy: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	n := 0
	for e, err := range api.SearchExperiments(ctx, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(e.Name, prefix) {
			for _, err := range api.SearchRuns(ctx, []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
		}
	}
	if n != nRuns {
		t.Errorf("%d runs after the re-run, %d before", n, nRuns)
	}

	// Writing into the experiment again moves its bookkeeping out of sight.
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		id, err := again.PutExperiment(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := api.GetExperiment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		tags := tagMap(got.Tags)
		for _, k := range visible(tags) {
			if strings.HasPrefix(k, "runferry.") && k != mlflowconv.TagOrigin {
				t.Errorf("experiment %s still shows %s", got.Name, k)
			}
		}
		if tags[mlflowconv.TagManaged] != "true" || tags[mlflowconv.TagPrefix] != prefix {
			t.Errorf("experiment %s: tags %v", got.Name, tags)
		}
	}
	if res, err := check.Run(ctx, src, read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check after the experiment's tags moved: %v\n%v", err, res.Differences)
	}
}
