package testenv

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// Shared services live for the whole test binary. Main stops them; if a package does not
// use Main, or the binary dies, their watchdogs stop them within about a second of exit.
var (
	sharedMLflowMain  = &sharedService[*MLflowServer]{what: "MLflow server"}
	sharedMLflowOther = &sharedService[*MLflowServer]{what: "MLflow server (the other side)"}
	sharedMLflowPG    = &sharedService[*MLflowServer]{what: "MLflow server (PostgreSQL store)"}
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
	RemoveMadeFixtures()
	os.Exit(code)
}

// StopShared stops the services started by SharedMLflow, SharedMLflowOther,
// SharedMLflowPostgres, SharedPostgres, SharedMariaDB, SharedS3, SharedAzurite and SharedGCS.
// The MLflow servers stop before the PostgreSQL cluster one of them stores in.
func StopShared() {
	sharedMLflowMain.stop()
	sharedMLflowOther.stop()
	sharedMLflowPG.stop()
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

// SharedMLflowPostgres returns one MLflow server shared by every test of the binary whose
// backend store is a database of its own in SharedPostgres, started on first use (a
// PostgreSQL store is migrated at each start: no template, so it costs more than a SQLite
// one). As on SharedMLflow, tests write under names of their own; its BackendURI is the
// postgresql+psycopg2:// URI MLflow was given.
func SharedMLflowPostgres(t testing.TB) *MLflowServer {
	t.Helper()
	pg := SharedPostgres(t)
	return sharedMLflow(t, sharedMLflowPG, func() string {
		return strings.Replace(pg.CreateDatabase(t, fmt.Sprintf("mlflow_shared_%d", time.Now().UnixNano())),
			"postgres://", "postgresql+psycopg2://", 1)
	})
}

// sharedMLflow starts h's server on first use: on a fresh SQLite store, or on the store
// backend returns (called only when the server starts).
func sharedMLflow(t testing.TB, h *sharedService[*MLflowServer], backend ...func() string) *MLflowServer {
	t.Helper()
	bin := VenvBin(t, "mlflow")
	return h.get(t, func() (*MLflowServer, error) {
		cfg := mlflowConfig{startTimeout: defaultStartTimeout}
		for _, b := range backend {
			cfg.backendURI = b()
		}
		dir, err := os.MkdirTemp("", "runferry-mlflow-")
		if err != nil {
			return nil, err
		}
		cfg.dir = dir
		s, err := startMLflow(bin, cfg)
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
