package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMLflowFileCheckAgainstServer: the MLflow 3.7 sample store (logged
// models, Windows artifact URIs, duplicated metric lines) read directly
// with mlflow+file: is what a real MLflow server serving it shows
// (`runferry check` exits 0 both ways); copied to a Parquet archive it
// checks clean against the store.
func TestMLflowFileCheckAgainstServer(t *testing.T) {
	sample := testenv.Samples(t, "mlflow-file/2025-2-productos__PRE-07-mlflow-tracking-basico-LissyGraceRestrepo/mlruns")
	root := filepath.Join(t.TempDir(), "mlruns")
	copyTree(t, sample, root)
	os.Setenv("MLFLOW_ALLOW_FILE_STORE", "true") // MLflow 3.13+ refuses file stores without it
	srv := testenv.StartMLflow(t, testenv.WithBackendStoreURI("file://"+root))
	store := "mlflow+file:" + root + "?deleted=true&artifact-fallback=false&instance=" + strings.TrimPrefix(srv.URL, "http://")
	server := "mlflow+" + srv.URL + "?deleted=true"
	for _, args := range [][]string{{"check", store, server}, {"check", server, store}} {
		if code, out, errOut := runCLI(t, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	out := filepath.Join(t.TempDir(), "archive")
	direct := "mlflow+file:" + root
	if code, stdout, errOut := runCLI(t, "copy", "--accept-gaps", direct, "parquet:"+out); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, stdout, errOut)
	}
	code, stdout, errOut := runCLI(t, "check", direct, "parquet:"+out)
	if code != 0 || !strings.Contains(stdout+errOut, "3 runs") {
		t.Fatalf("check of the archive: exit %d\n%s\n%s", code, stdout, errOut)
	}
}

// copyTree copies the store at src to dst (the server writes into the
// store it serves) and gives each run folder the metrics/, params/, tags/
// and artifacts/ folders MLflow always makes: git keeps no empty folder,
// and the server finds a run by id only where they exist.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if d.Name() == "meta.yaml" && strings.Contains("\n"+string(b), "\nrun_id: ") {
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
