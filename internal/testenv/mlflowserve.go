package testenv

import (
	_ "embed"
	"os"
	"path/filepath"
)

// mlflowServeScript is mlflowserve.py: MLflow's own `mlflow server` command, run with the
// arguments testenv gives it, that serves its uvicorn app in its own process instead of a
// child process that imports MLflow again. It falls back to the child whenever the app the
// child would build could differ (its docstring says how it decides) and logs which it did.
// A start costs one import of MLflow instead of two (docs/TESTING.md: about 3 s of CPU).
//
//go:embed mlflowserve.py
var mlflowServeScript []byte

// MLflowChildEnv, set to 1, makes testenv start the venv's `mlflow server` itself, uvicorn in
// a child process as MLflow does it, instead of mlflowserve.py: to measure what the one
// process saves or to rule it out.
const MLflowChildEnv = "RUNFERRY_TESTENV_MLFLOW_CHILD"

// SQLiteSyncEnv, set to 1, leaves a SQLite-backed server's store at SQLite's default
// synchronous=FULL (an fsync at every commit) instead of OFF: to measure what OFF saves or to
// rule it out. OFF loses nothing when the server is killed, only when the OS crashes.
const SQLiteSyncEnv = "RUNFERRY_TESTENV_SQLITE_SYNC"

// SQLiteNoSyncLog is the line mlflowserve.py writes to the server's log once its SQLite
// store's first connection runs with synchronous=OFF (the level read back).
const SQLiteNoSyncLog = "testenv: SQLite synchronous=0"

// InProcessLog is the line mlflowserve.py writes to the server's log when uvicorn serves in
// the `mlflow server` process.
const InProcessLog = "testenv: uvicorn in process"

// mlflowCommand returns the program and leading arguments that run `mlflow server` for a
// server whose Python helpers live in hookDir (the pydeath folder, first on PYTHONPATH):
// the venv's python with mlflowserve.py written there, or, with MLflowChildEnv=1, the venv's
// mlflow script (mlflowBin).
func mlflowCommand(mlflowBin, hookDir string) (string, []string, error) {
	if os.Getenv(MLflowChildEnv) == "1" {
		return mlflowBin, nil, nil
	}
	script := filepath.Join(hookDir, "runferry_mlflow_serve.py")
	if err := os.WriteFile(script, mlflowServeScript, 0o644); err != nil {
		return "", nil, err
	}
	return filepath.Join(filepath.Dir(mlflowBin), "python"), []string{script}, nil
}
