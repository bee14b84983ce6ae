package mlflow_test

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestNonFiniteAsMLflowStoresThem: ±Inf and NaN copied by runferry read
// back through MLflow's REST API exactly as the same values logged with
// MLflow's own Python client (mlflow.log_metric) do, and the MLflow source
// gives back the originals.
func TestNonFiniteAsMLflowStoresThem(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	values := []float64{math.Inf(1), math.Inf(-1), math.NaN(), 1.5}
	script := `
import math, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[2])
with mlflow.start_run() as r:
    for step, v in enumerate([float("inf"), float("-inf"), float("nan"), 1.5]):
        mlflow.log_metric("x", v, step=step, timestamp=1711000000000 + step)
print(r.info.run_id)
`
	out, err := exec.Command(testenv.Python(t), "-c", script, srv.URL, "nonfinite-python-"+t.Name()).Output()
	if err != nil {
		t.Fatalf("python client: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n") // mlflow may print "View run ..." first
	pyRun := strings.TrimSpace(lines[len(lines)-1])

	exp := schema.Ref{System: "memory", ID: "exp-nonfinite"}
	rd := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: "run-nonfinite"}, Experiment: exp,
		Name: "nonfinite", Status: schema.StatusFinished, Start: time.UnixMilli(1711000000000).UTC()}}
	for step, v := range values {
		rd.Metrics = append(rd.Metrics, schema.Metric{Key: "x", Value: v, Step: int64(step), Time: 1711000000000 + int64(step)})
	}
	d := &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "nonfinite"}}, Runs: []*dataset.RunData{rd}}
	dst, read, _ := pair(t, srv.URL)
	rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || len(rep.Runs) != 1 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	history := func(runID string) string {
		t.Helper()
		resp, err := http.Get(srv.URL + "/api/2.0/mlflow/metrics/get-history?" + url.Values{"run_id": {runID}, "metric_key": {"x"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	want, got := history(pyRun), history(rep.Runs[0].DestID)
	if got != want || !strings.Contains(want, "1.7976931348623157e+308") || !strings.Contains(want, `"NaN"`) {
		t.Errorf("get-history of runferry's copy:\n%s\nof mlflow.log_metric's run:\n%s", got, want)
	}
	back, err := dataset.Read(context.Background(), read())
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(d, back, dataset.DiffOptions{}); diff != nil {
		t.Errorf("the MLflow source does not give back the original points: %v", diff)
	}
}
