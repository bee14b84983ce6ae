package mlflow_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	pqsrc "github.com/runferry/runferry/sources/parquetdir"
)

// multiRun is the canonical dataset plus runs enough to keep a copy busy
// for a few seconds.
func multiRun() *dataset.Dataset {
	d := dataset.Canonical()
	for i := range 6 {
		rd := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-extra-%d", i)},
			Experiment: d.Experiments[i%2].Origin, Name: fmt.Sprintf("extra %d", i), Status: schema.StatusFinished,
			Start: time.Date(2024, 4, 1, i, 0, 0, 0, time.UTC), End: time.Date(2024, 4, 1, i, 30, 0, 0, time.UTC),
			Params: []schema.Param{{Key: "i", Value: fmt.Sprint(i)}}}}
		for step := range int64(1500) {
			rd.Metrics = append(rd.Metrics, schema.Metric{Key: "m", Value: float64(step * int64(i)), Step: step, Time: 1_711_000_000_000 + step})
		}
		rd.Files = []dataset.File{{Path: "out.txt", Content: []byte(strings.Repeat("x", 1000*i))}}
		d.Runs = append(d.Runs, rd)
	}
	return d
}

// archive writes d into a new Parquet archive and returns its path.
func archive(t *testing.T, d *dataset.Dataset) string {
	dir := filepath.Join(t.TempDir(), "archive")
	dst, err := parquetdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func cmdExit(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// buildCLI returns the runferry binary, built once per test binary and shared by every
// test that runs it (testenv.BuildOnce: each `go build` links anew, about 6 s of CPU).
// Tests run it and never change it.
func buildCLI(t *testing.T) string {
	t.Helper()
	return testenv.BuildOnce(t, "../../cmd/runferry")
}

func expectSame(t *testing.T, want *dataset.Dataset, got sources.Source) {
	t.Helper()
	d, err := dataset.Read(context.Background(), got)
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(want, d, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("destination differs (%s vs %s):\n%s", want.Describe(), d.Describe(), strings.Join(diff, "\n"))
	}
}

// TestKillAndResume runs the runferry binary copying a Parquet archive into
// MLflow, kills it with SIGKILL at 20 random moments, re-running each time,
// then lets it finish: the server holds every run once, every point once.
// (--keep-personal: the whole run, host name included, is compared.)
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a process 20 times (about 2 minutes)")
	}
	t.Parallel()
	srv := testenv.SharedMLflow(t)
	bin := buildCLI(t)
	want := multiRun()
	arch := archive(t, want)
	prefix := fmt.Sprintf("kill-%d/", testenv.FreePort(t))
	dst := srv.URL + "?experiment-prefix=" + prefix
	dst = "mlflow+" + dst
	state := filepath.Join(t.TempDir(), "ledger.db")
	run := func() *exec.Cmd {
		cmd := exec.Command(bin, "copy", "parquet:"+arch, dst, "--state", state, "--concurrency", "4", "-q", "--keep-personal")
		cmd.Stdout, cmd.Stderr = nil, nil
		cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	rng := testenv.Rand(t)
	finished := 0
	for i := range 20 {
		cmd := run()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-time.After(time.Duration(200+rng.IntN(3000)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
		case err := <-done:
			finished++
			t.Logf("run %d finished before the kill: %v", i, err)
		}
	}
	out, err := exec.Command(bin, "copy", "parquet:"+arch, dst, "--state", state, "-q", "--keep-personal").CombinedOutput()
	// Exit 3 also reports runs read from damaged source data (the canonical
	// run-special carries a damage note); no run may have failed.
	if err != nil && !(cmdExit(err) == 3 && strings.Contains(string(out), " 0 failed")) {
		t.Fatalf("final copy: %v\n%s", err, out)
	}
	read := strings.Replace(dst, "?", "?deleted=true&", 1)
	out, err = exec.Command(bin, "check", "parquet:"+arch, read).CombinedOutput()
	if err != nil {
		t.Fatalf("runferry check: %v\n%s", err, out)
	}
	t.Logf("%d of 20 runs finished before their kill; check: %s", finished, strings.TrimSpace(string(out)))
	_, readBack, _ := pairWithPrefix(t, srv.URL, prefix)
	expectSame(t, want, readBack())
}

// TestParquetRoundTrip copies the canonical dataset MLflow -> Parquet ->
// MLflow (a second prefix): the two MLflow copies are identical, and the
// Parquet archive kept the first origins.
func TestParquetRoundTrip(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	want := dataset.Canonical()
	first, readFirst, _ := pair(t, srv.URL)
	if rep, err := transfer.Copy(context.Background(), memsrc.New(want), first, transfer.Options{}); err != nil || rep.Totals.Failed > 0 {
		t.Fatalf("into MLflow: %v %+v", err, rep.Runs)
	}
	dir := filepath.Join(t.TempDir(), "archive")
	pq, err := parquetdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(context.Background(), readFirst(), pq, transfer.Options{}); err != nil || rep.Totals.Failed > 0 {
		t.Fatalf("MLflow to Parquet: %v %+v", err, rep.Runs)
	}
	pq.Close()
	arch, err := pqsrc.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	expectSame(t, want, arch)
	second, readSecond, _ := pair(t, srv.URL)
	if rep, err := transfer.Copy(context.Background(), arch, second, transfer.Options{}); err != nil || rep.Totals.Failed > 0 {
		t.Fatalf("Parquet to MLflow: %v %+v", err, rep.Runs)
	}
	expectSame(t, want, readSecond())
	res, err := check.Run(context.Background(), readFirst(), readSecond(), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check MLflow vs MLflow: %v %v", err, res.Differences)
	}
}

// TestPostgresBackend round-trips the canonical dataset through a server
// whose backend store is PostgreSQL (VARCHAR limits enforced, other SQL).
func TestPostgresBackend(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL-backed MLflow server")
	}
	t.Parallel()
	pg := testenv.SharedPostgres(t)
	srv := testenv.StartMLflow(t, testenv.WithPostgres(pg))
	want := dataset.Canonical()
	dst, read, _ := pair(t, srv.URL)
	if rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, transfer.Options{}); err != nil || rep.Totals.Failed > 0 {
		t.Fatalf("copy: %v %+v", err, rep.Runs)
	}
	expectSame(t, want, read())
	res, err := check.Run(context.Background(), memsrc.New(want), read(), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check: %v %v", err, res.Differences)
	}
}
