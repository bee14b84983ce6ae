package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MLflowServer is a real `mlflow server` from the project venv on a loopback port: MLflow's
// own command with testenv's arguments, its FastAPI app served by uvicorn in the command's
// process (mlflowserve.py) instead of a child process that imports MLflow again, one
// process to stop, unless an option needs the child (the log says which).
type MLflowServer struct {
	URL         string // http://127.0.0.1:PORT, no trailing slash
	Port        int
	BackendURI  string // sqlite:///DIR/mlflow.db unless WithBackendStoreURI was given
	ArtifactDir string // --artifacts-destination
	LogPath     string // the server's stdout and stderr
	Cmd         *exec.Cmd
	// FromTemplate: the fresh SQLite store began as a copy of the binary's migrated
	// template (mlflowtemplate.go) instead of being migrated by this server.
	FromTemplate bool

	svc      *service
	ownedDir string // removed by Stop (shared servers)
}

// MLflowOption changes how StartMLflow starts the server.
type MLflowOption func(*mlflowConfig)

type mlflowConfig struct {
	backendURI   string
	postgres     *Postgres
	dir          string
	startTimeout time.Duration
	extraArgs    []string
}

// WithBackendStoreURI uses the given --backend-store-uri (any SQLAlchemy URI the venv can
// drive) instead of a fresh SQLite file.
func WithBackendStoreURI(uri string) MLflowOption {
	return func(c *mlflowConfig) { c.backendURI = uri }
}

// WithPostgres stores the server's data in a new database of pg, through psycopg2 (from
// requirements-test.txt).
func WithPostgres(pg *Postgres) MLflowOption {
	return func(c *mlflowConfig) { c.postgres = pg }
}

// WithStartTimeout changes how long StartMLflow waits for /health (default 90s: the first
// start migrates the database).
func WithStartTimeout(d time.Duration) MLflowOption {
	return func(c *mlflowConfig) { c.startTimeout = d }
}

// WithServerArgs appends raw arguments to `mlflow server`.
func WithServerArgs(args ...string) MLflowOption {
	return func(c *mlflowConfig) { c.extraArgs = append(c.extraArgs, args...) }
}

// StartMLflow starts a server with a SQLite backend store and proxied artifacts in a
// temporary directory, waits for GET /health, and stops it (whole process group) when t
// ends. A missing venv skips the test (fails it under CI).
func StartMLflow(t testing.TB, opts ...MLflowOption) *MLflowServer {
	t.Helper()
	cfg := mlflowConfig{startTimeout: defaultStartTimeout, dir: t.TempDir()}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.postgres != nil && cfg.backendURI == "" {
		name := fmt.Sprintf("mlflow_%d", time.Now().UnixNano())
		cfg.backendURI = strings.Replace(cfg.postgres.CreateDatabase(t, name), "postgres://", "postgresql+psycopg2://", 1)
	}
	bin := VenvBin(t, "mlflow")
	s, err := startMLflow(bin, cfg)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testenv: MLflow server log tail (%s):\n%s", s.LogPath, s.svc.logTail(40))
		}
		s.Stop()
	})
	return s
}

