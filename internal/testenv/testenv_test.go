package testenv_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
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

func TestStartMLflow(t *testing.T) {
	srv := testenv.StartMLflow(t)
	if !strings.HasPrefix(srv.URL, "http://127.0.0.1:") || srv.Port == 0 {
		t.Fatalf("URL %q port %d", srv.URL, srv.Port)
	}
	roundTripExperiment(t, srv, "smoke-ünï-"+t.Name())

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

// TestMLflowKillRestart kills a server like a crash (SIGKILL to the group) and restarts
// it: same URL, and what was written before the kill is still there.
func TestMLflowKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an MLflow server twice")
	}
	srv := testenv.StartMLflow(t)
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

func TestStartMLflowPostgresBackend(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	srv := testenv.StartMLflow(t, testenv.WithPostgres(pg))
	if !strings.HasPrefix(srv.BackendURI, "postgresql+psycopg2://") {
		t.Fatalf("backend %q, want postgresql+psycopg2://", srv.BackendURI)
	}
	roundTripExperiment(t, srv, "pg-backed")

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

// TestWatchdogKillsOrphans runs this test binary as a child that starts a server and dies
// by SIGKILL; the watchdog must take the server down.
func TestWatchdogKillsOrphans(t *testing.T) {
	if os.Getenv("RUNFERRY_TESTENV_ORPHAN") == "1" {
		pg := testenv.StartPostgres(t)
		fmt.Printf("PGDIR=%s\n", pg.Dir)
		os.Stdout.Sync()
		time.Sleep(time.Hour)
		return
	}
	testenv.StartPostgres(t).Stop() // skip/fail early when PostgreSQL is missing
	cmd := exec.Command(os.Args[0], "-test.run=^TestWatchdogKillsOrphans$", "-test.v")
	cmd.Env = append(os.Environ(), "RUNFERRY_TESTENV_ORPHAN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var dir string
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 512)
	deadline := time.Now().Add(60 * time.Second)
	for dir == "" && time.Now().Before(deadline) {
		n, err := out.Read(tmp)
		buf = append(buf, tmp[:n]...)
		for _, line := range strings.Split(string(buf), "\n") {
			if strings.HasPrefix(line, "PGDIR=") && strings.HasSuffix(string(buf), "\n") {
				dir = strings.TrimPrefix(line, "PGDIR=")
			}
		}
		if err != nil {
			break
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if dir == "" {
		t.Fatalf("child did not report its cluster; output:\n%s", buf)
	}
	for stop := time.Now().Add(15 * time.Second); time.Now().Before(stop); {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("orphaned cluster %s was not cleaned up by the watchdog", dir)
}
