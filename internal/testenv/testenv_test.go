package testenv_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runferry/runferry/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// mlflowCall posts (or gets, when body is nil) a REST call and decodes the JSON answer.
func mlflowCall(t *testing.T, base, method, path string, body any, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("%s %s: decode %q: %v", method, path, data, err)
	}
}

// roundTripExperiment creates an experiment and reads it back by name.
func roundTripExperiment(t *testing.T, srv *testenv.MLflowServer, name string) {
	t.Helper()
	var created struct {
		ExperimentID string `json:"experiment_id"`
	}
	mlflowCall(t, srv.URL, http.MethodPost, "/api/2.0/mlflow/experiments/create",
		map[string]any{"name": name, "tags": []map[string]string{{"key": "owner", "value": "testenv"}}}, &created)
	if created.ExperimentID == "" {
		t.Fatalf("create returned no experiment_id")
	}
	var got struct {
		Experiment struct {
			ExperimentID   string `json:"experiment_id"`
			Name           string `json:"name"`
			LifecycleStage string `json:"lifecycle_stage"`
			Tags           []struct{ Key, Value string }
		} `json:"experiment"`
	}
	mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="+url.QueryEscape(name), nil, &got)
	e := got.Experiment
	if e.ExperimentID != created.ExperimentID || e.Name != name || e.LifecycleStage != "active" {
		t.Fatalf("get-by-name = %+v, want id %s name %s active", e, created.ExperimentID, name)
	}
	if len(e.Tags) != 1 || e.Tags[0].Key != "owner" || e.Tags[0].Value != "testenv" {
		t.Fatalf("tags = %+v, want owner=testenv", e.Tags)
	}
}

// TestStartMLflow starts a private server and round-trips an experiment; unless -short, it
// kills the server like a crash (SIGKILL to the group) and restarts it: same URL, and what
// was written before the kill is still there. Then Stop takes the whole process group down.
// (One server for both halves: a start costs 8-10 s of CPU, docs/TESTING.md.)
func TestStartMLflow(t *testing.T) {
	srv := testenv.StartMLflow(t)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || srv.Port == 0 {
		t.Fatalf("URL %q port %d", srv.URL, srv.Port)
	}
	roundTripExperiment(t, srv, "smoke-ünï-"+t.Name())
	inProcess(t, srv)
	guardedAsMLflowServes(t, srv)
	if !testing.Short() { // the restarts start the server twice more
		killRestart(t, srv)
	}

	// Stop must take the whole process group (uvicorn workers included) down.
	pgid := srv.Cmd.Process.Pid
	srv.Stop()
	if testenv.GroupAlive(pgid) {
		t.Fatalf("process group %d still alive after Stop", pgid)
	}
	if _, err := http.Get(srv.URL + "/health"); err == nil {
		t.Fatalf("server still answers after Stop")
	}
}

// inProcess checks that srv serves from the one process testenv started (mlflowserve.py:
// `mlflow server` running its uvicorn app itself, one import of MLflow), unless
// RUNFERRY_TESTENV_MLFLOW_CHILD=1 asked for MLflow's own child process, and that its SQLite
// store runs with synchronous=OFF (read back by the script), unless
// RUNFERRY_TESTENV_SQLITE_SYNC=1.
func inProcess(t *testing.T, srv *testenv.MLflowServer) {
	t.Helper()
	pids := testenv.GroupPids(srv.Cmd.Process.Pid)
	if os.Getenv(testenv.MLflowChildEnv) == "1" {
		if len(pids) < 2 {
			t.Fatalf("%s=1: the server's process group holds %v, want mlflow server and its uvicorn child", testenv.MLflowChildEnv, pids)
		}
		return
	}
	if log := srv.LogTail(400); !strings.Contains(log, testenv.InProcessLog) {
		t.Fatalf("the server's log does not say %q:\n%s", testenv.InProcessLog, log)
	}
	if os.Getenv(testenv.SQLiteSyncEnv) != "1" && strings.HasPrefix(srv.BackendURI, "sqlite:") {
		if log := srv.LogTail(400); !strings.Contains(log, testenv.SQLiteNoSyncLog) {
			t.Fatalf("the server's log does not say %q (its SQLite store syncs at every commit):\n%s", testenv.SQLiteNoSyncLog, log)
		}
	}
	if len(pids) != 1 || pids[0] != srv.Cmd.Process.Pid {
		t.Fatalf("the server's process group holds %v, want only the server %d", pids, srv.Cmd.Process.Pid)
	}
}

