package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// syncPy writes to a real MLflow server through MLflow's own Python client:
// "make EXP" creates experiment EXP with one FINISHED run (params, a tag,
// three points of loss, one file) and prints its run id; "grow RUN WHAT"
// adds to that finished run: a metric point ("metric"), a tag ("tag") or a
// file ("artifact"), or several, comma-separated.
const syncPy = `
import os, sys, tempfile, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
if sys.argv[2] == "make":
    mlflow.set_experiment(sys.argv[3])
    with mlflow.start_run(run_name="nightly") as r:
        mlflow.log_params({"lr": "0.1", "layers": "4"})
        mlflow.set_tag("team", "vision")
        for s in range(3):
            mlflow.log_metric("loss", 1.0 / (s + 1), step=s, timestamp=1700000000000 + s)
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("first file\n")
        mlflow.log_artifact(os.path.join(d, "notes.txt"))
    print("RUN=" + r.info.run_id)
else:
    run, n = sys.argv[3], sys.argv[5]
    for what in sys.argv[4].split(","):
        if what == "metric":
            c.log_metric(run, "loss", 0.01, step=100 + int(n), timestamp=1700000100000 + int(n))
        elif what == "tag":
            c.set_tag(run, "added" + n, "later")
        elif what == "artifact":
            d = tempfile.mkdtemp()
            p = os.path.join(d, "later" + n + ".txt")
            with open(p, "w") as f:
                f.write("a file added after the run finished\n")
            c.log_artifact(run, p, artifact_path="extra")
    assert c.get_run(run).info.status == "FINISHED"
`

// damagePy deletes tag KEY of every run of experiment EXP on an MLflow
// server, as a user editing the destination in MLflow's UI would.
const damagePy = `
import sys, mlflow
from mlflow import MlflowClient
mlflow.set_tracking_uri(sys.argv[1])
c = MlflowClient()
exp = c.get_experiment_by_name(sys.argv[2])
runs = c.search_runs([exp.experiment_id])
assert len(runs) == 1, runs
for r in runs:
    c.delete_tag(r.info.run_id, sys.argv[3])
`

// syncPyDriver runs syncPy's and damagePy's commands in one Python process
// for the whole test binary, so MLflow is imported once (about 6 s of CPU
// a process) rather than once a command. Each command line on its stdin is
// a JSON array: the script's name, then its arguments. The script runs with
// exactly those arguments as sys.argv[1:] (as under python -c), in fresh
// globals, so it builds its own MlflowClient as a process of its own would;
// its output (stdout and stderr) ends with one line "RUNFERRY-PY-DONE 0",
// or "RUNFERRY-PY-DONE 1" after the traceback of an exception. The process
// ends at the end of its stdin: at stopSyncPy, or when the test binary
// exits, however.
const syncPyDriver = `
import json, sys, traceback
scripts = {"sync": sys.argv[1], "damage": sys.argv[2]}
for line in sys.stdin:
    name, *args = json.loads(line)
    sys.argv = ["-c"] + args
    ok = True
    try:
        exec(compile(scripts[name], "<" + name + ">", "exec"), {"__name__": "__main__"})
    except BaseException:
        traceback.print_exc(file=sys.stdout)
        ok = False
    sys.stdout.flush()
    print("\nRUNFERRY-PY-DONE", 0 if ok else 1, flush=True)
`

// syncPyProc is the test binary's one syncPyDriver process, started on
// first use; its commands run one at a time.
var syncPyProc struct {
	sync.Mutex
	in   io.WriteCloser
	out  *bufio.Reader
	done chan struct{} // closed once the process is reaped
	err  error         // why it could not start, or why it stopped answering
}

// stopSyncPy ends the syncPyDriver process, if one was started, and waits
// for it (TestMain calls it after the tests; the process would end with the
// binary anyway, when its stdin closes).
func stopSyncPy() {
	p := &syncPyProc
	p.Lock()
	defer p.Unlock()
	if p.in == nil {
		return
	}
	p.in.Close()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
	}
	p.in, p.err = nil, errors.New("stopped")
}

