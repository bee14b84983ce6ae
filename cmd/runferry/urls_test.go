package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestCopyPrintsExperimentURLs: a copy into MLflow prints, per experiment
// written, the address that opens it in MLflow's machine-learning view,
// and the report holds it; the server serves its UI there, and the id in
// it is the experiment's.
func TestCopyPrintsExperimentURLs(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix := fmt.Sprintf("urls-%d/", testenv.FreePort(t))
	report := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "mlflow+"+srv.URL+"?experiment-prefix="+prefix,
		"--no-state", "--run", "fxf00006", "--report", report)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	exp, err := mustAPI(t, srv.URL).GetExperimentByName(context.Background(), prefix+"fixture-entity/runferry-fixtures")
	if err != nil {
		t.Fatal(err)
	}
	want := srv.URL + "/#/experiments/" + exp.ExperimentID + "?workflowType=machine_learning"
	lines := regexp.MustCompile(`(?m)^experiment .*$`).FindAllString(out, -1)
	if len(lines) != 1 || lines[0] != "experiment fixture-entity/runferry-fixtures: "+want {
		t.Fatalf("printed %q, want one line naming %s\n%s", lines, want, out)
	}
	var rep transfer.Report
	if b, err := os.ReadFile(report); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("report: %v", err)
	}
	if len(rep.Experiments) != 1 || rep.Experiments[0].URL != want || rep.Experiments[0].DestID != exp.ExperimentID {
		t.Fatalf("report experiments %+v, want %s", rep.Experiments, want)
	}
	resp, err := http.Get(want)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<div id=\"root\"") {
		t.Fatalf("GET %s: %s\n%.300s", want, resp.Status, page)
	}
}

func mustAPI(t *testing.T, url string) *mlflowapi.Client {
	t.Helper()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	return api
}