// guardedAsMLflowServes checks what `mlflow server --allowed-hosts` sets up in its uvicorn
// child, the part of MLflow's app built when mlflow.server is imported (mlflowserve.py): a
// Host header outside the allowed hosts is refused (403), so is a cross-origin POST to the
// REST API, and the answers carry MLflow's security headers (X-Frame-Options SAMEORIGIN).
func guardedAsMLflowServes(t *testing.T, srv *testenv.MLflowServer) {
	t.Helper()
	do := func(method, path, host, origin string) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(`{"name": "guarded-` + t.Name() + `"}`)
		}
		req, err := http.NewRequest(method, srv.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp, string(data)
	}
	const search = "/api/2.0/mlflow/experiments/search?max_results=1"
	if resp, body := do(http.MethodGet, search, "", ""); resp.StatusCode != http.StatusOK ||
		resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" {
		t.Fatalf("GET %s: %s, X-Frame-Options %q, want 200 and SAMEORIGIN: %s", search, resp.Status, resp.Header.Get("X-Frame-Options"), body)
	}
	if resp, body := do(http.MethodGet, search, "runferry-foreign.example", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET %s with a foreign Host: %s, want 403: %s", search, resp.Status, body)
	}
	if resp, body := do(http.MethodPost, "/api/2.0/mlflow/experiments/create", "", "http://runferry-foreign.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-origin POST: %s, want 403: %s", resp.Status, body)
	}
}

// killRestart kills srv like a crash and restarts it, twice (the second time while it runs).
func killRestart(t *testing.T, srv *testenv.MLflowServer) {
	t.Helper()
	url0 := srv.URL
	roundTripExperiment(t, srv, "before-kill")
	pgid := srv.Cmd.Process.Pid
	srv.Kill()
	if testenv.GroupAlive(pgid) {
		t.Fatalf("process group %d still alive after Kill", pgid)
	}
	if _, err := http.Get(srv.URL + "/health"); err == nil {
		t.Fatalf("server still answers after Kill")
	}
	srv.Restart(t)
	if srv.URL != url0 || srv.Cmd.Process.Pid == pgid {
		t.Fatalf("after Restart: URL %s (was %s), pid %d (was %d)", srv.URL, url0, srv.Cmd.Process.Pid, pgid)
	}
	var got struct {
		Experiment struct{ Name string } `json:"experiment"`
	}
	mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=before-kill", nil, &got)
	if got.Experiment.Name != "before-kill" {
		t.Fatalf("experiment written before the kill: %+v", got)
	}
	roundTripExperiment(t, srv, "after-restart")
	inProcess(t, srv)
	srv.Restart(t) // a restart of a running server kills it first
	roundTripExperiment(t, srv, "after-second-restart")
}

func TestSharedMLflow(t *testing.T) {
	a := testenv.SharedMLflow(t)
	b := testenv.SharedMLflow(t)
	if a != b {
		t.Fatalf("SharedMLflow returned two servers: %s and %s", a.URL, b.URL)
	}
	roundTripExperiment(t, a, "shared-"+t.Name())
}

