package mlflow_test

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

// TestCoverageNamedAndCounted: what MLflow cannot hold as given is counted
// by kind in the dry run, the report and the summary line; what the MLflow
// source leaves out (a deleted run) is counted when copying out of it.
func TestCoverageNamedAndCounted(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMLflow(t)
	bin := buildCLI(t)
	dir := t.TempDir()
	fixtures := "wandb:" + testenv.RepoRoot(t) + "/testdata/wandb/fixtures?crashed-after=1ns"
	prefix := fmt.Sprintf("cov-%d/", testenv.FreePort(t))
	dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
	runCopy := func(args ...string) (transfer.Report, string) {
		t.Helper()
		report := filepath.Join(dir, "report.json")
		os.Remove(report)
		out, err := exec.Command(bin, append(append([]string{"copy"}, args...), "--no-state", "--accept-gaps", "--report", report)...).CombinedOutput()
		if err != nil {
			t.Fatalf("copy %v: %v\n%s", args, err, out)
		}
		var rep transfer.Report
		b, err := os.ReadFile(report)
		if err != nil || json.Unmarshal(b, &rep) != nil {
			t.Fatalf("report: %v\n%s", err, b)
		}
		return rep, string(out)
	}
	plan, planOut := runCopy(fixtures, dst, "--dry-run")
	rep, out := runCopy(fixtures, dst)
	const fixups = "metric points MLflow stores differently: ±Inf, -0, negative times, duplicates (originals in runferry/coverage.json)"
	if rep.Coverage[fixups] == 0 {
		t.Fatalf("the fixtures' ±Inf points are not counted: %v\n%s", rep.Coverage, out)
	}
	for kind, n := range rep.Coverage {
		if !strings.Contains(out, fmt.Sprintf("not as given: %s: %d\n", kind, n)) {
			t.Errorf("summary lacks %q (%d):\n%s", kind, n, out)
		}
		if strings.Contains(kind, "metric points") || strings.HasPrefix(kind, "metric series") {
			continue // known only once the points are written
		}
		if strings.HasPrefix(kind, "files the source could not read") {
			// The dry run names each such file (fxa00001's W&B artifact
			// entry whose staged copy is gone) as a file not copied.
			var named int64
			for _, r := range plan.Runs {
				named += int64(len(r.FileProblem))
			}
			if named != n || !strings.Contains(planOut, "file not copied ") {
				t.Errorf("dry run named %d files not copied, the copy counted %d\n%s", named, n, planOut)
			}
			continue
		}
		if plan.Coverage[kind] != n {
			t.Errorf("dry run counted %d of %q, the copy %d\n%s", plan.Coverage[kind], kind, n, planOut)
		}
	}
	var total int64
	for _, n := range rep.Coverage {
		total += n
	}
	if !strings.Contains(out, fmt.Sprintf(", %d items not as given (see above)", total)) {
		t.Errorf("summary line lacks the count %d:\n%s", total, out)
	}

	// A run deleted in MLflow is left out when copying out of it, and said.
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.DeleteRun(context.Background(), rep.Runs[0].DestID); err != nil {
		t.Fatal(err)
	}
	back, out := runCopy(dst, "parquet:"+filepath.Join(dir, "archive"))
	const deleted = "source: deleted runs left out (add ?deleted=true to copy them)"
	if back.Coverage[deleted] != 1 || back.Totals.Committed != len(rep.Runs)-1 || !strings.Contains(out, "not as given: "+deleted+": 1\n") {
		t.Fatalf("copy out of MLflow with a deleted run: coverage %v, totals %+v\n%s", back.Coverage, back.Totals, out)
	}
}
