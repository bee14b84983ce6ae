package wandbdir_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// TestFreshCopyOfCrashedRun reads crashed runs from folders copied as cp -r,
// rsync without -t or unzip copy them (every file's modification time new):
// the fixture run-c-crashed (killed by SIGKILL, no exit record) and the
// sample run 3ojed7lz (last record in 2022, its log cut short). Their own
// records are older than crashed-after, so they are FAILED with
// wandb.state=crashed at the default threshold, however new their folders
// are; they used to be RUNNING, live in MLflow's runs table.
func TestFreshCopyOfCrashedRun(t *testing.T) {
	runs := map[string]string{"run-c-crashed": filepath.Join(fixtures, "wandb", "offline-run-20261125_230210-fxc00003")}
	if _, err := os.Stat(samples); err == nil {
		runs["3ojed7lz"] = filepath.Join(samples, "ARM-software__keyword-transformer", "wandb", "run-20220429_201936-3ojed7lz")
	} else {
		t.Logf("the real-world samples at %s: %v; the fixture alone", samples, err)
	}
	for name, folder := range runs {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			copyTree(t, folder, filepath.Join(root, "wandb", filepath.Base(folder)))
			d := readAll(t, root) // the default crashed-after: 5m
			if len(d.Runs) != 1 {
				t.Fatalf("%d runs, want 1", len(d.Runs))
			}
			r := d.Runs[0].Run
			if r.Status != schema.StatusFailed || tag(r, "wandb.state") != "crashed" {
				t.Errorf("status %s, wandb.state %q; want FAILED, crashed", r.Status, tag(r, "wandb.state"))
			}
		})
	}
}

// TestLiveRunIsRunning reads a run the real wandb SDK (offline,
// testdata/wandb/live.py) is writing now, no exit record yet: it is
// RUNNING with wandb.state=running, in full and in its light header; once
// the SDK finished it, FINISHED.
func TestLiveRunIsRunning(t *testing.T) {
	root := t.TempDir()
	cmd := exec.Command(testenv.Python(t), filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "live.py"), root, "live0001")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "live" {
				ready <- true
				break
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("live.py ended before its run was live: %s", stderr.String())
		}
	case <-time.After(3 * time.Minute):
		t.Fatalf("live.py: no run live after 3 minutes: %s", stderr.String())
	}
	// The SDK's service writes the records after the script logged them:
	// the run is read until its 5 points are there.
	d := readAll(t, root)
	for deadline := time.Now().Add(time.Minute); (len(d.Runs) != 1 || len(d.Runs[0].Metrics) < 5) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		d = readAll(t, root)
	}
	if len(d.Runs) != 1 || len(d.Runs[0].Metrics) != 5 {
		t.Fatalf("live run: %d runs (want 1), points not all written within a minute", len(d.Runs))
	}
	r := d.Runs[0].Run
	if r.Status != schema.StatusRunning || tag(r, "wandb.state") != "running" {
		t.Errorf("live run: status %s, wandb.state %q; want RUNNING, running", r.Status, tag(r, "wandb.state"))
	}
	src := openAt(root)(t)
	h := headersOf(t, src)
	if len(h) != 1 || h[0].Status != schema.StatusRunning || tag(h[0], "wandb.state") != "running" {
		t.Errorf("live run's headers %v, want one RUNNING, running", h)
	}
	src.Close()
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("live.py: %v: %s", err, stderr.String())
	}
	d = readAll(t, root)
	if len(d.Runs) != 1 || d.Runs[0].Run.Status != schema.StatusFinished {
		t.Errorf("finished run: %d runs, want 1 FINISHED", len(d.Runs))
	}
}

// headersOf lists the light headers of every run of src.
func headersOf(t *testing.T, src sources.Source) []schema.Run {
	t.Helper()
	ctx := context.Background()
	var out []schema.Run
	for exp, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for run, err := range src.(sources.HeaderLister).RunHeaders(ctx, exp.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, run)
		}
	}
	return out
}
