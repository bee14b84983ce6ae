package mlflowfile_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflow"
	"github.com/runferry/runferry/sources/mlflowfile"
)

// sampleStores are the mlruns/ folders of ../shared/samples/mlflow-file.
var sampleStores = []string{
	"2025-2-productos__PRE-07-mlflow-tracking-basico-LissyGraceRestrepo/mlruns",
	"Agnes4Him__mlops-zoomcamp-2024/02-experiment-tracking/mlruns",
	"PacktPublishing__Hyperparameter-Tuning-with-Python/mlruns",
	"copev313__Getting-Started-with-MLflow/examples/mlruns",
	"rymuelle__ConvNeXt-V2-UNet/examples/mlruns",
}

// copyStoreTo copies the store at src into dst, which must not exist (the
// server writes into the store it serves, and the samples are read-only
// input), and gives every run folder the metrics/, params/, tags/ and
// artifacts/ folders MLflow always creates: git keeps no empty folder, and
// MLflow's server finds a run by id only where they exist.
func copyStoreTo(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(out, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if d.Name() == "meta.yaml" && (strings.Contains(string(b), "\nrun_id: ") || strings.HasPrefix(string(b), "run_id: ")) {
			for _, sub := range []string{"metrics", "params", "tags", "artifacts"} {
				if err := os.MkdirAll(filepath.Join(filepath.Dir(out), sub), 0o755); err != nil {
					return err
				}
			}
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// serve starts a real MLflow server on the file store at root.
func serve(t *testing.T, root string, opts ...testenv.MLflowOption) *testenv.MLflowServer {
	t.Helper()
	os.Setenv("MLFLOW_ALLOW_FILE_STORE", "true") // MLflow 3.13+ refuses file stores without it (servers only read it)
	return testenv.StartMLflow(t, append([]testenv.MLflowOption{testenv.WithBackendStoreURI("file://" + root)}, opts...)...)
}

// rest opens runferry's MLflow source on srv (deleted runs included).
func rest(t *testing.T, srv *testenv.MLflowServer) *mlflow.Source {
	t.Helper()
	src, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: srv.URL}, Deleted: true})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// instance is how origins name srv.
func instance(srv *testenv.MLflowServer) string { return strings.TrimPrefix(srv.URL, "http://") }

// mustMatch checks a against b and b against a with runferry's check.
func mustMatch(t *testing.T, a, b sources.Source) *check.Result {
	t.Helper()
	ctx := context.Background()
	var first *check.Result
	for i, pair := range [][2]sources.Source{{a, b}, {b, a}} {
		res, err := check.Run(ctx, pair[0], pair[1], check.Options{})
		if err != nil {
			t.Fatalf("check %d: %v", i, err)
		}
		for _, d := range res.Differences {
			t.Errorf("check %d: %s", i, d)
		}
		if first == nil {
			first = res
		}
	}
	return first
}

// TestSamplesMatchServer: each real-world file store reads, directly, as
// runferry's MLflow source reads it through a real MLflow server serving
// it: the same experiments, runs (deleted ones too), params, tags, every
// metric point, dataset inputs, files and logged models, compared by check
// both ways. Artifacts are read only where the URIs point
// (artifact-fallback=false), as the server reads them. One server serves
// the samples one after the other: each replaces the last in the folder it
// serves (a file store keeps nothing in memory between requests, and an
// MLflow server start costs 8-10 s of CPU: docs/TESTING.md), with the .trash
// and models folders a server's start adds to a store that lacks them.
func TestSamplesMatchServer(t *testing.T) {
	samples := testenv.Samples(t, "mlflow-file")
	root := filepath.Join(t.TempDir(), "mlruns")
	copyStoreTo(t, filepath.Join(samples, sampleStores[0]), root)
	srv := serve(t, root)
	for i, rel := range sampleStores {
		t.Run(strings.SplitN(rel, "/", 2)[0], func(t *testing.T) {
			if i > 0 {
				if err := os.RemoveAll(root); err != nil {
					t.Fatal(err)
				}
				copyStoreTo(t, filepath.Join(samples, rel), root)
				for _, sub := range []string{".trash", "models"} { // as MLflow's FileStore and registry FileStore make them
					if err := os.MkdirAll(filepath.Join(root, sub), 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			file := mlflowfile.New(mlflowfile.Config{Root: root, Instance: instance(srv), Deleted: true})
			res := mustMatch(t, file, rest(t, srv))
			if res.Runs == 0 || res.Experiments == 0 {
				t.Errorf("compared %d experiments, %d runs", res.Experiments, res.Runs)
			}
			t.Logf("%d experiments, %d runs, %d points", res.Experiments, res.Runs, res.Points)
		})
	}
}
