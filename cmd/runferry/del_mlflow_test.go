package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowtest"
	"github.com/runferry/runferry/internal/testenv"
)

// TestCopyRestoresRunDeletedInMLflow copies the W&B fixtures through a
// Parquet archive into a real MLflow server, deletes a copy there as
// MLflow's UI does (runs/delete; then, in another experiment-prefix, the
// whole experiment with experiments/delete), and copies again, with and
// without a ledger. The re-run restores the copy under its run id (exit 0,
// named in the output and counted in the report), `check` reading MLflow's
// API then finds every run, and MLflow's search API holds each run once,
// active, and nothing deleted. Before the fix the re-run said "6 unchanged"
// and `check` exited 4 with "missing run".
func TestCopyRestoresRunDeletedInMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api := mlflowtest.Client(t, srv.URL)
	ctx := context.Background()
	dir := t.TempDir()
	arch := "parquet:" + filepath.Join(dir, "archive")
	if code, out, errOut := runCLI(t, "copy", "--no-state", "--accept-gaps", "wandb:../../testdata/wandb/fixtures/wandb", arch); code != 0 {
		t.Fatalf("copy into the archive: exit %d\n%s%s", code, out, errOut)
	}
	port := testenv.FreePort(t)
	for _, c := range []struct {
		name       string
		experiment bool // delete the run's experiment, not the run
		ledger     bool // sync with a ledger, not copy --no-state
		force      bool // the re-run compares every run in full (--force)
	}{
		{"run/copy", false, false, false},
		{"experiment/copy", true, false, false},
		{"run/sync", false, true, false},
		{"experiment/sync", true, true, false},
		{"run/sync-force", false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			prefix := fmt.Sprintf("del-%d-%s/", port, strings.ReplaceAll(c.name, "/", "-"))
			dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
			ledger := filepath.Join(dir, strings.ReplaceAll(c.name, "/", "-")+".db")
			copyTo := func(extra ...string) (transfer.Report, string) {
				t.Helper()
				rep := filepath.Join(dir, "report.json")
				args := []string{"copy", "--no-state"}
				if c.ledger {
					args = []string{"sync", "--state", ledger}
				}
				args = append(args, "--report", rep)
				args = append(args, extra...)
				code, out, errOut := runCLI(t, append(args, arch, dst)...)
				if code != 0 {
					t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
				}
				return readReport(t, rep), out
			}
			first, _ := copyTo()
			n := first.Totals.Committed
			if n < 5 || first.Totals.Failed != 0 {
				t.Fatalf("first copy: %+v", first.Totals)
			}
			gone := first.Runs[0]
			held, err := api.GetRun(ctx, gone.DestID)
			if err != nil {
				t.Fatal(err)
			}
			var deleted []string // the run ids MLflow shows deleted
			if c.experiment {
				if err := api.DeleteExperiment(ctx, held.Info.ExperimentID); err != nil {
					t.Fatal(err)
				}
				for _, r := range first.Runs {
					if got, err := api.GetRun(ctx, r.DestID); err == nil && got.Info.ExperimentID == held.Info.ExperimentID {
						deleted = append(deleted, r.DestID)
					}
				}
			} else {
				if err := api.DeleteRun(ctx, gone.DestID); err != nil {
					t.Fatal(err)
				}
				deleted = []string{gone.DestID}
			}
			// What the user sees now: check names the copy missing.
			if code, out, errOut := runCLI(t, "check", arch, dst); code != 4 || !strings.Contains(out, "missing run") {
				t.Fatalf("check after the delete: exit %d, want 4 naming a missing run\n%s%s", code, out, errOut)
			}
			// A dry run names what it would restore and restores nothing.
			dry, out := copyTo("--dry-run")
			if dry.Totals.Restored != len(deleted) || !strings.Contains(out, "would be restored") {
				t.Errorf("dry run: restored %d, want %d\n%s", dry.Totals.Restored, len(deleted), out)
			}
			if got, err := api.GetRun(ctx, gone.DestID); err != nil || got.Info.LifecycleStage != mlflowapi.StageDeleted {
				t.Fatalf("after the dry run: %+v, %v; want the copy still deleted", got.Info, err)
			}
			var again transfer.Report
			if c.force {
				// Restored, then compared in full with the source: whole.
				again, out = copyTo("--force")
				if again.Totals.Restored != len(deleted) || again.Totals.Committed != 0 || again.Totals.Verified != n {
					t.Errorf("re-run --force: %+v; want %d restored, %d verified, none written\n%s", again.Totals, len(deleted), n, out)
				}
			} else {
				again, out = copyTo()
				if again.Totals.Restored != len(deleted) || again.Totals.Committed != 0 || again.Totals.Unchanged != n {
					t.Errorf("re-run: %+v; want %d restored, %d unchanged, none written\n%s", again.Totals, len(deleted), n, out)
				}
			}
			for _, id := range deleted {
				if !strings.Contains(out, "DELETED at the destination ") || !strings.Contains(out, "MLflow run "+id) {
					t.Errorf("re-run output does not name the restored run %s:\n%s", id, out)
				}
			}
			if !strings.Contains(out, fmt.Sprintf("%d run", len(deleted))) || !strings.Contains(out, "deleted at the destination restored") {
				t.Errorf("closing line does not count the restored runs:\n%s", out)
			}
			if code, out, errOut := runCLI(t, "check", arch, dst); code != 0 {
				t.Errorf("check after the re-run: exit %d\n%s%s", code, out, errOut)
			}
			// Nothing doubled, nothing left deleted: each run once, under
			// the run id it had, active.
			active, all := countRuns(t, api, prefix, mlflowapi.ViewActive), countRuns(t, api, prefix, mlflowapi.ViewAll)
			if active != n || all != n {
				t.Errorf("MLflow holds %d active runs, %d in all; want %d and %d", active, all, n, n)
			}
			for _, id := range deleted {
				if got, err := api.GetRun(ctx, id); err != nil || got.Info.LifecycleStage != mlflowapi.StageActive {
					t.Errorf("run %s after the re-run: %+v, %v; want it active", id, got.Info, err)
				}
			}
			if exp, err := api.GetExperiment(ctx, held.Info.ExperimentID); err != nil || exp.LifecycleStage != mlflowapi.StageActive {
				t.Errorf("experiment after the re-run: %+v, %v; want it active", exp, err)
			}
			// And a third run finds everything held.
			third, out := copyTo()
			if third.Totals.Restored != 0 || third.Totals.Unchanged != n {
				t.Errorf("third run: %+v\n%s", third.Totals, out)
			}
		})
	}
}