// TestSQLiteTemplate: a fresh SQLite-backed server started on the binary's migrated
// template (made from its first such server) answers as a migrated one does: its own
// Default experiment (id 0, its own artifact location), an experiment round trip, ids from
// 1 as on an empty store; and a store holding more than the migrations wrote gives no
// template.
func TestSQLiteTemplate(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	if !srv.FromTemplate { // run alone: the shared server was the first and gave the template
		srv = testenv.StartMLflow(t)
	}
	if made, err := testenv.SQLiteTemplateStatus(); !made || !srv.FromTemplate {
		t.Fatalf("template made %v (%v), server from it %v", made, err, srv.FromTemplate)
	}
	var def struct {
		Experiment struct {
			ExperimentID     string `json:"experiment_id"`
			Name             string `json:"name"`
			ArtifactLocation string `json:"artifact_location"`
			LifecycleStage   string `json:"lifecycle_stage"`
		} `json:"experiment"`
	}
	mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/experiments/get?experiment_id=0", nil, &def)
	if e := def.Experiment; e.Name != "Default" || e.ArtifactLocation != "mlflow-artifacts:/0" || e.LifecycleStage != "active" {
		t.Fatalf("Default experiment %+v", e)
	}
	roundTripExperiment(t, srv, "template-"+t.Name())
	var first struct {
		Experiment struct {
			ExperimentID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	mlflowCall(t, srv.URL, http.MethodGet, "/api/2.0/mlflow/experiments/get-by-name?experiment_name="+url.QueryEscape("template-"+t.Name()), nil, &first)
	if srv != testenv.SharedMLflow(t) && first.Experiment.ExperimentID != "1" {
		t.Fatalf("first experiment on a template store has id %s, want 1", first.Experiment.ExperimentID)
	}
	if _, err := testenv.MakeSQLiteTemplate(strings.TrimPrefix(srv.BackendURI, "sqlite:///")); err == nil ||
		!strings.Contains(err.Error(), "table experiments holds") {
		t.Fatalf("a template from a store holding an experiment: err %v, want table experiments holds", err)
	}
}

func TestSharedMLflowOther(t *testing.T) {
	a, b := testenv.SharedMLflow(t), testenv.SharedMLflowOther(t)
	if a == b || a.URL == b.URL {
		t.Fatalf("SharedMLflowOther returned SharedMLflow's server %s", a.URL)
	}
	if again := testenv.SharedMLflowOther(t); again != b {
		t.Fatalf("SharedMLflowOther returned two servers: %s and %s", b.URL, again.URL)
	}
	roundTripExperiment(t, b, "other-"+t.Name())
}

func TestStartMLflowPostgresBackend(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	srv := testenv.StartMLflow(t, testenv.WithPostgres(pg))
	if !strings.HasPrefix(srv.BackendURI, "postgresql+psycopg2://") {
		t.Fatalf("backend %q, want postgresql+psycopg2://", srv.BackendURI)
	}
	roundTripExperiment(t, srv, "pg-backed")
	inProcess(t, srv)

	// The experiment must really be in PostgreSQL.
	dsn := strings.Replace(srv.BackendURI, "postgresql+psycopg2://", "postgres://", 1)
	conn := connect(t, dsn)
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM experiments WHERE name = 'pg-backed'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("experiments named pg-backed in PostgreSQL: %d, want 1", n)
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestStartPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	want := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port)
	if pg.DSN != want {
		t.Fatalf("DSN %q, want %q", pg.DSN, want)
	}
	ctx := context.Background()
	conn := connect(t, pg.DSN)
	if _, err := conn.Exec(ctx, `CREATE TABLE points (run text, step bigint, value double precision)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO points VALUES ('r1', 0, 0.5), ('r1', 7, -1.25), ('ré', 3, 'NaN')`); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `SELECT run, step, value FROM points ORDER BY run, step`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var run string
		var step int64
		var value float64
		if err := rows.Scan(&run, &step, &value); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s/%d/%g", run, step, value))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if w := "r1/0/0.5 r1/7/-1.25 ré/3/NaN"; strings.Join(got, " ") != w {
		t.Fatalf("rows %q, want %q", strings.Join(got, " "), w)
	}

	dsn := pg.CreateDatabase(t, "second")
	conn2 := connect(t, dsn)
	var db string
	if err := conn2.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil || db != "second" {
		t.Fatalf("current_database = %q, %v", db, err)
	}
	conn2.Close(ctx)
	conn.Close(ctx)

	dir := pg.Dir
	pg.Stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster dir %s still exists after Stop (%v)", dir, err)
	}
}

