package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// TestCopyWandbCloudFixturesToMLflow: the fixtures' project read through
// the W&B API (parquet exports with sparse steps, a live tail, a run of
// several export files, the paged scan for the others; media, nested
// config, console lines, system metrics, an artifact) is copied into a
// real MLflow server, and check of the cloud project against MLflow finds
// every run matching; a second copy with the ledger copies nothing again.
func TestCopyWandbCloudFixturesToMLflow(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	_, loc := fixtureServer(t, key)
	mlf := testenv.SharedMLflow(t)
	dst := "mlflow+" + mlf.URL + "?experiment-prefix=" + uniquePrefix(t)
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, dst, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "check", loc, dst)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", loc, dst, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 0 runs") {
		t.Fatalf("second copy: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestCopyWandbCloudIncludeListsOnlyItsProjects: copy --include of one
// project of an entity lists the runs of that project alone: the other
// project's runs are never asked for (the server counts the runs it
// serves in listings), and the copy holds that project's runs.
func TestCopyWandbCloudIncludeListsOnlyItsProjects(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	d := fixtureData(t)
	p := d.Projects[0]
	// A second project holding two of the runs (not the one that logged
	// an artifact: the server keeps its files under the first project).
	d.Projects = append(d.Projects, &wandbtest.Project{Name: "b-small", CreatedAt: p.CreatedAt.Add(24 * time.Hour), Runs: p.Runs[1:3]})
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--no-state", "--include", "b-*")
	if code != 0 || !strings.Contains(out, "copied 2 runs") {
		t.Fatalf("copy --include b-*: exit %d\n%s\n%s", code, out, errOut)
	}
	// The plain listing of b-small's 2 runs, and its page again in export
	// form when the first run's history is read: 4 runs served; listing
	// runferry-fixtures too would serve 6 more.
	if n := srv.RunsListed.Load(); n != 4 {
		t.Errorf("the server listed %d runs, want 4 (b-small's 2, twice)", n)
	}
}

// TestWandbCloudKillThenResumeIntoMLflow: the real binary copying the
// fixtures' project from the W&B test server (exports, 20 ms a request)
// into a real MLflow server is SIGKILLed at seeded random moments (the
// first at a random download of run data; at least one kill while runs
// were being copied: see killCopiesThenCheck); a final
// re-run completes, check passes, and MLflow holds each run once, none
// deleted (a run killed mid-copy is continued, not copied again).
func TestWandbCloudKillThenResumeIntoMLflow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, loc := fixtureServer(t, key)
	srv.SetLimit(0, 20*time.Millisecond)
	mlf := testenv.SharedMLflow(t)
	prefix := uniquePrefix(t)
	dst := "mlflow+" + mlf.URL + "?experiment-prefix=" + prefix
	killCopiesThenCheck(t, srv, loc, dst, "mlflow+"+mlf.URL+"?experiment-prefix=probe-"+prefix, 4)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: mlf.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	exp, err := api.GetExperimentByName(ctx, prefix+"fixture-entity/runferry-fixtures")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for r, err := range api.SearchRuns(ctx, []string{exp.ExperimentID}, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if r.Info.LifecycleStage != "active" {
			t.Errorf("run %s is %s", r.Info.RunID, r.Info.LifecycleStage)
		}
	}
	if n != 6 {
		t.Errorf("MLflow holds %d runs of the project, want 6 (none doubled)", n)
	}
}