func startMLflow(bin string, cfg mlflowConfig) (*MLflowServer, error) {
	// A fresh SQLite store starts as a copy of the binary's migrated template, once there is
	// one (mlflowtemplate.go); the first such server migrates its own and gives the template.
	freshDB, fromTemplate := "", false
	if cfg.backendURI == "" {
		freshDB = filepath.Join(cfg.dir, "mlflow.db")
		cfg.backendURI = "sqlite:///" + freshDB
		if tmpl := sqliteTemplateBytes(); tmpl != nil {
			if err := os.WriteFile(freshDB, tmpl, 0o644); err != nil {
				return nil, err
			}
			fromTemplate = true
		}
	}
	s := &MLflowServer{
		BackendURI:  cfg.backendURI,
		ArtifactDir: filepath.Join(cfg.dir, "artifacts"),
		LogPath:     filepath.Join(cfg.dir, "mlflow-server.log"),

		FromTemplate: fromTemplate,
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // another process may grab the free port
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		hostPort := "127.0.0.1:" + strconv.Itoa(port)
		allowedHosts := "127.0.0.1,127.0.0.1:" + strconv.Itoa(port) + ",localhost,localhost:" + strconv.Itoa(port)
		pydeath, err := writePythonDeathHook(cfg.dir)
		if err != nil {
			return nil, err
		}
		prog, args, err := mlflowCommand(bin, pydeath)
		if err != nil {
			return nil, err
		}
		args = append(args, "server",
			"--backend-store-uri", s.BackendURI,
			"--artifacts-destination", s.ArtifactDir,
			"--serve-artifacts",
			"--host", "127.0.0.1",
			"--port", strconv.Itoa(port),
			"--workers", "1",
			"--allowed-hosts", allowedHosts,
		)
		args = append(args, cfg.extraArgs...)
		cmd := exec.Command(prog, args...)
		cmd.Dir = cfg.dir
		cmd.Env = append(os.Environ(),
			// Every Python process of the server (mlflow server, its uvicorn child if any
			// and any workers) dies with its parent: see pythonDeathHook.
			"PYTHONPATH="+joinPath(pydeath, os.Getenv("PYTHONPATH")),
			// What `mlflow server` puts in the environment before it starts uvicorn (from its
			// options and defaults, and its stores' set_tracking_uri and set_registry_uri),
			// given already, so that MLflow sees at its import what the uvicorn child would,
			// and mlflowserve.py can serve in process. The tracking URI is the server's own
			// store: the environment never redirects the server.
			"MLFLOW_TRACKING_URI="+s.BackendURI,
			"MLFLOW_REGISTRY_URI="+s.BackendURI,
			"MLFLOW_SERVER_ALLOWED_HOSTS="+allowedHosts,
			"MLFLOW_SERVER_X_FRAME_OPTIONS=SAMEORIGIN",
			"MLFLOW_ENABLE_WORKSPACES=false",
			"PYTHONUNBUFFERED=1",
			// MLflow 3 otherwise starts a job runner with seven worker processes (~700 MB)
			// that no test uses.
			"MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false",
			"MLFLOW_ENABLE_TELEMETRY=false", "MLFLOW_DISABLE_TELEMETRY=true", "DO_NOT_TRACK=true",
		)
		logFrom := logSize(s.LogPath)
		svc, err := startService("mlflow server", cmd, s.LogPath, syscall.SIGKILL, nil)
		if err != nil {
			return nil, err
		}
		s.svc, s.Cmd, s.Port, s.URL = svc, cmd, port, "http://"+hostPort
		lastErr = waitHealthy(s, cfg.startTimeout)
		if lastErr == nil {
			if freshDB != "" && !fromTemplate {
				noteSQLiteTemplate(freshDB)
			}
			logStart("mlflow start", s.BackendURI+" "+s.uvicornLayout(logFrom)+" server="+strconv.Itoa(cmd.Process.Pid))
			return s, nil
		}
		svc.stopGroup(5 * time.Second)
		if !strings.Contains(svc.logTail(60), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("mlflow server (%s) did not become healthy: %v\nlog tail (%s):\n%s",
		s.BackendURI, lastErr, s.LogPath, tailFile(s.LogPath, 40))
}

// pythonDeathHook is a sitecustomize module, put first on the server's PYTHONPATH, that
// gives every Python process of the server a parent-death signal (SIGKILL), so uvicorn dies
// with the `mlflow server` that started it even when nothing is left to sweep the process
// group (the watchdog killed too, e.g. by `pkill -9 -f`). A process whose parent died before
// the signal was set ends at once. It shadows any other sitecustomize (the venv has none).
const pythonDeathHook = `import ctypes, os, signal
try:
    _want = int(os.environ.get("RUNFERRY_TESTENV_PYPARENT", "0"))
    if ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0:  # PR_SET_PDEATHSIG
        if _want and os.getppid() != _want:
            os._exit(1)
    os.environ["RUNFERRY_TESTENV_PYPARENT"] = str(os.getpid())
except (OSError, AttributeError, ValueError):
    pass
`

// writePythonDeathHook writes pythonDeathHook as DIR/pydeath/sitecustomize.py and returns
// its folder.
func writePythonDeathHook(dir string) (string, error) {
	hook := filepath.Join(dir, "pydeath")
	if err := os.MkdirAll(hook, 0o755); err != nil {
		return "", err
	}
	return hook, os.WriteFile(filepath.Join(hook, "sitecustomize.py"), []byte(pythonDeathHook), 0o644)
}

// joinPath joins a PYTHONPATH entry before an existing list (maybe empty).
func joinPath(first, rest string) string {
	if rest == "" {
		return first
	}
	return first + string(os.PathListSeparator) + rest
}

// waitHealthy polls GET /health until it answers 200 "OK", the process exits, or timeout.
func waitHealthy(s *MLflowServer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	var last error
	for {
		if !s.svc.running() {
			return fmt.Errorf("process exited: %v", s.svc.waitErr)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/health", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.TrimSpace(string(body)) == "OK" {
				return nil
			}
			err = fmt.Errorf("GET /health: %s %q", resp.Status, body)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("timeout after %s: %v", timeout, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop terminates the server and its workers and waits for them. It is idempotent.
func (s *MLflowServer) Stop() {
	if s != nil && s.svc != nil {
		s.svc.stopGroup(3 * time.Second)
	}
	if s != nil && s.ownedDir != "" {
		_ = os.RemoveAll(s.ownedDir)
	}
}

// LogTail returns the last n lines of the server's log, for failure messages.
func (s *MLflowServer) LogTail(n int) string { return tailFile(s.LogPath, n) }

// defaultStartTimeout bounds the wait for /health. A first start migrates a
// fresh database (slow on PostgreSQL, and slower still when the machine's
// two cores are busy with other test binaries).
const defaultStartTimeout = 4 * time.Minute

// Kill ends the server the way a crash would: SIGKILL to its whole process group at once
// (no SIGTERM, no grace), then waits until no process of the group is left. The backend
// store, artifact directory and port are kept for Restart. It is idempotent.
func (s *MLflowServer) Kill() {
	if s == nil || s.svc == nil {
		return
	}
	if s.svc.running() {
		_ = syscall.Kill(-s.svc.cmd.Process.Pid, syscall.SIGKILL)
	}
	s.svc.stopGroup(0) // reaps, sweeps the group, disarms the watchdog
}

// Restart starts the server again with the same command (same port, URL, backend store
// and artifact directory), killing it first if it still runs, and waits for GET /health.
// Use it to test clients against a server that crashes and comes back. t.Cleanup and the
// watchdog cover the new process as they did the first.
func (s *MLflowServer) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	cmd := exec.Command(s.Cmd.Path, s.Cmd.Args[1:]...)
	cmd.Dir, cmd.Env = s.Cmd.Dir, s.Cmd.Env
	logFrom := logSize(s.LogPath)
	svc, err := startService("mlflow server", cmd, s.LogPath, syscall.SIGKILL, nil)
	if err != nil {
		t.Fatalf("testenv: restart: %v", err)
	}
	s.svc, s.Cmd = svc, cmd
	if err := waitHealthy(s, defaultStartTimeout); err != nil {
		t.Fatalf("testenv: restarted mlflow server on %s did not become healthy: %v\nlog tail (%s):\n%s",
			s.URL, err, s.LogPath, tailFile(s.LogPath, 40))
	}
	logStart("mlflow restart", s.BackendURI+" "+s.uvicornLayout(logFrom)+" server="+strconv.Itoa(cmd.Process.Pid))
}

// logSize is the size of the file at path, 0 if there is none.
func logSize(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// uvicornLayout says, for the start log, how the server started from log offset from (its
// last start) serves: "uvicorn=in-process" (mlflowserve.py ran uvicorn itself), or
// "uvicorn=child" (MLflow's own child process: MLflowChildEnv, or mlflowserve.py's fallback,
// whose reason the server's log gives).
func (s *MLflowServer) uvicornLayout(from int64) string {
	data, err := os.ReadFile(s.LogPath)
	if err == nil && from <= int64(len(data)) && strings.Contains(string(data[from:]), InProcessLog) {
		return "uvicorn=in-process"
	}
	return "uvicorn=child"
}
