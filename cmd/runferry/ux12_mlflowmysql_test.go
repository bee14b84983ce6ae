package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// ux12CaseProjectsPy has the real wandb SDK (offline) log one run in each of
// two projects whose names differ only in case. Usage: DIR.
var ux12CaseProjectsPy = wandbOfflinePy("", `
os.chdir(sys.argv[1])
for p in ("Vision", "vision"):
    run = wandb.init(project=p, id="run" + p, name="run-" + p, dir=".", settings=wandb.Settings(x_disable_stats=True))
    run.log({"acc": 0.5})
    run.finish()
`)

// TestMLflowCaseBlindStoreMergesNoExperiments: an MLflow server whose store
// is MariaDB in a database of MariaDB's default case-insensitive collation
// (utf8mb4_general_ci) answers get-by-name "vision" with the experiment
// "Vision" and refuses to create "vision" beside it. The copy took that
// experiment: both W&B projects' runs went into one MLflow experiment, exit
// 0 ("copied 2 runs"), only check saw it. Now the run of the project that
// reaches the server second fails, named with why, the copy exits 3, check
// names it missing, and the experiment written holds its own run only.
func TestMLflowCaseBlindStoreMergesNoExperiments(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	if out, err := exec.Command(testenv.Python(t), "-c", "import pymysql").CombinedOutput(); err != nil {
		testenv.Unavailable(t, "PyMySQL in the venv (requirements-test.txt)", strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	runWandbPy(t, ux12CaseProjectsPy, dir)
	src := "wandb:" + dir
	m := testenv.SharedMariaDB(t)
	if err := m.Exec("", "CREATE DATABASE ux12_mlflow_ci CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartMLflow(t, testenv.WithBackendStoreURI("mysql+pymysql://"+m.User+":"+m.Password+"@127.0.0.1:"+strconv.Itoa(m.Port)+"/ux12_mlflow_ci"))
	dst := "mlflow+" + srv.URL

	code, out, errOut := runCLI(t, "copy", src, dst, "--no-state")
	if code != exitRunsFailed || !strings.Contains(out, `the server gives its experiment "ent/`) || !strings.Contains(out, "copied 1 run (1 point") {
		t.Errorf("copy: exit %d, want %d naming the run of one project failed\n%s\n%s", code, exitRunsFailed, out, errOut)
	}
	// What MLflow holds: each experiment by name with its runs' names.
	body, _ := json.Marshal(map[string]any{"max_results": 100})
	resp, err := http.Post(srv.URL+"/api/2.0/mlflow/experiments/search", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var exps struct {
		Experiments []struct {
			ID   string `json:"experiment_id"`
			Name string `json:"name"`
		} `json:"experiments"`
	}
	err = json.NewDecoder(resp.Body).Decode(&exps)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	held := map[string][]string{}
	for _, e := range exps.Experiments {
		body, _ := json.Marshal(map[string]any{"experiment_ids": []string{e.ID}, "max_results": 100})
		resp, err := http.Post(srv.URL+"/api/2.0/mlflow/runs/search", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var runs struct {
			Runs []struct {
				Info struct {
					RunName string `json:"run_name"`
				} `json:"info"`
			} `json:"runs"`
		}
		err = json.NewDecoder(resp.Body).Decode(&runs)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		held[e.Name] = []string{}
		for _, r := range runs.Runs {
			held[e.Name] = append(held[e.Name], r.Info.RunName)
		}
	}
	// The two runs go concurrently: either project may be the one written.
	kept, failed := "Vision", "vision"
	if _, ok := held["ent/vision"]; ok {
		kept, failed = failed, kept
	}
	want := map[string][]string{"Default": {}, "ent/" + kept: {"run-" + kept}}
	if b, w := mustJSON(held), mustJSON(want); b != w {
		t.Errorf("MLflow holds %s, want %s", b, w)
	}
	if !strings.Contains(out, "FAILED wandb:ent/"+failed+"/run"+failed+" (run-"+failed+")") {
		t.Errorf("copy: the run of %q not named failed\n%s", failed, out)
	}
	code, out, errOut = runCLI(t, "check", src, dst)
	if code != exitDifferences || !strings.Contains(out, "wandb:ent/"+failed+"/run"+failed+": missing run") {
		t.Errorf("check: exit %d, want %d naming the missing run\n%s\n%s", code, exitDifferences, out, errOut)
	}
}