// runSyncPy runs syncPy ("make", "grow") or, with "damage" first, damagePy
// with args, in the binary's syncPyDriver process, and returns the run id
// "make" printed. A command that fails fails the test with its output.
func runSyncPy(t *testing.T, args ...string) string {
	t.Helper()
	name := "sync"
	if args[0] == "damage" {
		name, args = "damage", args[1:]
	}
	p := &syncPyProc
	p.Lock()
	defer p.Unlock()
	if p.in == nil && p.err == nil {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(testenv.Python(t), "-c", syncPyDriver, syncPy, damagePy)
		cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=", "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true", "PYTHONUNBUFFERED=1")
		cmd.Stdout, cmd.Stderr = w, w
		in, err := cmd.StdinPipe()
		if err == nil {
			err = cmd.Start()
		}
		w.Close()
		if err != nil {
			r.Close()
			p.err = fmt.Errorf("starting Python: %w", err)
		} else {
			p.in, p.out, p.done = in, bufio.NewReader(r), make(chan struct{})
			go func(done chan struct{}) { cmd.Wait(); close(done) }(p.done)
		}
	}
	if p.err != nil {
		t.Fatalf("python %v: %v", args, p.err)
	}
	line, err := json.Marshal(append([]string{name}, args...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		p.err = fmt.Errorf("writing to Python: %w", err)
		t.Fatalf("python %v: %v", args, p.err)
	}
	var out strings.Builder
	for {
		l, err := p.out.ReadString('\n')
		if err != nil {
			p.err = fmt.Errorf("Python ended: %w", err)
			t.Fatalf("python %v: %v\n%s%s", args, p.err, out.String(), l)
		}
		if status, ok := strings.CutPrefix(l, "RUNFERRY-PY-DONE "); ok {
			if strings.TrimSpace(status) != "0" {
				t.Fatalf("python %s %v failed:\n%s", name, args, out.String())
			}
			break
		}
		out.WriteString(l)
	}
	// MLflow prints links to the run on stdout too.
	if i := strings.LastIndex(out.String(), "RUN="); i >= 0 {
		return strings.Fields(out.String()[i+len("RUN="):])[0]
	}
	return ""
}

// syncReport runs a copy-like verb with --report and returns the report,
// failing the test unless the exit code is want.
func syncReport(t *testing.T, want int, args ...string) transfer.Report {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := runCLI(t, append(args, "--report", path)...)
	if code != want {
		t.Fatalf("runferry %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errOut)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep transfer.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// wantCounts fails unless the report committed and found unchanged the
// given numbers of runs (and nothing failed).
func wantCounts(t *testing.T, step string, rep transfer.Report, committed, unchanged int) {
	t.Helper()
	if rep.Totals.Committed != committed || rep.Totals.Unchanged != unchanged || rep.Totals.Failed != 0 {
		t.Errorf("%s: committed %d, unchanged %d, failed %d; want %d, %d, 0 (runs %+v)", step,
			rep.Totals.Committed, rep.Totals.Unchanged, rep.Totals.Failed, committed, unchanged, rep.Runs)
	}
}

func wantCheck(t *testing.T, step string, want int, src, dst string) {
	t.Helper()
	code, out, errOut := runCLI(t, "check", src, dst)
	if code != want {
		t.Errorf("%s: check exit %d, want %d\n%s%s", step, code, want, out, errOut)
	}
}

// A FINISHED MLflow run that gains a metric point, a tag or a file is seen
// as changed by sync (with the ledger, with --restart and with --no-state)
// and copied again, into an archive and into another MLflow experiment,
// after which check passes; a sync without change copies nothing. With
// the ledger, the run that gained a point, a tag and a file is appended
// to: the same destination id (in MLflow, the same run id), only the new
// point and the new file written, the points and files copied before
// kept (the report's counters).
func TestSyncSeesChangesToFinishedMLflowRuns(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	runID := runSyncPy(t, srv.URL, "make", p+"src/exp")
	src := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "src/"
	n := 0 // a new metric step, tag key and file name each time
	for _, tc := range []struct{ name, dst string }{
		{"parquet", "parquet:" + filepath.Join(t.TempDir(), "archive")},
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + p + "dst/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
			grow := func(what string) {
				n++
				runSyncPy(t, srv.URL, "grow", runID, what, strconv.Itoa(n))
			}
			first := syncReport(t, 0, "copy", src, tc.dst, state)
			wantCounts(t, "first copy", first, 1, 0)
			wantCheck(t, "after the first copy", 0, src, tc.dst)
			rep := syncReport(t, 0, "sync", src, tc.dst, state)
			wantCounts(t, "sync without change", rep, 0, 1)
			t.Logf("sync without change: plan %d ms, total %d ms (one run, one artifact listing)", rep.Timings.PlanMS, rep.Timings.TotalMS)

			grow("metric,tag,artifact")
			wantCheck(t, "after the run grew", exitDifferences, src, tc.dst)
			rep = syncReport(t, 0, "sync", src, tc.dst, state)
			wantCounts(t, "sync after a point, a tag and a file", rep, 1, 0)
			if len(rep.Runs) == 1 && len(first.Runs) == 1 {
				r := rep.Runs[0]
				got := fmt.Sprintf("appended=%v dest=%s points=%d kept_points=%d files=%d kept_files=%d deleted_files=%d",
					r.Appended, r.DestID, r.Points, r.KeptPoints, r.Files, r.KeptFiles, r.DeletedFiles)
				f := first.Runs[0] // the second subtest starts from what the first added
				want := fmt.Sprintf("appended=true dest=%s points=1 kept_points=%d files=1 kept_files=%d deleted_files=0", f.DestID, f.Points, f.Files)
				if got != want || rep.Totals.Appended != 1 {
					t.Errorf("sync after a point, a tag and a file: %s (%s), %d appended; want %s", got, r.Reason, rep.Totals.Appended, want)
				}
			}
			wantCheck(t, "after sync", 0, src, tc.dst)
			wantCounts(t, "sync without change", syncReport(t, 0, "sync", src, tc.dst, state), 0, 1)

			// --restart forgets the ledger; the destination's fingerprint
			// must then tell the change (a point alone: the run's metadata
			// is unchanged).
			grow("metric")
			wantCounts(t, "sync --restart after a point", syncReport(t, 0, "sync", src, tc.dst, state, "--restart"), 1, 0)
			wantCheck(t, "after sync --restart", 0, src, tc.dst)
			wantCounts(t, "sync --restart without change", syncReport(t, 0, "sync", src, tc.dst, state, "--restart"), 0, 1)

			grow("artifact")
			wantCounts(t, "sync --no-state after a file", syncReport(t, 0, "sync", src, tc.dst, "--no-state"), 1, 0)
			wantCheck(t, "after sync --no-state", 0, src, tc.dst)
			wantCounts(t, "sync --no-state without change", syncReport(t, 0, "sync", src, tc.dst, "--no-state"), 0, 1)
			// The ledger was discarded by the last --restart: the
			// destination's fingerprint says the run is up to date.
			wantCounts(t, "sync after --no-state", syncReport(t, 0, "sync", src, tc.dst, state), 0, 1)
		})
	}
}

// --force compares the runs the fingerprints call unchanged with the
// destination in full: a destination edited after the copy (a tag deleted
// in MLflow) is repaired, and runs that match are reported as verified,
// not copied.
func TestSyncForceRepairsTheDestination(t *testing.T) {
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	runSyncPy(t, srv.URL, "make", p+"src/exp")
	src := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "src/"
	for _, tc := range []struct{ name, dst string }{
		{"parquet", "parquet:" + filepath.Join(t.TempDir(), "archive")},
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + p + "dst/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
			first := syncReport(t, 0, "copy", src, tc.dst, state)
			wantCounts(t, "first copy", first, 1, 0)
			rep := syncReport(t, 0, "sync", src, tc.dst, state, "--force")
			wantCounts(t, "sync --force without change", rep, 0, 0)
			if rep.Totals.Verified != 1 || rep.Totals.Points != 0 {
				t.Errorf("sync --force without change: verified %d, points %d; want 1 run verified, no point copied", rep.Totals.Verified, rep.Totals.Points)
			}
			code, out, _ := runCLI(t, "sync", "--accept-gaps", src, tc.dst, state, "--force")
			if code != 0 || !strings.Contains(out, "copied 0 runs (0 points, 0 files, 0 B); 0 unchanged, 1 verified, 0 failed") {
				t.Errorf("sync --force summary (exit %d):\n%s", code, out)
			}
		})
	}
	t.Run("damaged mlflow", func(t *testing.T) {
		dst := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "dst/"
		state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
		runSyncPy(t, "damage", srv.URL, p+"dst/exp", "team")
		wantCheck(t, "after the tag was deleted in the destination", exitDifferences, src, dst)
		wantCounts(t, "sync sees no change at the source", syncReport(t, 0, "sync", src, dst, state), 0, 1)
		rep := syncReport(t, 0, "sync", src, dst, state, "--force")
		wantCounts(t, "sync --force repairs", rep, 1, 0)
		if len(rep.Runs) != 1 || !strings.Contains(rep.Runs[0].Reason, "repairing: tag team missing") {
			t.Errorf("sync --force: want the reason to name the missing tag, got %+v", rep.Runs)
		}
		wantCheck(t, "after sync --force", 0, src, dst)
		rep = syncReport(t, 0, "sync", src, dst, state, "--force")
		if rep.Totals.Verified != 1 || rep.Totals.Committed != 0 {
			t.Errorf("sync --force after the repair: verified %d, committed %d; want 1, 0", rep.Totals.Verified, rep.Totals.Committed)
		}
	})
}