// orphanMode is set in a re-exec of this test binary that starts a server and then dies
// without cleaning up; see startOrphan.
var orphanMode = os.Getenv("RUNFERRY_TESTENV_ORPHAN")

// TestOrphanHelper is not a test: in a child started by startOrphan it starts the server
// named by RUNFERRY_TESTENV_ORPHAN ("mlflow", "mlflow-child", "postgres", "mariadb" or
// "gcs"), prints its process group,
// the server's URL or directory and its own pid, and then, with RUNFERRY_TESTENV_DIE=panic,
// panics on a goroutine of its own, which ends the binary the way go test -timeout does (no
// t.Cleanup, no TestMain epilogue); otherwise it sleeps until the parent kills it (or go
// test, its parent, by a signal).
func TestOrphanHelper(t *testing.T) {
	if orphanMode == "" {
		t.Skip("helper for TestServersDieWithTestBinary")
	}
	var pgid int
	var info string
	fromTemplate := false
	switch orphanMode {
	case "mlflow":
		srv := testenv.StartMLflow(t)
		pgid, info, fromTemplate = srv.Cmd.Process.Pid, srv.URL, srv.FromTemplate
	case "mlflow-child":
		// An option that changes what mlflow.server sets up at its import (CORS origins)
		// makes mlflowserve.py start uvicorn in a child process, as `mlflow server` does.
		srv := testenv.StartMLflow(t, testenv.WithServerArgs("--cors-allowed-origins", "http://runferry-cors.example"))
		pgid, info, fromTemplate = srv.Cmd.Process.Pid, srv.URL, srv.FromTemplate
	case "postgres":
		pg := testenv.StartPostgres(t)
		pgid, info = postmasterPID(t, pg.Dir), pg.Dir
	case "mariadb":
		m := testenv.SharedMariaDB(t)
		data, err := os.ReadFile(m.Dir + "/mariadb.pid")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Sscan(string(data), &pgid)
		info = m.Dir
	case "gcs":
		g := testenv.SharedGCS(t)
		pgid, info = g.PID(), g.Endpoint
	}
	fmt.Printf("ORPHAN %d %s %d %t\n", pgid, info, os.Getpid(), fromTemplate)
	os.Stdout.Sync()
	if os.Getenv("RUNFERRY_TESTENV_DIE") == "panic" {
		// Panic once the parent has seen the server's group (it writes a
		// line): a server that dies at once, like fake-gcs-server, would
		// otherwise be gone before the parent looks.
		bufio.NewReader(os.Stdin).ReadString('\n')
		go func() { panic("simulated test timeout") }()
	}
	if os.Getenv("RUNFERRY_TESTENV_DIE") == "gotest-sigterm" {
		time.Sleep(time.Hour) // only testenv's guard may end this one when go test is gone
	}
	// Wait to be killed, but not past the parent test that started this helper: a parent
	// that ends without its cleanup (its own timeout) must not leave a helper behind.
	for ppid := os.Getppid(); os.Getppid() == ppid; {
		time.Sleep(time.Second)
	}
}

// postmasterPID reads the postmaster's pid (its process group too) from postmaster.pid.
func postmasterPID(t *testing.T, dir string) int {
	data, err := os.ReadFile(dir + "/data/postmaster.pid")
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(data), &pid)
	return pid
}