// countRuns counts the runs of the experiments whose name starts with
// prefix, as MLflow's search API lists them with view (deleted experiments
// included).
func countRuns(t *testing.T, api *mlflowapi.Client, prefix, view string) int {
	t.Helper()
	ctx := context.Background()
	var ids []string
	for e, err := range api.SearchExperiments(ctx, fmt.Sprintf("name LIKE '%s%%'", prefix), mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ExperimentID)
	}
	n := 0
	for _, err := range api.SearchRuns(ctx, ids, "", view) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// TestChangedRunDeletedInMLflowAppendedInPlace: a copy deleted in MLflow
// whose source run changed since (a file of its W&B folder grew) is
// restored and appended to under its run id by the next sync, not written
// anew beside the deleted copy: MLflow's search API then holds each run
// once, active, and `check` against the folders passes.
func TestChangedRunDeletedInMLflowAppendedInPlace(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api := mlflowtest.Client(t, srv.URL)
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "fx")
	if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	src := "wandb:" + root + "?crashed-after=1ns"
	prefix := fmt.Sprintf("del-%d-changed/", testenv.FreePort(t))
	dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
	ledger := filepath.Join(dir, "ledger.db")
	rep := filepath.Join(dir, "report.json")
	sync := func() (transfer.Report, string) {
		t.Helper()
		code, out, errOut := runCLI(t, "sync", "--accept-gaps", "--state", ledger, "--report", rep, src, dst)
		if code != 0 {
			t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
		}
		return readReport(t, rep), out
	}
	first, _ := sync()
	n := first.Totals.Committed
	var gone transfer.RunResult
	for _, r := range first.Runs {
		if strings.HasSuffix(r.Origin, "/fxe00005") {
			gone = r
		}
	}
	if n < 5 || gone.DestID == "" {
		t.Fatalf("first sync: %+v", first.Totals)
	}
	if err := api.DeleteRun(ctx, gone.DestID); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(root, "wandb", "offline-run-20261125_230217-fxe00005", "files", "requirements.txt"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("numpy==2.1.0\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	again, out := sync()
	var got transfer.RunResult
	for _, r := range again.Runs {
		if r.Origin == gone.Origin {
			got = r
		}
	}
	if again.Totals.Restored != 1 || got.Restored == "" || got.Outcome != transfer.Committed || !got.Appended || got.DestID != gone.DestID {
		t.Errorf("re-run: totals %+v, run %+v; want it restored and appended under run id %s\n%s", again.Totals, got, gone.DestID, out)
	}
	if code, out, errOut := runCLI(t, "check", src, dst); code != 0 {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}
	if active, all := countRuns(t, api, prefix, mlflowapi.ViewActive), countRuns(t, api, prefix, mlflowapi.ViewAll); active != n || all != n {
		t.Errorf("MLflow holds %d active runs, %d in all; want %d and %d", active, all, n, n)
	}
}
