package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestSyncReportsAndPropagatesDeletes removes a run folder after a sync of
// W&B folders into a real MLflow server: the next sync names the run as
// deleted at the source, once, and keeps its copy active (exit 0); sync
// --propagate-deletes then moves the copy to MLflow's deleted lifecycle
// stage and leaves the other runs active. Into a Parquet archive, which
// cannot delete runs yet, --propagate-deletes is a problem (exit 3) and the
// run is kept and named.
func TestSyncReportsAndPropagatesDeletes(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	prefix := fmt.Sprintf("deletes-%d/", testenv.FreePort(t))
	for _, c := range []struct{ name, dst string }{
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + prefix},
		{"parquet", "parquet:" + filepath.Join(dir, "archive")},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(dir, c.name+"-fx")
			if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			loc := "wandb:" + filepath.Join(root, "wandb") + "?crashed-after=1ns"
			ledger := filepath.Join(dir, c.name+".db")
			sync := func(wantCode int, extra ...string) (*transfer.Report, string) {
				t.Helper()
				rep := filepath.Join(dir, c.name+"-report.json")
				code, out, errOut := runCLI(t, append([]string{"sync", loc, c.dst, "--state", ledger, "--report", rep}, extra...)...)
				if code != wantCode {
					t.Fatalf("sync %v: exit %d, want %d\n%s%s", extra, code, wantCode, out, errOut)
				}
				b, err := os.ReadFile(rep)
				if err != nil {
					t.Fatal(err)
				}
				var r transfer.Report
				if err := json.Unmarshal(b, &r); err != nil {
					t.Fatal(err)
				}
				return &r, out
			}
			first, _ := sync(0)
			var gone transfer.RunResult
			for _, r := range first.Runs {
				if strings.HasSuffix(r.Origin, "/fxa00001") {
					gone = r
				}
			}
			if gone.Origin == "" || gone.Name == "" || first.Totals.Committed < 5 {
				t.Fatalf("first sync: %+v", first.Totals)
			}
			if err := os.RemoveAll(filepath.Join(root, "wandb", "offline-run-20261125_230205-fxa00001")); err != nil {
				t.Fatal(err)
			}
			lifecycle := func() map[string]string {
				t.Helper()
				out := map[string]string{}
				if c.name != "mlflow" {
					return out
				}
				for _, r := range first.Runs {
					got, err := api.GetRun(ctx, r.DestID)
					if err != nil {
						t.Fatal(err)
					}
					out[r.Name] = got.Info.LifecycleStage
				}
				return out
			}
			active := lifecycle()

			rep, out := sync(0)
			want := fmt.Sprintf("[{%s %s %s false }]", gone.Origin, gone.Name, gone.DestID)
			if fmt.Sprint(rep.Deleted) != want || rep.Totals.Deleted != 1 || rep.Totals.DeletesPropagated != 0 || rep.Totals.Unchanged != first.Totals.Committed-1 {
				t.Errorf("sync after the folder was removed: deleted %v, totals %+v; want %s", rep.Deleted, rep.Totals, want)
			}
			if line := fmt.Sprintf("DELETED at the source %s (%s): kept in the destination\n", gone.Origin, gone.Name); !strings.Contains(out, line) {
				t.Errorf("output lacks %q:\n%s", line, out)
			}
			if got := lifecycle(); fmt.Sprint(got) != fmt.Sprint(active) {
				t.Errorf("lifecycle stages %v, want %v (nothing deleted without --propagate-deletes)", got, active)
			}
			if rep, _ := sync(0); len(rep.Deleted) != 0 {
				t.Errorf("the next sync reports %v again", rep.Deleted)
			}

			if c.name == "parquet" {
				rep, _ = sync(exitRunsFailed, "--propagate-deletes")
				if len(rep.Deleted) != 1 || rep.Deleted[0].Propagated || len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "cannot delete runs") {
					t.Errorf("--propagate-deletes into an archive: deleted %v, problems %q", rep.Deleted, rep.Problems)
				}
				return
			}
			rep, out = sync(0, "--propagate-deletes")
			want = fmt.Sprintf("[{%s %s %s true }]", gone.Origin, gone.Name, gone.DestID)
			if fmt.Sprint(rep.Deleted) != want || rep.Totals.DeletesPropagated != 1 {
				t.Errorf("sync --propagate-deletes: deleted %v, totals %+v; want %s", rep.Deleted, rep.Totals, want)
			}
			if !strings.Contains(out, "deleted in the destination\n") {
				t.Errorf("output:\n%s", out)
			}
			active[gone.Name] = mlflowapi.StageDeleted
			if got := lifecycle(); fmt.Sprint(got) != fmt.Sprint(active) {
				t.Errorf("lifecycle stages %v, want %v", got, active)
			}
			if rep, _ := sync(0, "--propagate-deletes"); len(rep.Deleted) != 0 || rep.Totals.Committed != 0 {
				t.Errorf("the next sync: deleted %v, totals %+v", rep.Deleted, rep.Totals)
			}
		})
	}
	if code, _, errOut := runCLI(t, "sync", fixtures, "parquet:"+filepath.Join(dir, "x"), "--no-state", "--propagate-deletes"); code != exitUsage || !strings.Contains(errOut, "--no-state") {
		t.Errorf("--propagate-deletes with --no-state: exit %d %q, want a usage error", code, errOut)
	}
}