// startOrphan re-executes this test binary in TestOrphanHelper mode (through go test when
// die is "gotest-sigterm"), waits until the server is up and returns the child, the server's
// process group, the URL or cluster directory, the helper's pid and its stdin.
func startOrphan(t *testing.T, server, die string) (*exec.Cmd, int, string, int, io.Writer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanHelper$", "-test.v", "-test.timeout=10m")
	if die == "gotest-sigterm" {
		gobin, err := exec.LookPath("go")
		if err != nil {
			testenv.Unavailable(t, "go", err.Error())
		}
		// The package is this test's working folder; its build is in the cache.
		cmd = exec.Command(gobin, "test", "-count=1", "-v", "-run=^TestOrphanHelper$", "-timeout=10m", ".")
	}
	cmd.Env = append(os.Environ(), "RUNFERRY_TESTENV_ORPHAN="+server, "RUNFERRY_TESTENV_DIE="+die)
	// An MLflow helper's server starts on this binary's migrated SQLite store (the shared
	// server's, made once a binary) instead of migrating its own.
	handoff := ""
	if strings.HasPrefix(server, "mlflow") {
		testenv.SharedMLflow(t)
		var err error
		if handoff, err = testenv.WriteSQLiteTemplate(filepath.Join(t.TempDir(), "template.db")); err != nil {
			t.Fatal(err)
		}
		if handoff != "" {
			cmd.Env = append(cmd.Env, handoff)
		}
	}
	release, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string)
	var all strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if strings.HasPrefix(sc.Text(), "ORPHAN ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("helper ended before its server was up:\n%s%s", all.String(), stderr.String())
		}
		var pgid, pid int
		var info string
		var fromTemplate bool
		if _, err := fmt.Sscan(strings.TrimPrefix(line, "ORPHAN "), &pgid, &info, &pid, &fromTemplate); err != nil {
			t.Fatalf("helper line %q: %v", line, err)
		}
		if handoff != "" && !fromTemplate {
			t.Fatalf("the helper's MLflow server migrated its own store, though this binary handed it its template (%s)", handoff)
		}
		return cmd, pgid, info, pid, release
	case <-time.After(5 * time.Minute):
		t.Fatalf("helper did not start its server in 5 minutes")
	}
	return nil, 0, "", 0, nil
}

// watchdogsOf lists the pids of the testenv watchdogs that watch process pid.
func watchdogsOf(pid int) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cl, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(bytes.TrimRight(cl, "\x00")), "\x00")
		for i, a := range args {
			if a == "runferry-testenv-watchdog" && i+1 < len(args) && args[i+1] == fmt.Sprint(pid) {
				var p int
				fmt.Sscan(e.Name(), &p)
				pids = append(pids, p)
			}
		}
	}
	return pids
}

// groupCommands lists the command lines of the live processes in process group pgid.
func groupCommands(pgid int) []string {
	var cmds []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[2] == fmt.Sprint(pgid) {
			cl, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			cmds = append(cmds, strings.ReplaceAll(string(bytes.TrimRight(cl, "\x00")), "\x00", " "))
		}
	}
	return cmds
}

// slicesFilter returns the strings of list that hold sub.
func slicesFilter(list []string, sub string) []string {
	var out []string
	for _, s := range list {
		if strings.Contains(s, sub) {
			out = append(out, s)
		}
	}
	return out
}

