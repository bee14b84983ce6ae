package mlflowfile_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	sinksall "github.com/runferry/runferry/sinks/all"
	"github.com/runferry/runferry/sources/mlflowfile"
	"github.com/runferry/runferry/sources/wandbdir"
)

// TestRunferryCopiesRestored: W&B runs that runferry copied into a real
// MLflow server with a file store read, from the mlruns/ folder directly,
// as through the server: restored from runferry's sidecars (check finds
// them equal to the W&B runs themselves) and equal by check both ways to
// the server's. (Runs with both a key and a key below it, which a file
// store cannot hold, fail to copy; they are compared with the server as
// MLflow holds them.)
func TestRunferryCopiesRestored(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "mlruns")
	srv := serve(t, root)
	wandb := func() *wandbdir.Source {
		src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures"), CrashedAfter: 1})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	dst, _, err := sinksall.Sinks().Open(ctx, "mlflow+"+srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(ctx, wandb(), dst, transfer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var copied []string // a file store cannot hold both keys a and a/b: such runs fail
	for _, r := range rep.Runs {
		if r.Outcome == transfer.Committed {
			copied = append(copied, r.Origin)
		}
	}
	if len(copied) < 3 {
		t.Fatalf("copy the W&B fixtures into MLflow: %+v, want at least 3 runs copied", rep.Totals)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	file := func() *mlflowfile.Source {
		return mlflowfile.New(mlflowfile.Config{Root: root, Instance: instance(srv), ArtifactsDestination: srv.ArtifactDir, ArtifactFallback: true})
	}
	if res := mustMatch(t, file(), rest(t, srv)); res.Runs != 6 {
		t.Errorf("compared %d runs with the server, want the 6 W&B runs (the failed copies as MLflow holds them)", res.Runs)
	}
	res, err := check.Run(ctx, wandb(), file(), check.Options{Filter: transfer.Filter{RunIDs: copied}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range res.Differences {
		t.Errorf("check W&B fixtures %s: %s", root, d)
	}
	if res.Runs != len(copied) {
		t.Errorf("check against the W&B runs compared %d runs, want the %d copied", res.Runs, len(copied))
	}
}
