package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestURLPathsRefused: a path scheme given a URL (object storage, HTTP) is
// a usage error saying it is not supported, and nothing is created where
// the URL would have named a local folder ("s3:"); the same for the
// archive verbs and for such URLs given without a scheme.
func TestURLPathsRefused(t *testing.T) {
	src, err := filepath.Abs("../../testdata/wandb/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	cwd := t.TempDir()
	t.Chdir(cwd)
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"copy", "wandb:" + src, "parquet:s3://bucket/backups/x"}, "object storage (S3) is not supported yet"},
		{[]string{"sync", "wandb:" + src, "parquet:gs://bucket/x"}, "object storage (Google Cloud Storage) is not supported yet"},
		{[]string{"copy", "wandb:" + src, "parquet:az://container/x"}, "object storage (Azure Blob Storage) is not supported yet"},
		{[]string{"copy", "wandb:" + src, "parquet:azblob://container/x"}, "object storage (Azure Blob Storage) is not supported yet"},
		{[]string{"copy", "wandb:" + src, "parquet:https://files.example.com/x"}, "over HTTPS is not supported"},
		{[]string{"copy", "wandb:" + src, "parquet:http://files.example.com/x"}, "over HTTP is not supported"},
		{[]string{"copy", "wandb:s3://bucket/wandb", "parquet:out"}, "object storage (S3) is not supported yet"},
		{[]string{"ls", "parquet:s3://bucket/x"}, "object storage (S3) is not supported yet"},
		{[]string{"check", "wandb:" + src, "parquet:gs://bucket/x"}, "object storage (Google Cloud Storage) is not supported yet"},
		{[]string{"copy", "wandb:" + src, "s3://bucket/x"}, `unknown scheme "s3": object storage (S3) is not supported yet`},
		{[]string{"copy", "wandb:" + src, "gs://bucket/x"}, "object storage (Google Cloud Storage) is not supported yet"},
		{[]string{"archive", "check", "s3://bucket/x"}, "object storage (S3) is not supported yet"},
		{[]string{"archive", "summary", "parquet:gs://bucket/x"}, "object storage (Google Cloud Storage) is not supported yet"},
		{[]string{"archive", "prune", "az://c/x", "--keep", "2"}, "object storage (Azure Blob Storage) is not supported yet"},
		{[]string{"copy", "wandb:" + src, "parquet:file:///tmp/x"}, `use parquet:/tmp/x`},
	}
	for _, c := range cases {
		args := append(c.args, "--state", ledger)
		if c.args[0] == "archive" || c.args[0] == "ls" || c.args[0] == "check" {
			args = c.args
		}
		code, out, errOut := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, errOut, out, c.want)
		}
		entries, _ := os.ReadDir(cwd)
		for _, e := range entries {
			t.Errorf("%v created %q in the working directory", c.args, e.Name())
			os.RemoveAll(filepath.Join(cwd, e.Name()))
		}
	}
	if _, err := os.Stat(ledger); !os.IsNotExist(err) {
		t.Errorf("a refused location still created the ledger (%v)", err)
	}
}

// TestHTTPURLHint: an http(s) URL given where an MLflow location was meant
// gets "did you mean mlflow+http://...", without echoing a password.
func TestHTTPURLHint(t *testing.T) {
	const secret = "pl4nted-pw-HINT"
	for _, c := range []struct{ arg, want string }{
		{"http://127.0.0.1:5000", `did you mean "mlflow+http://127.0.0.1:5000"?`},
		{"https://mlflow.example.com/prefix", `did you mean "mlflow+https://mlflow.example.com/prefix"?`},
		{"http://alice:" + secret + "@127.0.0.1:5000", `did you mean "mlflow+http://alice:***@127.0.0.1:5000"?`},
	} {
		code, _, errOut := runCLI(t, "ls", c.arg)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, secret) {
			t.Errorf("ls %s: exit %d, stderr %q; want exit 2 and %q", c.arg, code, errOut, c.want)
		}
	}
}

