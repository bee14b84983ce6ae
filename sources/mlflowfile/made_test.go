package mlflowfile_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
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
// real server started on it afterwards.
func TestClientStoreMatchesServer(t *testing.T) {
	root := filepath.Join(t.TempDir(), "my store", "mlruns")
	m := makeStore(t, "file://"+root)
	if m.Unfinished == "" || m.DeletedExperiment == "" {
		t.Fatalf("make_store.py made %+v", m)
	}
	srv := serve(t, root)
	file := mlflowfile.New(mlflowfile.Config{Root: root, Instance: instance(srv), ArtifactFallback: true, Deleted: true})
	res := mustMatch(t, file, rest(t, srv))
	if res.Runs != 7 {
		t.Errorf("compared %d runs, want the 7 make_store.py logged", res.Runs)
	}
}
