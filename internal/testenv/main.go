package testenv

import (
	"os"
	"testing"
)

// Shared services live for the whole test binary. Main stops them; if a package does not
// use Main, or the binary dies, their watchdogs stop them within about a second of exit.
var (
	sharedMLflowMain  = &sharedService[*MLflowServer]{what: "MLflow server"}
	sharedMLflowOther = &sharedService[*MLflowServer]{what: "MLflow server (the other side)"}
	sharedPostgres    = &sharedService[*Postgres]{what: "PostgreSQL"}
	sharedMariaDB     = &sharedService[*MariaDB]{what: "MariaDB"}
	sharedS3          = &sharedService[*S3Server]{what: "S3 server"}
	sharedAzurite     = &sharedService[*AzuriteServer]{what: "Azurite"}
	sharedGCS         = &sharedService[*GCSServer]{what: "GCS emulator"}
)

// Main runs the tests and then stops the shared services. Use it from TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopShared()
	removeTensorBoardLogs()
	os.Exit(code)
}

// StopShared stops the services started by SharedMLflow, SharedMLflowOther, SharedPostgres,
// SharedMariaDB, SharedS3, SharedAzurite and SharedGCS.
func StopShared() {
	sharedMLflowMain.stop()
	sharedMLflowOther.stop()
	sharedPostgres.stop()
	sharedMariaDB.stop()
	sharedS3.stop()
	sharedAzurite.stop()
	sharedGCS.stop()
}

// SharedMLflow returns one SQLite-backed MLflow server shared by every test of the binary,
// started on first use. Tests sharing it must use unique experiment names. A failed start
// fails every caller with the same error, without retrying.
func SharedMLflow(t testing.TB) *MLflowServer {
	t.Helper()
	return sharedMLflow(t, sharedMLflowMain)
}

// SharedMLflowOther returns a second shared MLflow server, apart from SharedMLflow's: "the
// other side" for tests that copy from one MLflow server to another. As on SharedMLflow,
// tests write into it under experiment names of their own (a prefix naming the test) and
// registered model names of their own, and a test that reads all the server holds (every
// trace, the whole registry) keeps only its own.
func SharedMLflowOther(t testing.TB) *MLflowServer {
	t.Helper()
	return sharedMLflow(t, sharedMLflowOther)
}

func sharedMLflow(t testing.TB, h *sharedService[*MLflowServer]) *MLflowServer {
	t.Helper()
	bin := VenvBin(t, "mlflow")
	return h.get(t, func() (*MLflowServer, error) {
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
	return sharedPostgres.get(t, startPostgres)
}