// writeFileStore writes a minimal MLflow file store by hand: experiment 0
// with its meta.yaml and one run folder, as MLflow lays it out.
func writeFileStore(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"0/meta.yaml": "artifact_location: file://" + dir + "/0\ncreation_time: 1700000000000\nexperiment_id: '0'\n" +
			"last_update_time: 1700000000000\nlifecycle_stage: active\nname: Default\n",
		"0/4f2c1e/meta.yaml":        "artifact_uri: file://" + dir + "/0/4f2c1e/artifacts\nexperiment_id: '0'\nrun_id: 4f2c1e\nstatus: 3\n",
		"0/4f2c1e/metrics/loss":     "1700000000000 0.5 0\n",
		"0/4f2c1e/params/lr":        "0.1",
		"0/4f2c1e/tags/mlflow.user": "alice",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMLflowStoreHints: a bare path that is or holds an MLflow store is
// answered with how to serve it (mlflow server --backend-store-uri ...
// then mlflow+http://...), not "did you mean parquet:..."; the same store
// given as wandb: or parquet: is refused with that advice and left as it
// was. Other bare paths get a suggestion that fits what they hold.
func TestMLflowStoreHints(t *testing.T) {
	root := t.TempDir()
	project := filepath.Join(root, "project")
	mlruns := filepath.Join(project, "mlruns")
	writeFileStore(t, mlruns)
	before := listTree(t, root)
	out := filepath.Join(t.TempDir(), "out")

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"copy", mlruns, "parquet:" + out}, "holds an MLflow file store; start one on it with `mlflow server --backend-store-uri file://" + mlruns + " --port 5000` and use mlflow+http://127.0.0.1:5000"},
		{[]string{"copy", mlruns + "/", "parquet:" + out}, "--backend-store-uri file://" + mlruns + " "},
		{[]string{"ls", project}, "holds an MLflow file store; start one on it with `mlflow server --backend-store-uri file://" + mlruns + " "},
		{[]string{"copy", "wandb:" + mlruns, "parquet:" + out}, "is an MLflow file store, not what wandb: takes; MLflow stores are read through a tracking server: start one on it with `mlflow server --backend-store-uri file://" + mlruns + " "},
		{[]string{"copy", "wandb:../../testdata/wandb/fixtures", "parquet:" + mlruns}, "is an MLflow file store, not what parquet: takes"},
		{[]string{"ls", "mlflow+file:" + mlruns}, "MLflow stores are read through a tracking server"},
	} {
		code, stdout, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "did you mean") {
			t.Errorf("%v: exit %d, stderr %q, stdout %q; want exit 2 and %q", c.args, code, errOut, stdout, c.want)
		}
	}
	if after := listTree(t, root); after != before {
		t.Errorf("the MLflow store changed:\nbefore %s\nafter  %s", before, after)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused copy created the destination (%v)", err)
	}

	// Paths holding W&B run folders or a runferry archive: the fitting scheme.
	code, _, errOut := runCLI(t, "ls", "../../testdata/wandb/fixtures")
	if code != 2 || !strings.Contains(errOut, `did you mean "wandb:../../testdata/wandb/fixtures"? (it holds W&B run folders)`) {
		t.Errorf("bare W&B folder: exit %d, %q", code, errOut)
	}
	archive := filepath.Join(t.TempDir(), "archive")
	if code, o, e := runCLI(t, "copy", "wandb:../../testdata/wandb/fixtures", "parquet:"+archive, "--no-state"); code != 0 {
		t.Fatalf("copy into an archive: exit %d\n%s\n%s", code, o, e)
	}
	code, _, errOut = runCLI(t, "ls", archive)
	if code != 2 || !strings.Contains(errOut, `did you mean "parquet:`+archive+`"? (it holds a manifest.json`) {
		t.Errorf("bare archive: exit %d, %q", code, errOut)
	}
}

// TestMLflowSQLiteHint: a real MLflow SQLite store from ../shared/samples,
// given bare or inside its folder, is answered with the sqlite:// backend
// URI to serve it with.
func TestMLflowSQLiteHint(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "samples", "mlflow-sqlite", "Agnes4Him__mlops-zoomcamp-2024", "02-experiment-tracking")
	if _, err := os.Stat(dir); err != nil {
		testenv.Unavailable(t, "the real-world samples in ../shared/samples", err.Error())
	}
	db := filepath.Join(dir, "mlflow.db")
	want := "holds an MLflow SQLite store; start one on it with `mlflow server --backend-store-uri sqlite:///" + strings.TrimPrefix(db, "/") + " --port 5000`"
	for _, arg := range []string{db, dir} {
		code, _, errOut := runCLI(t, "ls", arg)
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("ls %s: exit %d, %q; want %q", arg, code, errOut, want)
		}
	}
	// A copy of it under another name is still recognised by its schema.
	other := filepath.Join(t.TempDir(), "tracking.sqlite")
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "copy", "wandb:"+other, "parquet:"+t.TempDir())
	if code != 2 || !strings.Contains(errOut, "is an MLflow SQLite store, not what wandb: takes") {
		t.Errorf("wandb:%s: exit %d, %q", other, code, errOut)
	}
}

// listTree renders every path under root with its size, to prove a tree
// unchanged.
func listTree(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b.WriteString(rel)
		if !fi.IsDir() {
			fmt.Fprintf(&b, "=%d", fi.Size())
		}
		b.WriteString(";")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
