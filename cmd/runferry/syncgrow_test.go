package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// growWandb has the real wandb SDK (offline, testdata/wandb/grow.py) log
// steps [from, to) of "loss" and "acc" into run id under dir/wandb,
// resuming it when it exists; noEntity leaves the run without an entity,
// so that its origin names its folder and has a former origin.
func growWandb(t *testing.T, dir, id string, from, to int, noEntity bool) {
	t.Helper()
	cmd := exec.Command(testenv.Python(t), filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "grow.py"),
		dir, id, strconv.Itoa(from), strconv.Itoa(to))
	cmd.Env = os.Environ()
	if noEntity {
		cmd.Env = append(cmd.Env, "GROW_NO_ENTITY=1")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("grow.py %s %d..%d: %v\n%s", id, from, to, err, out)
	}
}

// mlflowRunsUnder counts the active and the deleted runs of the
// experiments whose names start with prefix on the MLflow server at url.
func mlflowRunsUnder(t *testing.T, url, prefix string) (active, deleted int) {
	t.Helper()
	// The experiments, also deleted ones.
	var es struct {
		Experiments []struct {
			ID string `json:"experiment_id"`
		} `json:"experiments"`
	}
	mlflowPost(t, url+"/api/2.0/mlflow/experiments/search", map[string]any{
		"max_results": 1000, "view_type": "ALL", "filter": fmt.Sprintf("name LIKE '%s%%'", prefix)}, &es)
	for _, e := range es.Experiments {
		var rs struct {
			Runs []struct {
				Info struct {
					LifecycleStage string `json:"lifecycle_stage"`
				} `json:"info"`
			} `json:"runs"`
		}
		mlflowPost(t, url+"/api/2.0/mlflow/runs/search", map[string]any{
			"experiment_ids": []string{e.ID}, "run_view_type": "ALL", "max_results": 1000}, &rs)
		for _, r := range rs.Runs {
			if r.Info.LifecycleStage == "active" {
				active++
			} else {
				deleted++
			}
		}
	}
	return active, deleted
}

// TestSyncsKilledWhileRunsGrow: two W&B runs (one with an entity, one
// without, whose origin has a former origin) grow between rounds of
// syncs, by the real SDK resuming them. In each round, syncs into a
// Parquet archive, a real MLflow server and an SQLite database are
// SIGKILLed at seeded random moments, then a sync runs to its end: check
// then finds each destination equal to the W&B folder, the archive
// verifies, and MLflow holds each run once (no partial copy left active,
// none doubled, none deleted: killed first copies and killed appends are
// continued in place). A last growth is synced without a kill: both runs are
// appended to (Parquet and MLflow), with only their new points.
func TestSyncsKilledWhileRunsGrow(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	if testing.Short() {
		t.Skip("builds the binary, runs the W&B SDK and kills syncs")
	}
	srv := testenv.SharedMLflow(t)
	bin := testenv.BuildOnce(t, ".")
	rng := testenv.Rand(t)
	dir, work := t.TempDir(), t.TempDir()
	src := "wandb:" + filepath.Join(dir, "wandb") + "?crashed-after=1ns"
	dstsIn := func(work, prefix string) []string {
		return []string{
			"parquet:" + filepath.Join(work, "archive"),
			"mlflow+" + srv.URL + "?experiment-prefix=" + prefix,
			"sqlite:" + filepath.Join(work, "runs.db"),
		}
	}
	dsts := dstsIn(work, uniquePrefix(t))
	runs := []struct {
		id       string
		noEntity bool
	}{{"killgrw1", false}, {"killgrw2", true}}
	grow := func(from, to int) {
		for _, r := range runs {
			growWandb(t, dir, r.id, from, to, r.noEntity)
		}
	}
	syncArgs := func(dst string) []string {
		name := strings.SplitN(dst, ":", 2)[0]
		return []string{"sync", "--accept-gaps", src, dst, "-q", "--concurrency", "2", "--state", filepath.Join(work, name+".ledger.db")}
	}
	sync := func(dst string) *exec.Cmd { return exec.Command(bin, syncArgs(dst)...) }
	const step = 500
	began := time.Now()
	kills := 0
	grow(0, step)
	// How long an uninterrupted copy of the first round into each kind
	// of destination takes (into scratch ones) bounds the kill moments.
	full := map[string]time.Duration{}
	for i, probe := range dstsIn(t.TempDir(), "probe-"+uniquePrefix(t)) {
		begin := time.Now()
		if out, err := exec.Command(bin, "copy", "--accept-gaps", src, probe, "-q", "--no-state").CombinedOutput(); err != nil {
			t.Fatalf("probe copy into %s: %v\n%s", probe, err, out)
		}
		full[dsts[i]] = time.Since(begin)
	}
	for round := range 2 {
		if round > 0 {
			grow(round*step, (round+1)*step)
		}
		for _, dst := range dsts {
			for range 2 {
				cmd := sync(dst)
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(time.Duration(rng.Int64N(int64(full[dst]))))
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					kills++
				} else {
					// It was done before the kill: later syncs of this
					// round have less to do; aim earlier.
					full[dst] = max(full[dst]/2, 20*time.Millisecond)
				}
			}
			rep := syncReport(t, 0, syncArgs(dst)...)
			for _, r := range rep.Runs {
				if r.Outcome != transfer.Unchanged {
					t.Logf("round %d: %s: after the kills, %s %s (%s), appended %v, %d points written", round, dst, r.Origin, r.Outcome, r.Reason, r.Appended, r.Points)
				}
			}
			if out, err := exec.Command(bin, "check", src, dst).CombinedOutput(); err != nil || !strings.Contains(string(out), " 0 differences") {
				t.Fatalf("round %d: check %s: %v\n%s", round, dst, err, out)
			}
		}
		if out, err := exec.Command(bin, "archive", "check", filepath.Join(work, "archive")).CombinedOutput(); err != nil {
			t.Fatalf("round %d: archive check: %v\n%s", round, err, out)
		}
		active, deleted := mlflowRunsUnder(t, srv.URL, uniquePrefix(t))
		if active != len(runs) {
			t.Fatalf("round %d: MLflow holds %d active runs, want %d", round, active, len(runs))
		}
		// A first copy cut short and an append cut short are both
		// continued in place, whenever the kill came (also between
		// MLflow's commit and the ledger's record): no run is deleted.
		if deleted != 0 {
			t.Errorf("round %d: MLflow holds %d deleted runs: a killed copy was not continued in place", round, deleted)
		}
		t.Logf("round %d: %d syncs killed so far; MLflow holds %d deleted runs (%v)", round, kills, deleted, time.Since(began).Round(time.Millisecond))
	}

	// A last growth, synced without a kill: appended to, new points only.
	grow(2*step, 2*step+100)
	for _, dst := range dsts[:2] {
		rep := syncReport(t, 0, syncArgs(dst)...)
		for _, r := range rep.Runs {
			if r.Outcome != transfer.Committed || !r.Appended || r.Points != 200 || r.KeptPoints != 2*2*step {
				t.Errorf("%s: run %s: %s, appended %v, %d points written, %d kept (%s); want 200 new points appended to %d",
					dst, r.Origin, r.Outcome, r.Appended, r.Points, r.KeptPoints, r.Reason, 2*2*step)
			}
		}
		if out, err := exec.Command(bin, "check", src, dst).CombinedOutput(); err != nil || !strings.Contains(string(out), " 0 differences") {
			t.Fatalf("check %s after the last growth: %v\n%s", dst, err, out)
		}
	}
}

