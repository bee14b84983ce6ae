package mlflowfile_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/mlflowfile"
	"github.com/runferry/runferry/sources/sourcetest"
)

// made is what testdata/make_store.py printed.
type made struct {
	Experiment, Parent, Child, Quiet, Unfinished string
	DeletedRun                                   string `json:"deleted_run"`
	DeletedExperiment                            string `json:"deleted_experiment"`
	ModelRun                                     string `json:"model_run"`
	Model                                        string
	TracesExperiment                             string `json:"traces_experiment"`
}

// makeStore runs testdata/make_store.py against uri (a server, or a file
// store itself).
func makeStore(t *testing.T, uri string, args ...string) made {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), append([]string{"testdata/make_store.py", uri}, args...)...)
	cmd.Env = append(os.Environ(), "MLFLOW_ALLOW_FILE_STORE=true", "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true", "MLFLOW_TRACKING_URI=",
		"MLFLOW_HTTP_REQUEST_MAX_RETRIES=0", "MLFLOW_HTTP_REQUEST_TIMEOUT=60") // a server error fails at once
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("make_store.py: %v\n%s", err, stderr)
	}
	var m made
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		t.Fatalf("make_store.py printed %q: %v", out, err)
	}
	return m
}

// TestServedStoreMatchesServer: a file store that a real MLflow server
// wrote (runs logged by MLflow's Python client through it, files under its
// --artifacts-destination, an MLflow 3 logged model with dataset-linked
// metrics, the model registry, a deleted run and experiment, an unfinished
// run, a run with no metrics) reads directly exactly as through the server:
// the conformance suite compares everything read with what runferry's
// MLflow source reads from the server, and check agrees both ways.
func TestServedStoreMatchesServer(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mlruns")
	srv := serve(t, root)
	m := makeStore(t, srv.URL, "--models")
	if m.Model == "" || m.DeletedRun == "" {
		t.Fatalf("make_store.py made %+v", m)
	}
	cfg := mlflowfile.Config{Root: root, Instance: instance(srv), ArtifactsDestination: srv.ArtifactDir, ArtifactFallback: true, Deleted: true}
	want, err := dataset.Read(context.Background(), rest(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source { return mlflowfile.New(cfg) },
		Want: want,
		OpenOther: func(t *testing.T) sources.Source {
			other := cfg
			other.Instance = "elsewhere:5000"
			return mlflowfile.New(other)
		},
	})
	res := mustMatch(t, mlflowfile.New(cfg), rest(t, srv))
	t.Logf("%d experiments, %d runs, %d points, %d models, %d traces", res.Experiments, res.Runs, res.Points, res.Models, res.Traces)
}

// TestClientStoreMatchesServer: a file store MLflow's Python client wrote
// itself (no server: file:// artifact URIs under a folder whose name holds
// a space, as MLflow 3 writes them unescaped) reads directly as through a
// real server started on it afterwards. Next to it, an experiment as MLflow
// 1.x wrote it (addOneXExperiment) reads as the server reads it too.
func TestClientStoreMatchesServer(t *testing.T) {
	root := filepath.Join(t.TempDir(), "my store", "mlruns")
	m := makeStore(t, "file://"+root)
	if m.Unfinished == "" || m.DeletedExperiment == "" {
		t.Fatalf("make_store.py made %+v", m)
	}
	addOneXExperiment(t, root)
	srv := serve(t, root)
	file := mlflowfile.New(mlflowfile.Config{Root: root, Instance: instance(srv), ArtifactFallback: true, Deleted: true})
	res := mustMatch(t, file, rest(t, srv))
	if res.Runs != 8 || res.Experiments != 4 {
		t.Errorf("compared %d experiments, %d runs; want the 3 and 7 make_store.py logged and the 1.x one with its run", res.Experiments, res.Runs)
	}
	var loss []float64
	for page, err := range file.Metrics(context.Background(), schema.Ref{System: "mlflow", ID: instance(srv) + "/" + oneXRun}) {
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			if p.Key == "loss" {
				loss = append(loss, p.Value)
			}
		}
	}
	if !slices.Equal(loss, []float64{0.9, 0.8, 0.8, 0.7}) {
		t.Errorf("the 1.x run's loss %v: want its 2- and 3-field lines, the duplicated one kept", loss)
	}
}

// oneXRun is the run addOneXExperiment writes.
const oneXRun = "1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a"

// addOneXExperiment writes into the file store at root an experiment as
// MLflow 1.x wrote it: integer ids, bare local paths (no file:// scheme) in
// artifact_location and artifact_uri, a run meta.yaml with 1.x's fields
// (run_uuid, source_type, user_id, no run_name), metric lines of 2 fields
// (before steps existed) and of 3, one line written twice.
func addOneXExperiment(t *testing.T, root string) {
	t.Helper()
	exp := filepath.Join(root, "9")
	arts := filepath.Join(exp, oneXRun, "artifacts")
	write(t, root, map[string]string{
		"9/meta.yaml": "artifact_location: " + exp + "\nexperiment_id: 9\nlifecycle_stage: active\nname: one-x era\n",
		"9/" + oneXRun + "/meta.yaml": "artifact_uri: " + arts + "\nend_time: 1560000100000\nentry_point_name: ''\nexperiment_id: 9\n" +
			"lifecycle_stage: active\nname: ''\nrun_id: " + oneXRun + "\nrun_uuid: " + oneXRun + "\nsource_name: ''\nsource_type: 4\n" +
			"source_version: ''\nstart_time: 1560000000000\nstatus: 3\ntags: []\nuser_id: bob\n",
		"9/" + oneXRun + "/metrics/loss":            "1560000000000 0.9\n1560000001000 0.8 1\n1560000001000 0.8 1\n1560000002000 0.7 2\n",
		"9/" + oneXRun + "/params/lr":               "0.01",
		"9/" + oneXRun + "/tags/mlflow.source.name": "train.py",
		"9/" + oneXRun + "/artifacts/model/w.txt":   "weights",
	})
}
