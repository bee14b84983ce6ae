package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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
// an MLflow store in PostgreSQL end, when one key's read has its connection
// terminated, after the keys before it, whole, with one error line naming
// the run and the key (midStream: whichever key, as several are read at
// once); and copying from an MLflow store in
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

// terminateOne terminates, until done is closed, one backend of admin's
// database waiting on a lock in a query of the metrics table, then rolls
// lock back (the other queries go on), and sends on killed how many it
// terminated (0 or 1).
func terminateOne(admin *sql.DB, lock *sql.Tx) (done chan struct{}, killed chan int) {
	ctx := context.Background()
	done, killed = make(chan struct{}), make(chan int)
	go func() {
		n := 0
		defer func() { killed <- n }()
		for n == 0 {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var ok bool
			err := admin.QueryRowContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
				WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FROM metrics%' LIMIT 1`).Scan(&ok)
			if err == nil && ok {
				n++
			}
		}
		lock.Rollback()
		<-done
	}()
	return done, killed
}

// midStream reads the metrics of the run "parent" directly from the store
// twice: whole, and with the metrics table locked from before the first
// history read, one backend waiting on the lock terminated and the lock
// then released. The source reads several keys at once (sources/mlflow
// HistoryWindow), so which key's read is terminated is not fixed; whichever
// it is, the stream yields the keys before it whole (as read whole), then
// one error line naming the run, that key and the dropped connection, and
// nothing after.
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
	var whole, wholeKeys []string // the pages read undisturbed, printed, and their keys
	keys := map[string]bool{}
	for page, err := range src.Metrics(ctx, parent.Origin) {
		if err != nil {
			t.Fatalf("metrics of run parent, undisturbed: %v", err)
		}
		whole = append(whole, fmt.Sprint(page))
		wholeKeys = append(wholeKeys, page[0].Key)
		keys[page[0].Key] = true
	}
	if len(keys) < 2 {
		t.Fatalf("run parent has keys %v, want at least 2", keys)
	}
	lock, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback()
	if _, err := lock.ExecContext(ctx, "LOCK TABLE metrics IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	done, killed := terminateOne(admin, lock)
	var pages []string
	var firstKeys []string
	var streamErr error
	after := 0 // what the stream yields after its error
	for page, err := range src.Metrics(ctx, parent.Origin) {
		switch {
		case streamErr != nil:
			after++
		case err != nil:
			streamErr = err
		default:
			pages = append(pages, fmt.Sprint(page))
			firstKeys = append(firstKeys, page[0].Key)
		}
	}
	close(done)
	if n := <-killed; n != 1 {
		t.Errorf("terminated %d backends, want 1", n)
	}
	if streamErr == nil {
		t.Fatalf("metrics of run parent with a read's connection dropped: no error; pages of keys %v", firstKeys)
	}
	failed := regexp.MustCompile(`reading metric "([^"]+)" of run ` + parent.Origin.ID[strings.LastIndex(parent.Origin.ID, "/")+1:]).FindStringSubmatch(streamErr.Error())
	if failed == nil || !keys[failed[1]] || !strings.Contains(streamErr.Error(), "terminating connection") || strings.Contains(streamErr.Error(), "\n") || after > 0 {
		t.Fatalf("metrics of run parent: error %v, then %d more; want one line naming the run, one of its keys %v and the dropped connection, last", streamErr, after, keys)
	}
	t.Logf("the read of key %q was terminated, after %d page(s)", failed[1], len(pages))
	var before []string // the undisturbed pages of the keys before the failed one
	for i, p := range whole {
		if wholeKeys[i] < failed[1] { // keys come in key order
			before = append(before, p)
		}
	}
	if !slices.Equal(pages, before) {
		t.Errorf("metrics of run parent before the error at key %q: keys %v, want the %d page(s) before it as read undisturbed", failed[1], firstKeys, len(before))
	}
}
