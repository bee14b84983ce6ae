package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// shardSource writes an archive of exps experiments with perExp runs of
// points points each, to be the source of the shard tests.
func shardSource(t *testing.T, dir string, exps, perExp, points int) string {
	t.Helper()
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &dataset.Dataset{}
	for e := range exps {
		exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("exp-%d", e)}, Name: fmt.Sprintf("sharded %d", e), CreatedAt: t0}
		d.Experiments = append(d.Experiments, exp)
		for r := range perExp {
			run := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("run-%d-%02d", e, r)}, Experiment: exp.Origin,
				Name: fmt.Sprintf("run %d.%d", e, r), Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Hour),
				Params: []schema.Param{{Key: "lr", Value: fmt.Sprint(r)}}}}
			for s := range points {
				run.Metrics = append(run.Metrics, schema.Metric{Key: "loss", Step: int64(s), Time: t0.UnixMilli() + int64(s), Value: float64(e*1e6 + r*1e3 + s)})
			}
			d.Runs = append(d.Runs, run)
		}
	}
	dst, err := sinkparquet.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{}); err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("writing the source: %v", err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return "parquet:" + dir
}

// shardJob is one shard's process.
type shardJob struct {
	runs   int // runs of the shard
	cmd    *exec.Cmd
	out    bytes.Buffer
	report string
}

func startShard(t *testing.T, bin, src, dst, dir string, k, n, runs int) *shardJob {
	t.Helper()
	j := &shardJob{runs: runs, report: filepath.Join(dir, fmt.Sprintf("report-%d.json", k))}
	j.cmd = exec.Command(bin, "sync", "--accept-gaps", src, dst, "--shard", fmt.Sprintf("%d/%d", k, n), "--concurrency", "1",
		"--state", filepath.Join(dir, fmt.Sprintf("ledger-%d.db", k)), "--report", j.report, "-q")
	j.cmd.Stdout, j.cmd.Stderr = &j.out, &j.out
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return j
}

func (j *shardJob) totals(t *testing.T) transfer.Totals {
	t.Helper()
	var rep transfer.Report
	if b, err := os.ReadFile(j.report); err != nil || json.Unmarshal(b, &rep) != nil {
		t.Fatalf("%v: no report: %v\n%s", j.cmd.Args, err, j.out.String())
	}
	return rep.Totals
}

// shardSize is the number of runs of shardSource's data in shard k of n.
func shardSize(exps, perExp, k, n int) int {
	c := 0
	for e := range exps {
		for r := range perExp {
			if transfer.ShardOf(fmt.Sprintf("memory:run-%d-%02d", e, r), n) == k {
				c++
			}
		}
	}
	return c
}

