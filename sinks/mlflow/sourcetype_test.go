package mlflow_test

import (
	"context"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/mlflowtest"
	"github.com/runferry/runferry/internal/testenv"
)

// TestSourceTypeShownAsNative: a W&B run copied into MLflow has
// mlflow.source.type LOCAL beside its program (mlflow.source.name), as a
// run MLflow's client logs has, so that MLflow's runs table and run
// overview show the source icon before the program's name (without it
// the name stood bare: scripts/screenshots.sh, docs/REVIEW.md session 15).
// Read back through MLflow's REST API; the copy still checks clean (the
// MLflow source does not take the tag for one of the run's own), and so
// does a copy made before the tag (the tag deleted through the REST API).
// Failed before the fix: no run had the tag.
func TestSourceTypeShownAsNative(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	src := openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures")
	dst, read, prefix := pair(t, srv.URL)
	rep, err := transfer.Copy(ctx, src, dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed == 0 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	api := mlflowtest.Client(t, srv.URL)
	n := 0
	for _, r := range mlflowtest.Runs(t, api, prefix, mlflowapi.ViewAll) {
		tags := tagMap(r.Data.Tags)
		if tags[mlflowapi.TagSourceName] == "" {
			if v, ok := tags[mlflowapi.TagSourceType]; ok {
				t.Errorf("run %s: no program, but %s = %q", r.Info.RunName, mlflowapi.TagSourceType, v)
			}
			continue
		}
		n++
		if got := tags[mlflowapi.TagSourceType]; got != mlflowconv.SourceTypeLocal {
			t.Errorf("run %s: %s = %q beside %s = %q, want %q", r.Info.RunName, mlflowapi.TagSourceType, got,
				mlflowapi.TagSourceName, tags[mlflowapi.TagSourceName], mlflowconv.SourceTypeLocal)
		}
	}
	if n == 0 {
		t.Fatal("no copied run has a program")
	}
	if res, err := check.Run(ctx, src, read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check: %v\n%v", err, res.Differences)
	}
	// A copy made before the tag was written: read back the same.
	for _, r := range mlflowtest.Runs(t, api, prefix, mlflowapi.ViewAll) {
		if _, ok := tagMap(r.Data.Tags)[mlflowapi.TagSourceType]; ok {
			post(t, srv.URL, "runs/delete-tag", map[string]string{"run_id": r.Info.RunID, "key": mlflowapi.TagSourceType})
		}
	}
	if res, err := check.Run(ctx, src, read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check against copies without the tag: %v\n%v", err, res.Differences)
	}
}
