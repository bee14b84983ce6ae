package testenv

import (
	"os"
	"sync"
	"testing"
)

// Shared services live for the whole test binary. Main stops them; if a package does not
// use Main, or the binary dies, their watchdogs stop them within about a second of exit.
var shared struct {
	mu       sync.Mutex
	mlflow   *MLflowServer
	mlflowE  error
	postgres *Postgres
	pgErr    error
	mariadb  *MariaDB
	mariaErr error
}

// Main runs the tests and then stops the shared services. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	removeTensorBoardLogs()
	os.Exit(code)
}

// StopShared stops the services started by SharedMLflow, SharedPostgres and SharedMariaDB.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.mlflow != nil {
		shared.mlflow.Stop()
		shared.mlflow = nil
	}
	if shared.postgres != nil {
		shared.postgres.Stop()
		shared.postgres = nil
	}
	if shared.mariadb != nil {
		shared.mariadb.Stop()
		shared.mariadb = nil
	}
	shared.mlflowE, shared.pgErr, shared.mariaErr = nil, nil, nil
	stopSharedS3()
	stopSharedAzurite()
}

// SharedMLflow returns one SQLite-backed MLflow server shared by every test of the binary,
// started on first use. Tests sharing it must use unique experiment names. A failed start
// fails every caller with the same error, without retrying.
func SharedMLflow(t testing.TB) *MLflowServer {
	t.Helper()
	bin := VenvBin(t, "mlflow")
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.mlflow == nil && shared.mlflowE == nil {
		dir, err := os.MkdirTemp("", "runferry-mlflow-")
		if err == nil {
			shared.mlflow, err = startMLflow(bin, mlflowConfig{dir: dir, startTimeout: defaultStartTimeout})
			if err == nil {
				shared.mlflow.ownedDir = dir
			}
		}
		shared.mlflowE = err
	}
	if shared.mlflowE != nil {
		t.Fatalf("testenv: shared MLflow server: %v", shared.mlflowE)
	}
	return shared.mlflow
}

// SharedPostgres returns one PostgreSQL cluster shared by every test of the binary, started
// on first use. Tests sharing it should use their own database (Postgres.CreateDatabase).
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.postgres == nil && shared.pgErr == nil {
		shared.postgres, shared.pgErr = startPostgres()
	}
	if shared.pgErr != nil {
		if isMissingBinaries(shared.pgErr) {
			Unavailable(t, "PostgreSQL", shared.pgErr.Error())
		}
		t.Fatalf("testenv: shared PostgreSQL: %v", shared.pgErr)
	}
	return shared.postgres
}
