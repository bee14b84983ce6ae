package mlflow_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
)

// TestWandbToMLflow copies the W&B run folders made by the real wandb SDK
// into MLflow; `check` finds no difference between the two.
func TestWandbToMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	src := openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures")
	dst, read, prefix := pair(t, srv.URL)
	rep := copyAll(t, src, dst)
	res, err := check.Run(context.Background(), src, read(), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow: %v\n%v", err, res.Differences)
	}
	t.Logf("%d runs, %d points match", res.Runs, res.Points)

	// What a user of MLflow sees is what check compares: a run renamed, a
	// note edited and a param-bearing config value hidden are differences,
	// though runferry/run.json still holds the originals.
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var runID, crashedID string
	for _, r := range rep.Runs {
		if strings.HasSuffix(r.Origin, "/fxa00001") {
			runID = r.DestID
		}
		if strings.HasSuffix(r.Origin, "/fxc00003") {
			crashedID = r.DestID
		}
	}
	if runID == "" || crashedID == "" {
		t.Fatalf("no destination id for fxa00001 or fxc00003 in %+v", rep.Runs)
	}
	// The SIGKILLed run (no exit record, silent past crashed-after) is
	// FAILED in MLflow's UI, not RUNNING with a spinner, and carries W&B's
	// state.
	crashed, err := api.GetRun(ctx, crashedID)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := crashed.Tag("wandb.state"); crashed.Info.Status != "FAILED" || st != "crashed" || crashed.Info.EndTime == nil {
		t.Errorf("crashed run: status %s, wandb.state %q, end time %v; want FAILED, crashed, set", crashed.Info.Status, st, crashed.Info.EndTime)
	}
	if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: runID, RunName: "renamed-by-server"}); err != nil {
		t.Fatal(err)
	}
	if err := api.SetTag(ctx, runID, mlflowapi.TagNote, "edited in the UI"); err != nil {
		t.Fatal(err)
	}
	if err := api.SetTag(ctx, runID, mlflowconv.TagGroup, "other-group"); err != nil {
		t.Fatal(err)
	}
	exp, err := api.GetExperimentByName(ctx, prefix+"fixture-entity/runferry-fixtures")
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SetExperimentTag(ctx, exp.ExperimentID, "added-in-mlflow", "1"); err != nil {
		t.Fatal(err)
	}
	res, err = check.Run(ctx, src, read(), check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Differences {
		if strings.HasSuffix(d.Run, "/fxa00001") || d.What == "experiment tag added-in-mlflow unexpected" {
			got = append(got, d.What+"="+d.Got)
		} else {
			t.Errorf("difference in an untouched run: %v", d)
		}
	}
	for _, want := range []string{"field Name=renamed-by-server", "field Notes=edited in the UI", "field Group=other-group", "experiment tag added-in-mlflow unexpected=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("check after editing the destination lacks %s; got %q", want, got)
		}
	}
}
