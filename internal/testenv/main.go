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
	other    *MLflowServer // SharedMLflowOther
	otherE   error
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

// StopShared stops the services started by SharedMLflow, SharedMLflowOther, SharedPostgres
// and SharedMariaDB.
func StopShared() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	for _, s := range []**MLflowServer{&shared.mlflow, &shared.other} {
		if *s != nil {
			(*s).Stop()
			*s = nil
		}
	}
	if shared.postgres != nil {
		shared.postgres.Stop()
		shared.postgres = nil
	}
	if shared.mariadb != nil {
		shared.mariadb.Stop()
		shared.mariadb = nil
	}
	shared.mlflowE, shared.otherE, shared.pgErr, shared.mariaErr = nil, nil, nil, nil
	stopSharedS3()
	stopSharedAzurite()
}

// SharedMLflow returns one SQLite-backed MLflow server shared by every test of the binary,
// started on first use. Tests sharing it must use unique experiment names. A failed start
// fails every caller with the same error, without retrying.
func SharedMLflow(t testing.TB) *MLflowServer {
	t.Helper()
	return sharedMLflow(t, "MLflow server", &shared.mlflow, &shared.mlflowE)
}

// SharedMLflowOther returns a second shared MLflow server, apart from SharedMLflow's: "the
// other side" for tests that copy from one MLflow server to another. As on SharedMLflow,
// tests write into it under experiment names of their own (a prefix naming the test) and
// registered model names of their own, and a test that reads all the server holds (every
// trace, the whole registry) keeps only its own.
func SharedMLflowOther(t testing.TB) *MLflowServer {
	t.Helper()
	return sharedMLflow(t, "MLflow server (the other side)", &shared.other, &shared.otherE)
}

func sharedMLflow(t testing.TB, what string, srv **MLflowServer, errp *error) *MLflowServer {
	t.Helper()
	bin := VenvBin(t, "mlflow")
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return sharedServer(t, what, srv, errp, func() (*MLflowServer, error) {
		dir, err := os.MkdirTemp("", "runferry-mlflow-")
		if err != nil {
			return nil, err
		}
		s, err := startMLflow(bin, mlflowConfig{dir: dir, startTimeout: defaultStartTimeout})
		if err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
		s.ownedDir = dir
		return s, nil
	})
}

// SharedPostgres returns one PostgreSQL cluster shared by every test of the binary, started
// on first use. Tests sharing it should use their own database (Postgres.CreateDatabase).
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	return sharedServer(t, "PostgreSQL", &shared.postgres, &shared.pgErr, startPostgres)
}
