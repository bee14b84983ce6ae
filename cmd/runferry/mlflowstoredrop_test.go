package main

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMLflowSQLStoreConnectionDropped: copying from an MLflow store in
// PostgreSQL whose connections are terminated (pg_terminate_backend from a
// second connection) while the runs' metrics are being read fails each run
// with one line naming the run and the dropped connection, exits non-zero,
// and leaves no run in the archive. The backends are caught in flight
// deterministically: the second connection holds an ACCESS EXCLUSIVE lock
// on the metrics table, so each metrics query waits on it until it is
// terminated.
func TestMLflowSQLStoreConnectionDropped(t *testing.T) {
	srv := testenv.StartMLflow(t, testenv.WithPostgres(testenv.SharedPostgres(t)))
	cmd := exec.Command(testenv.Python(t), "../../sources/mlflowsql/testdata/populate.py")
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+srv.URL, "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("populate.py: %v\n%s", err, out)
	}
	dsn := strings.Replace(srv.BackendURI, "postgresql+psycopg2://", "postgres://", 1)
	store := "mlflow+" + strings.Replace(srv.BackendURI, "postgresql+psycopg2://", "postgresql://", 1) + "&instance=127.0.0.1:" + strconv.Itoa(srv.Port)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx := context.Background()
	lock, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	killed := make(chan int)
	go func() { // terminate every backend of the store waiting on the lock
		n := 0
		defer func() { killed <- n }()
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			rows, err := admin.QueryContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM metrics%'`)
			if err != nil {
				continue
			}
			for rows.Next() {
				n++
			}
			rows.Close()
		}
	}()
	archive := filepath.Join(t.TempDir(), "archive")
	code, out, errOut := runCLI(t, "copy", store, "parquet:"+archive, "--no-state", "--retries", "0")
	close(done)
	if n := <-killed; n == 0 {
		t.Fatal("no backend was terminated")
	}
	t.Logf("copy: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	if code == 0 {
		t.Fatalf("copy with its connections dropped: exit 0\n%s\n%s", out, errOut)
	}
	failed := regexp.MustCompile(`(?m)^FAILED mlflow:\S+/([0-9a-f]{32}) .*of run ([0-9a-f]{32}): .*terminating connection.*$`).FindAllStringSubmatch(out, -1)
	if len(failed) != 3 {
		t.Fatalf("copy: want 3 FAILED lines naming the run and the dropped connection, got %d\nstdout:\n%s\nstderr:\n%s", len(failed), out, errOut)
	}
	for _, m := range failed {
		if m[1] != m[2] {
			t.Errorf("FAILED line names run %s, its error run %s", m[1], m[2])
		}
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "ls", "parquet:"+archive); code == 0 && strings.Contains(out, "mlflow:") {
		t.Errorf("the archive holds runs after every run failed:\n%s\n%s", out, errOut)
	}
}