// processAlive reports whether process pid exists and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// waitGroupGone fails t unless process group pgid is gone within limit.
func waitGroupGone(t *testing.T, pgid int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for testenv.GroupAlive(pgid) {
		if time.Since(start) > limit {
			t.Fatalf("process group %d still alive %s after the test binary died: %q", pgid, limit, groupCommands(pgid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("process group %d gone %s after the test binary died", pgid, time.Since(start).Round(time.Millisecond))
}

// TestServersDieWithTestBinary: a test binary that started a server and dies without
// cleaning up, by SIGKILL, by a panic like go test -timeout's, by SIGTERM or SIGINT (CI
// cancel, Ctrl-C, `pkill -f`; sent to its watchdogs too, as a `pkill -f runferry` does), by
// SIGKILL to it and its watchdogs, or because go test, its parent, got SIGTERM, takes the
// server's whole process group with it within a few seconds.
func TestServersDieWithTestBinary(t *testing.T) {
	if orphanMode != "" {
		t.Skip("in helper mode")
	}
	for _, tc := range []struct{ server, die string }{
		{"mlflow", "sigkill"},
		{"mlflow", "panic"},
		{"postgres", "sigkill"},
		{"postgres", "panic"},
		{"mariadb", "sigkill"},
		{"mariadb", "panic"},
		{"gcs", "sigkill"},
		{"gcs", "panic"},
		// SIGTERM or SIGINT, as `pkill -f` sends it, to the binary and its watchdogs.
		{"mlflow", "sigterm"},
		{"mlflow", "sigint"},
		{"mlflow", "sigkill-all"}, // SIGKILL to both: only parent-death signals are left
		// The same with uvicorn in a child process (mlflowserve.py's fallback): the child has
		// no parent-death signal from Go, only pythonDeathHook's.
		{"mlflow-child", "sigkill-all"},
		{"mlflow", "gotest-sigterm"}, // SIGTERM to go test alone
		{"postgres", "sigterm"},
		{"postgres", "sigint"},
		{"mariadb", "sigterm"},
		{"mariadb", "sigint"},
		{"gcs", "sigterm"},
		{"gcs", "sigint"},
	} {
		t.Run(tc.server+"/"+tc.die, func(t *testing.T) {
			// Each case waits on its own helper, server and watchdogs (their starts, the
			// signals, the polls until the group is gone): the cases overlap their waits,
			// -test.parallel (the cores) at a time. Not the GCS cases: SharedGCS sets the
			// test's environment (t.Setenv), which a parallel test may not; they take
			// under a second each and run first.
			if tc.server != "gcs" {
				t.Parallel()
			}
			switch tc.server {
			case "mlflow", "mlflow-child":
				testenv.VenvBin(t, "mlflow") // skip (or fail under CI) without the venv
			case "postgres":
				testenv.SharedPostgres(t) // likewise without PostgreSQL (one cluster a binary, not one a case)
			case "mariadb":
				testenv.SharedMariaDB(t) // likewise without MariaDB
			case "gcs":
				testenv.SharedGCS(t) // likewise without fake-gcs-server
			}
			child, pgid, info, helper, release := startOrphan(t, tc.server, tc.die)
			members := groupCommands(pgid)
			if len(members) == 0 {
				t.Fatalf("no process in group %d while the helper runs", pgid)
			}
			fmt.Fprintln(release) // a panicking helper panics now
			if uvicorns := len(slicesFilter(members, "uvicorn")); tc.server == "mlflow-child" && uvicorns != 1 {
				t.Fatalf("server's group %q: %d uvicorn processes, want its child", members, uvicorns)
			}
			if tc.server == "mlflow" && len(members) != 1 {
				t.Fatalf("server's group %q, want the server alone (uvicorn in its process)", members)
			}
			if strings.HasPrefix(tc.server, "mlflow") {
				// MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: no job runner and its workers.
				for _, m := range members {
					if strings.Contains(m, "huey") || strings.Contains(m, "job") {
						t.Errorf("job runner process in the server's group: %q", m)
					}
				}
			}
			switch tc.die {
			case "sigkill":
				_ = child.Process.Kill()
			case "gotest-sigterm":
				_ = child.Process.Signal(syscall.SIGTERM)
			case "sigterm", "sigint", "sigkill-all":
				dogs := watchdogsOf(helper)
				if len(dogs) == 0 {
					t.Fatalf("no watchdog of helper %d", helper)
				}
				sig := map[string]syscall.Signal{"sigterm": syscall.SIGTERM, "sigint": syscall.SIGINT, "sigkill-all": syscall.SIGKILL}[tc.die]
				for _, p := range append(dogs, helper) {
					_ = syscall.Kill(p, sig)
				}
			}
			err := child.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.Success() {
				t.Fatalf("helper ended with %v, want a signal or a panic exit", err)
			}
			if tc.die == "gotest-sigterm" {
				// go test is gone; the test binary it started must go too.
				for stop := time.Now().Add(8 * time.Second); processAlive(helper); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(stop) {
						t.Fatalf("test binary %d still runs 8s after go test ended", helper)
					}
				}
			}
			waitGroupGone(t, pgid, 8*time.Second)
			switch tc.server {
			case "mlflow", "mlflow-child":
				if _, err := http.Get(info + "/health"); err == nil {
					t.Fatalf("%s still answers", info)
				}
			case "gcs":
				if _, err := http.Get(info + "/storage/v1/b"); err == nil {
					t.Fatalf("%s still answers", info)
				}
			case "postgres", "mariadb":
				for stop := time.Now().Add(8 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					if _, err := os.Stat(info); os.IsNotExist(err) {
						break
					}
					if time.Now().After(stop) {
						t.Fatalf("cluster directory %s left behind", info)
					}
				}
			}
		})
	}
}

// TestRandReplaysSeed: RUNFERRY_TEST_SEED gives the same sequence every time, and the seed
// in use is what the log names.
func TestRandReplaysSeed(t *testing.T) {
	draw := func(t *testing.T) []uint64 {
		r := testenv.Rand(t)
		var got []uint64
		for range 8 {
			got = append(got, r.Uint64())
		}
		return got
	}
	t.Setenv(testenv.SeedEnv, "12345")
	a, b := draw(t), draw(t)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("same seed, different draws: %v and %v", a, b)
	}
	t.Setenv(testenv.SeedEnv, "12346")
	if c := draw(t); fmt.Sprint(a) == fmt.Sprint(c) {
		t.Fatalf("seeds 12345 and 12346 drew the same: %v", c)
	}
	t.Setenv(testenv.SeedEnv, "")
	s1, err1 := testenv.Seed()
	time.Sleep(time.Microsecond)
	s2, err2 := testenv.Seed()
	if err1 != nil || err2 != nil || s1 == s2 {
		t.Fatalf("unset seed: %d, %d (%v, %v), want two different clock seeds", s1, s2, err1, err2)
	}
	t.Setenv(testenv.SeedEnv, "x12")
	if _, err := testenv.Seed(); err == nil || !strings.Contains(err.Error(), `RUNFERRY_TEST_SEED="x12"`) {
		t.Fatalf("malformed seed: %v", err)
	}
}

// TestRandLogsSeed runs a child test that draws with a clock seed, then replays the logged
// seed and requires the same draws.
func TestRandLogsSeed(t *testing.T) {
	if os.Getenv("RUNFERRY_TESTENV_RAND_CHILD") == "1" {
		r := testenv.Rand(t)
		fmt.Printf("DRAW %d %d %d\n", r.Uint64(), r.Uint64(), r.Uint64())
		return
	}
	run := func(seed string) (log, draw string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRandLogsSeed$", "-test.v")
		cmd.Env = append(os.Environ(), "RUNFERRY_TESTENV_RAND_CHILD=1", testenv.SeedEnv+"="+seed)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			line = strings.TrimSpace(line)
			if i := strings.Index(line, "random seed "); i >= 0 {
				log = line[i:]
			}
			if strings.HasPrefix(line, "DRAW ") {
				draw = line
			}
		}
		return log, draw
	}
	log1, draw1 := run("")
	var seed uint64
	if _, err := fmt.Sscanf(log1, "random seed %d", &seed); err != nil || draw1 == "" {
		t.Fatalf("child logged %q, drew %q", log1, draw1)
	}
	want := fmt.Sprintf("random seed %d (replay: RUNFERRY_TEST_SEED=%d go test -run '^TestRandLogsSeed$')", seed, seed)
	if log1 != want {
		t.Fatalf("log line %q, want %q", log1, want)
	}
	if _, draw2 := run(fmt.Sprint(seed)); draw2 != draw1 {
		t.Fatalf("replay of seed %d drew %q, first run %q", seed, draw2, draw1)
	}
}
