package mlflow_test

import (
	"context"
	"testing"

	"github.com/runferry/runferry/internal/check"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/transfer"
	"github.com/runferry/runferry/sources/wandbdir"
)

// TestWandbToMLflow copies the W&B run folders made by the real wandb SDK
// into MLflow; `check` finds no difference between the two.
func TestWandbToMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	root := testenv.RepoRoot(t) + "/testdata/wandb/fixtures"
	loc, err := location.Parse("wandb:"+root, func(string) (location.Kind, bool) { return location.PathKind, true })
	if err != nil {
		t.Fatal(err)
	}
	src, err := wandbdir.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, read, _ := pair(t, srv.URL)
	rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed == 0 {
		t.Fatalf("copy: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	res, err := check.Run(context.Background(), src, read(), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow: %v\n%v", err, res.Differences)
	}
	t.Logf("%d runs, %d points match", res.Runs, res.Points)
}