// A file body damaged in an archive without changing its size is not seen
// by sync (the sink checks sizes unless ?verify=sha256); sync --force
// compares bodies by SHA-256, writes the run again and check passes.
func TestSyncForceRepairsADamagedArchiveFile(t *testing.T) {
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	runSyncPy(t, srv.URL, "make", p+"src/exp")
	src := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "src/"
	dir := filepath.Join(t.TempDir(), "archive")
	dst := "parquet:" + dir
	state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
	wantCounts(t, "first copy", syncReport(t, 0, "copy", src, dst, state), 1, 0)
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*", "*"))
	if err != nil || len(blobs) == 0 {
		t.Fatalf("no blob in the archive (%v)", err)
	}
	damaged := 0
	for _, b := range blobs {
		body, err := os.ReadFile(b)
		if err != nil {
			t.Fatal(err)
		}
		if string(body) == "first file\n" {
			if err := os.WriteFile(b, []byte("FIRST FILE\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			damaged++
		}
	}
	if damaged != 1 {
		t.Fatalf("found %d blobs holding notes.txt, want 1", damaged)
	}
	wantCheck(t, "after the blob was damaged", exitDifferences, src, dst)
	wantCounts(t, "sync sees no change", syncReport(t, 0, "sync", src, dst, state), 0, 1)
	rep := syncReport(t, 0, "sync", src, dst, state, "--force")
	wantCounts(t, "sync --force repairs", rep, 1, 0)
	if len(rep.Runs) != 1 || !strings.Contains(rep.Runs[0].Reason, "repairing: file notes.txt") {
		t.Errorf("sync --force: want the reason to name notes.txt, got %+v", rep.Runs)
	}
	wantCheck(t, "after sync --force", 0, src, dst)
}

// uniquePrefix returns an experiment-name prefix no other test of the
// binary uses (the test's name), for tests on the shared MLflow server.
func uniquePrefix(t *testing.T) string {
	return strings.ReplaceAll(t.Name(), "/", "-") + "-"
}