// TestFourShardProcesses: four shards as four processes of the built
// binary sync one source into one MLflow server, then into one Parquet
// archive, at the same time. One shard is killed mid-run each time and
// re-run. Then check passes against both destinations, the shards'
// reports add up to every run exactly once, and MLflow holds each
// experiment once with each run once, none deleted (the killed shard's
// partial copy is continued in place by its re-run).
func TestFourShardProcesses(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	if testing.Short() {
		t.Skip("builds the binary and runs eight shard processes against a real MLflow server")
	}
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	bin := testenv.BuildOnce(t, ".")
	const n, exps, perExp = 4, 3, 8
	src := shardSource(t, filepath.Join(dir, "src"), exps, perExp, 500)
	prefix := fmt.Sprintf("shards-%d/", testenv.FreePort(t))
	arch := filepath.Join(dir, "dst")
	victim := 1
	for k := 2; k <= n; k++ {
		if shardSize(exps, perExp, k, n) > shardSize(exps, perExp, victim, n) {
			victim = k
		}
	}
	for _, dst := range []string{"parquet:" + arch, "mlflow+" + srv.URL + "?experiment-prefix=" + prefix} {
		began := time.Now()
		work := filepath.Join(dir, strings.SplitN(dst, ":", 2)[0])
		os.MkdirAll(work, 0o755)
		jobs := map[int]*shardJob{}
		for k := 1; k <= n; k++ {
			jobs[k] = startShard(t, bin, src, dst, work, k, n, shardSize(exps, perExp, k, n))
		}
		// Kill the shard with the most runs (the widest window between
		// its first commit and its last) once the destination holds a run
		// of it complete.
		killed := jobs[victim]
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if shardDone(t, dst, arch, srv.URL, prefix, victim, n) > 0 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := killed.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("%s: shard %d was gone before the kill", dst, victim)
		}
		killed.cmd.Wait()
		if have := shardDone(t, dst, arch, srv.URL, prefix, victim, n); have == 0 || have >= killed.runs {
			t.Errorf("%s: shard %d had %d of its %d runs complete when killed: not mid-run", dst, victim, have, killed.runs)
		}
		for k, j := range jobs {
			if k == victim {
				continue
			}
			if err := j.cmd.Wait(); err != nil {
				t.Fatalf("%s: shard %d: %v\n%s", dst, k, err, j.out.String())
			}
		}
		jobs[victim] = startShard(t, bin, src, dst, work, victim, n, killed.runs) // heal
		if err := jobs[victim].cmd.Wait(); err != nil {
			t.Fatalf("%s: shard %d re-run: %v\n%s", dst, victim, err, jobs[victim].out.String())
		}
		healed := jobs[victim].totals(t)
		t.Logf("%s: shard %d re-run: %d committed, %d unchanged", dst, victim, healed.Committed, healed.Unchanged)
		sum := 0
		for k, j := range jobs {
			tot := j.totals(t)
			if tot.Failed != 0 || tot.Runs+tot.OtherShards != exps*perExp {
				t.Errorf("%s: shard %d: %+v; want no failure and %d runs in all", dst, k, tot, exps*perExp)
			}
			sum += tot.Runs
		}
		if sum != exps*perExp {
			t.Errorf("%s: the shards' runs add up to %d, want %d", dst, sum, exps*perExp)
		}
		synced := time.Since(began)
		if out, err := exec.Command(bin, "check", src, dst).CombinedOutput(); err != nil || !strings.Contains(string(out), "0 differences") {
			t.Fatalf("check %s: %v\n%s", dst, err, out)
		}
		t.Logf("%s: shards %v, check %v", dst, synced.Round(time.Millisecond), (time.Since(began) - synced).Round(time.Millisecond))
	}
	if out, err := exec.Command(bin, "archive", "check", arch).CombinedOutput(); err != nil {
		t.Fatalf("archive check: %v\n%s", err, out)
	}
	// MLflow: each experiment once, each run once (also among deleted).
	var es struct {
		Experiments []struct {
			ID   string `json:"experiment_id"`
			Name string `json:"name"`
		} `json:"experiments"`
	}
	mlflowPost(t, srv.URL+"/api/2.0/mlflow/experiments/search", map[string]any{
		"max_results": 1000, "view_type": "ALL", "filter": fmt.Sprintf("name LIKE '%s%%'", prefix)}, &es)
	if len(es.Experiments) != exps {
		t.Fatalf("MLflow holds %d experiments under %s, want %d: %+v", len(es.Experiments), prefix, exps, es.Experiments)
	}
	for _, e := range es.Experiments {
		var rs struct {
			Runs []struct {
				Info struct {
					RunName        string `json:"run_name"`
					LifecycleStage string `json:"lifecycle_stage"`
				} `json:"info"`
			} `json:"runs"`
		}
		mlflowPost(t, srv.URL+"/api/2.0/mlflow/runs/search", map[string]any{
			"experiment_ids": []string{e.ID}, "run_view_type": "ALL", "max_results": 1000}, &rs)
		active, deleted := 0, 0
		for _, r := range rs.Runs {
			if r.Info.LifecycleStage == "active" {
				active++
			} else {
				deleted++
			}
		}
		if active != perExp {
			t.Errorf("experiment %s holds %d active runs, want %d", e.Name, active, perExp)
		}
		// A run the killed shard cut short is continued in place by its
		// re-run (sinks/mlflow OpenRun), not superseded: no deleted copy.
		if deleted > 0 {
			t.Errorf("experiment %s holds %d deleted runs; want none (the killed shard's partial copy must be continued in place, not deleted and redone)", e.Name, deleted)
		}
	}
}

// shardDone counts the runs of shard k of n that dst holds complete.
func shardDone(t *testing.T, dst, arch, mlflowURL, prefix string, k, n int) int {
	c := 0
	if strings.HasPrefix(dst, "parquet:") {
		st, err := archive.LoadState(arch)
		if err != nil {
			return 0
		}
		for _, r := range st.Manifest.Runs {
			if transfer.ShardOf(r.Origin, n) == k {
				c++
			}
		}
		return c
	}
	var es struct {
		Experiments []struct {
			ID string `json:"experiment_id"`
		} `json:"experiments"`
	}
	mlflowPost(t, mlflowURL+"/api/2.0/mlflow/experiments/search", map[string]any{
		"max_results": 1000, "filter": fmt.Sprintf("name LIKE '%s%%'", prefix)}, &es)
	var ids []string
	for _, e := range es.Experiments {
		ids = append(ids, e.ID)
	}
	if len(ids) == 0 {
		return 0
	}
	var rs struct {
		Runs []struct {
			Data struct {
				Tags []struct{ Key, Value string } `json:"tags"`
			} `json:"data"`
		} `json:"runs"`
	}
	mlflowPost(t, mlflowURL+"/api/2.0/mlflow/runs/search", map[string]any{
		"experiment_ids": ids, "max_results": 1000, "filter": "tags.`mlflow.runferry.complete` = 'true'"}, &rs)
	for _, r := range rs.Runs {
		for _, tag := range r.Data.Tags {
			if tag.Key == "runferry.origin" && transfer.ShardOf(tag.Value, n) == k {
				c++
			}
		}
	}
	return c
}

func mlflowPost(t *testing.T, url string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}
