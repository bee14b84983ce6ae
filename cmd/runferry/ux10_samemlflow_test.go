package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestCopyMLflowIntoItselfRefused: `copy mlflow+http://HOST mlflow+http://HOST`
// (one server as SRC and DST, a slip of the fingers or of an environment
// variable) is refused before anything is read or written, exit 2, also
// when the two spell the loopback address differently; the experiment
// keeps its one run. (Before: "copied 1 run ... 0 failed", exit 0, and the
// experiment held every native run twice, the copy without its user; the
// next copy then named each pair as runs sharing an origin.) With an
// experiment prefix the copies are wanted, and the copy is not refused.
func TestCopyMLflowIntoItselfRefused(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api := mustAPI(t, srv.URL)
	ctx := context.Background()
	name := fmt.Sprintf("ux10-self-%d", testenv.FreePort(t))
	expID, err := api.CreateExperiment(ctx, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: "native", StartTime: 1700000000000, UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	src := "mlflow+" + srv.URL
	for _, dst := range []string{src, src + "/", strings.Replace(src, "127.0.0.1", "localhost", 1)} {
		for _, verb := range []string{"copy", "sync"} {
			code, out, errOut := runCLI(t, verb, src, dst, "--include", name, "--no-state")
			if code != 2 || !strings.Contains(errOut, "SRC and DST are the same MLflow server") {
				t.Errorf("%s %s %s: exit %d, want 2 refusing one server as both\n%s%s", verb, src, dst, code, out, errOut)
			}
		}
	}
	runs := 0
	for _, err := range api.SearchRuns(ctx, []string{expID}, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		runs++
	}
	if runs != 1 {
		t.Errorf("the experiment holds %d runs after the refused copies, want its 1", runs)
	}
	code, out, errOut := runCLI(t, "copy", src, src+"?experiment-prefix=copy/", "--include", name, "--no-state", "--dry-run")
	if code != 0 || !strings.Contains(out, "would copy 1 run") {
		t.Errorf("copy into the same server under an experiment prefix: exit %d, want 0\n%s%s", code, out, errOut)
	}
}