// TestSyncTruncatedFolderThenFinished: a W&B run folder copied while the
// run was writing (its log cut in the middle of a record, as a copy
// racing the SDK leaves it) is synced into a Parquet archive and into
// MLflow; the folder is then replaced by the finished one and synced
// again. Each destination then equals a fresh copy of the finished folder
// (check between the two), and check against the folder passes.
func TestSyncTruncatedFolderThenFinished(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	finished, work := t.TempDir(), t.TempDir()
	growWandb(t, finished, "trunc001", 0, 800, false)
	runDirs, err := filepath.Glob(filepath.Join(finished, "wandb", "offline-run-*"))
	if err != nil || len(runDirs) != 1 {
		t.Fatalf("run folders: %v %v", runDirs, err)
	}
	name := filepath.Base(runDirs[0])
	srcRoot := filepath.Join(work, "src")
	place := func(truncate bool) {
		t.Helper()
		dst := filepath.Join(srcRoot, name)
		if err := os.RemoveAll(dst); err != nil {
			t.Fatal(err)
		}
		if err := os.CopyFS(dst, os.DirFS(runDirs[0])); err != nil {
			t.Fatal(err)
		}
		if !truncate {
			return
		}
		log := filepath.Join(dst, "run-trunc001.wandb")
		fi, err := os.Stat(log)
		if err != nil {
			t.Fatal(err)
		}
		// Past the 7-byte header and most records, off any boundary.
		if err := os.Truncate(log, fi.Size()*3/5+3); err != nil {
			t.Fatal(err)
		}
	}
	place(true)
	src := "wandb:" + srcRoot + "?crashed-after=1ns"
	p := uniquePrefix(t)
	for _, d := range []struct{ synced, fresh string }{
		{"parquet:" + filepath.Join(work, "synced"), "parquet:" + filepath.Join(work, "fresh")},
		{"mlflow+" + srv.URL + "?experiment-prefix=" + p + "synced-", "mlflow+" + srv.URL + "?experiment-prefix=" + p + "fresh-"},
	} {
		place(true)
		state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
		// A truncated log is damaged source data: exit 3 names it.
		first := syncReport(t, exitRunsFailed, "sync", src, d.synced, state)
		if len(first.Runs) != 1 || len(first.Runs[0].Damage) == 0 || first.Runs[0].Points == 0 {
			t.Fatalf("%s: sync of the truncated folder: %+v, want one run copied with its damage named", d.synced, first.Runs)
		}
		place(false)
		second := syncReport(t, 0, "sync", src, d.synced, state)
		if len(second.Runs) != 1 || second.Runs[0].Outcome != transfer.Committed {
			t.Fatalf("%s: sync of the finished folder: %+v", d.synced, second.Runs)
		}
		r := second.Runs[0]
		t.Logf("%s: truncated copy %d points; finished folder: %s (%s), appended %v, %d points written, %d kept",
			d.synced, first.Runs[0].Points, r.Outcome, r.Reason, r.Appended, r.Points, r.KeptPoints)
		if r.Appended && r.Points+r.KeptPoints != 1600 || !r.Appended && r.Points != 1600 {
			t.Errorf("%s: the finished run's 1600 points: %d written, %d kept", d.synced, r.Points, r.KeptPoints)
		}
		syncReport(t, 0, "copy", src, d.fresh, "--no-state")
		// A damage note left from the truncated copy would be a
		// difference (one only the destination shows).
		for _, c := range [][2]string{{src, d.synced}, {d.fresh, d.synced}} {
			code, out, errOut := runCLI(t, "check", c[0], c[1])
			if code != 0 || !strings.Contains(out, ": 1 match, 0 differences") {
				t.Errorf("check %s %s: exit %d\n%s%s", c[0], c[1], code, out, errOut)
			}
		}
	}
}
