package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/parquetdir"
	mlsrc "github.com/runferry/runferry/sources/mlflow"
	pqsrc "github.com/runferry/runferry/sources/parquetdir"
)

// contentRun is what testdata/content.py read prints for one run.
type contentRun struct {
	Inputs []map[string]any `json:"inputs"`
	Models []struct {
		ModelID   string            `json:"model_id"`
		Name      string            `json:"name"`
		ModelType string            `json:"model_type"`
		Status    string            `json:"status"`
		Params    map[string]string `json:"params"`
		Tags      map[string]string `json:"tags"`
		Metrics   [][]any           `json:"metrics"`
		Files     map[string]string `json:"files"`
	} `json:"models"`
	RunFiles map[string]string `json:"run_files"`
}

// contentPy runs testdata/content.py with args in the test's one Python
// process (contentScripts) and returns the last line it printed; the test
// fails if the script fails.
func contentPy(t *testing.T, args ...string) []byte {
	t.Helper()
	t.Logf("%s content.py %s", time.Now().Format(time.TimeOnly), args[0])
	s := strings.TrimSpace(string(contentScripts(t).Run(t, "testdata/content.py", args...)))
	return []byte(s[strings.LastIndexByte(s, '\n')+1:])
}

// contentProcs holds each running test's content.py process.
var contentProcs sync.Map // *testing.T -> *testenv.PyScripts

// contentScripts returns t's Python process for content.py, started at its
// first use and ended with t: a test that logs, reads and loads models with
// MLflow's client imports MLflow, pandas and sklearn once instead of once a
// script. Each of content.py's commands sets its own tracking URI.
func contentScripts(t *testing.T) *testenv.PyScripts {
	t.Helper()
	if p, ok := contentProcs.Load(t); ok {
		return p.(*testenv.PyScripts)
	}
	p := testenv.StartPyScripts(t)
	contentProcs.Store(t, p)
	t.Cleanup(func() { contentProcs.Delete(t) })
	return p
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loggedContent is content.py log's runs (no registered model) on the shared server,
// logged once per test binary under an experiment prefix of their own, which it returns.
// The tests using them only read them (copy from them, check, read back), so they share
// one log (one Python process of MLflow's client and sklearn fewer a test).
func loggedContent(t *testing.T, srv *testenv.MLflowServer) string {
	t.Helper()
	sharedContent.Lock()
	defer sharedContent.Unlock()
	if sharedContent.prefix == "" { // not yet, or a test's log failed (it failed that test)
		p := fmt.Sprintf("content-src-%d/", testenv.FreePort(t))
		contentPy(t, "log", srv.URL, p+"exp")
		sharedContent.prefix = p
	}
	return sharedContent.prefix
}

var sharedContent struct {
	sync.Mutex
	prefix string
}

// readContents is what content.py read gives for two experiments (a source and its copy),
// from one content.py process: MLflow's client imported once.
func readContents(t *testing.T, url1, experiment1, url2, experiment2 string) (map[string]contentRun, map[string]contentRun) {
	t.Helper()
	var out []map[string]contentRun
	if err := json.Unmarshal(contentPy(t, "read", url1, experiment1, url2, experiment2), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("content.py read of two experiments gave %d", len(out))
	}
	return out[0], out[1]
}

// predictions runs content.py predict on each (tracking URI, model URI) pair in one
// process and returns each pair's predictions as JSON.
func predictions(t *testing.T, pairs ...string) []string {
	t.Helper()
	var out []json.RawMessage
	if err := json.Unmarshal(contentPy(t, append([]string{"predict"}, pairs...)...), &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(pairs)/2 {
		t.Fatalf("content.py predict of %d models gave %d", len(pairs)/2, len(out))
	}
	s := make([]string, len(out))
	for i, p := range out {
		s[i] = string(p)
	}
	return s
}

// TestMLflowContent logs runs with MLflow's Python client (dataset inputs
// with schema, profile and context), copies them MLflow -> Parquet archive
// -> MLflow under another prefix, and compares what MLflow's client reads
// from the destination with what it reads from the source; check passes
// on both legs, and the archive's inputs table holds the inputs for
// pyarrow.
func TestMLflowContent(t *testing.T) {
	t.Parallel() // no package variable set; its own names on shared servers (docs/TESTING.md, tt14)
	if testing.Short() {
		t.Skip("runs MLflow's Python client")
	}
	srv := testenv.SharedMLflow(t)
	t.Logf("%s server up", time.Now().Format(time.TimeOnly))
	ctx := context.Background()
	srcPrefix := loggedContent(t, srv)
	src := func() *mlsrc.Source {
		s, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: srcPrefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	dir := filepath.Join(t.TempDir(), "archive")
	pq, err := parquetdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(ctx, src(), pq, transfer.Options{}); err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 2 {
		t.Fatalf("MLflow to Parquet: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	if err := pq.Close(); err != nil {
		t.Fatal(err)
	}
	arch := func() *pqsrc.Source {
		s, err := pqsrc.New(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if res, err := check.Run(ctx, src(), arch(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check MLflow vs archive: %v %v", err, res.Differences)
	}
	out, err := exec.Command(testenv.Python(t), "-c", `import sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1] + "/inputs", format="parquet").to_table().to_pylist()
print(sorted((r["name"], r["source_type"], r["tags"]) for r in t))`, dir).CombinedOutput()
	wantRows := `[('digits', 's3', '[{"key":"mlflow.data.context","value":"training"}]'), ('frame', 'http', '[{"key":"mlflow.data.context","value":"eval"}]')]`
	if err != nil || strings.TrimSpace(string(out)) != wantRows {
		t.Fatalf("pyarrow reads the archive's inputs table as %s (%v), want %s", out, err, wantRows)
	}

	t.Logf("%s archive checked", time.Now().Format(time.TimeOnly))
	dst, read, dstPrefix := pair(t, srv.URL)
	rep, err := transfer.Copy(ctx, arch(), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 2 {
		t.Fatalf("Parquet to MLflow: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	if n := coverageOf(rep, "re-created with new ids"); n != 2 {
		t.Errorf("coverage %v: want the two logged models counted as re-created", rep.Coverage)
	}
	if res, err := check.Run(ctx, src(), read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check MLflow vs MLflow: %v %v", err, res.Differences)
	}

	want, got := readContents(t, srv.URL, srcPrefix+"exp", srv.URL, dstPrefix+"exp")
	if len(want["with-inputs"].Inputs) != 2 {
		t.Fatalf("content.py logged %+v", want)
	}
	for name, w := range want {
		if !reflect.DeepEqual(w.Inputs, got[name].Inputs) {
			t.Errorf("run %s: dataset inputs MLflow's client reads from the destination:\n got %v\nwant %v", name, got[name].Inputs, w.Inputs)
		}
	}
	// The logged models (whose files MLflow 3 keeps under the model, not
	// the run) went through the archive as run files and arrive as logged
	// models again, files byte for byte.
	wantModels, _ := modelsWithoutIDs(want["with-model"])
	gotModels, _ := modelsWithoutIDs(got["with-model"])
	if len(wantModels) != 2 {
		t.Fatalf("content.py logged models %+v", want["with-model"].Models)
	}
	if !reflect.DeepEqual(gotModels, wantModels) {
		t.Errorf("logged models after MLflow -> archive -> MLflow:\n got %+v\nwant %+v", gotModels, wantModels)
	}
	if len(got["with-model"].RunFiles) != 0 {
		t.Errorf("the destination run holds model files of its own: %v", got["with-model"].RunFiles)
	}
}
