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
	"github.com/runferry/runferry/schema"
	sourcesall "github.com/runferry/runferry/sources/all"
)

// TestMLflowSQLStoreConnectionDropped: a run's metrics read directly from
// an MLflow store in PostgreSQL end, when the connection is terminated
// after the first key's points arrived, with one error line naming the run
// and the key; and copying from an MLflow store in
// PostgreSQL whose connections are terminated (pg_terminate_backend from a
// second connection) while the runs' metrics are being read fails each run
// that has metrics with one line naming the run and the dropped connection,
// exits non-zero, and leaves none of them in the archive (the run without
// metrics, whose keys come from latest_metrics as a server's get-run gives
// them, never reads the locked table and is copied whole). The backends are caught in flight
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
	midStream(t, admin, store)
	lock, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done, killed := terminator(admin)
	archive := filepath.Join(t.TempDir(), "archive")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", store, "parquet:"+archive, "--no-state", "--retries", "0")
	close(done)
	if n := <-killed; n == 0 {
		t.Fatal("no backend was terminated")
	}
	t.Logf("copy: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	if code == 0 {
		t.Fatalf("copy with its connections dropped: exit 0\n%s\n%s", out, errOut)
	}
	failed := regexp.MustCompile(`(?m)^FAILED mlflow:\S+/([0-9a-f]{32}) .*of run ([0-9a-f]{32}): .*terminating connection.*$`).FindAllStringSubmatch(out, -1)
	if len(failed) != 2 || !strings.Contains(out, "copied 1 run (0 points") {
		t.Fatalf("copy: want 2 FAILED lines naming the run and the dropped connection (parent and child; the run with no metrics, whose keys come from latest_metrics as a server's get-run gives them, never reads the locked table and is copied), got %d\nstdout:\n%s\nstderr:\n%s", len(failed), out, errOut)
	}
	for _, m := range failed {
		if m[1] != m[2] {
			t.Errorf("FAILED line names run %s, its error run %s", m[1], m[2])
		}
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "ls", "--count", "parquet:"+archive)
	if code != 0 || !strings.Contains(out, "unfinished") || !strings.Contains(out, " 1 run, 0 points") {
		t.Errorf("ls of the archive: exit %d; want only the run with no metrics (unfinished)\n%s\n%s", code, out, errOut)
	}
	for _, m := range failed {
		if strings.Contains(out, m[1]) {
			t.Errorf("the archive holds run %s, which failed:\n%s", m[1], out)
		}
	}
}

// terminator terminates, until done is closed, every backend of admin's
// database waiting on a lock in a query of the metrics table, and then
// sends on killed how many it terminated.
func terminator(admin *sql.DB) (done chan struct{}, killed chan int) {
	ctx := context.Background()
	done, killed = make(chan struct{}), make(chan int)
	go func() {
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
	return done, killed
}

// midStream reads the metrics of the run "parent" directly from the store
// and, once its first key's points have arrived, locks the metrics table
// and terminates the connection reading the next key: the stream ends
// with an error naming the run and the key.
func midStream(t *testing.T, admin *sql.DB, store string) {
	ctx := context.Background()
	src, _, err := sourcesall.Sources().Open(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var parent schema.Run
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Name == "parent" {
				parent = r
			}
		}
	}
	var lock *sql.Tx
	var done chan struct{}
	var killed chan int
	pages := 0
	var streamErr error
	for page, err := range src.Metrics(ctx, parent.Origin) {
		if err != nil {
			streamErr = err
			break
		}
		pages++
		if lock == nil { // the first key (acc) has arrived: drop the connection reading the next
			if page[0].Key != "acc" {
				t.Fatalf("first key %q, want acc", page[0].Key)
			}
			if lock, err = admin.BeginTx(ctx, nil); err != nil {
				t.Fatal(err)
			}
			defer lock.Rollback()
			if _, err := lock.ExecContext(ctx, "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"); err != nil {
				t.Fatal(err)
			}
			done, killed = terminator(admin)
		}
	}
	if lock == nil {
		t.Fatal("no metrics read")
	}
	close(done)
	if n := <-killed; n != 1 {
		t.Errorf("terminated %d backends, want 1", n)
	}
	want := `reading metric "loss" of run ` + parent.Origin.ID[strings.LastIndex(parent.Origin.ID, "/")+1:]
	if streamErr == nil || !strings.Contains(streamErr.Error(), want) || !strings.Contains(streamErr.Error(), "terminating connection") || strings.Contains(streamErr.Error(), "\n") || pages != 1 {
		t.Fatalf("metrics of run parent after %d page(s): error %v; want one line containing %q and the dropped connection after the first page", pages, streamErr, want)
	}
	if err := lock.Rollback(); err != nil {
		t.Fatal(err)
	}
}
