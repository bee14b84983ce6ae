package main

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestFolderAndCloudCopiesAreOneMLflowRun (ux15): the fixtures' project
// copied into MLflow from its run folder (wandb:FOLDER) and then from the
// W&B cloud (the W&B API test server holding the same runs), each with its
// own ledger, and the other way round: the second copy appends to the
// runs the first made (the same origin), in place: the same MLflow run
// ids, none deleted, none doubled, and check of the second source against
// MLflow passes. The cloud gives a run's start time to the second, the
// folder to the millisecond; before the fix the second copy refused the
// append ("cannot append: its start time changed"), wrote every run again
// under a new MLflow run id and deleted the first copy.
func TestFolderAndCloudCopiesAreOneMLflowRun(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	_, cloud := fixtureServer(t, key)
	folder := "wandb:" + filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures")
	mlf := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: mlf.URL})
	if err != nil {
		t.Fatal(err)
	}
	// runs answers the project's MLflow runs, name to run id, and how many
	// are deleted.
	runs := func(prefix string) (map[string]string, int) {
		t.Helper()
		ctx := context.Background()
		exp, err := api.GetExperimentByName(ctx, prefix+"fixture-entity/runferry-fixtures")
		if err != nil {
			t.Fatal(err)
		}
		ids, deleted := map[string]string{}, 0
		for r, err := range api.SearchRuns(ctx, []string{exp.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Info.LifecycleStage != "active" {
				deleted++
				continue
			}
			ids[r.Info.RunName] = r.Info.RunID
		}
		return ids, deleted
	}
	for _, order := range [][2]string{{folder, cloud}, {cloud, folder}} {
		name := "folder then cloud"
		if order[0] == cloud {
			name = "cloud then folder"
		}
		t.Run(name, func(t *testing.T) {
			prefix := uniquePrefix(t)
			dst := "mlflow+" + mlf.URL + "?experiment-prefix=" + prefix
			dir := t.TempDir()
			code, out, errOut := runCLI(t, "copy", "--accept-gaps", order[0], dst, "--state", filepath.Join(dir, "first.db"))
			if code != 0 || !strings.Contains(out, "copied 6 runs") {
				t.Fatalf("first copy: exit %d\n%s\n%s", code, out, errOut)
			}
			before, deleted := runs(prefix)
			if len(before) != 6 || deleted != 0 {
				t.Fatalf("after the first copy MLflow holds %v and %d deleted runs, want 6 runs", before, deleted)
			}
			code, out, errOut = runCLI(t, "copy", "--accept-gaps", order[1], dst, "--state", filepath.Join(dir, "second.db"))
			if code != 0 || !strings.Contains(out, "6 runs appended to") {
				t.Errorf("second copy: exit %d, want the 6 runs appended to\n%s\n%s", code, out, errOut)
			}
			after, deleted := runs(prefix)
			if !maps.Equal(before, after) || deleted != 0 {
				t.Errorf("after the second copy MLflow holds %v and %d deleted runs, want the first copy's %v and none deleted", after, deleted, before)
			}
			code, out, errOut = runCLI(t, "check", order[1], dst)
			if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
				t.Errorf("check %s: exit %d\n%s\n%s", order[1], code, out, errOut)
			}
		})
	}
}
