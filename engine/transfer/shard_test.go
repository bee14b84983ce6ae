package transfer_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestShardOfIsFixed pins the partition: a change to ShardOf would move
// runs between shards of workers re-run after an upgrade, so these values
// must never change (docs/SHARDING.md documents the function).
func TestShardOfIsFixed(t *testing.T) {
	got := map[string][2]int{}
	for _, o := range []string{"wandb:acme/vision/abc123", "mlflow:127.0.0.1:5000/1/0f3c", "memory:run-big", ""} {
		got[o] = [2]int{transfer.ShardOf(o, 4), transfer.ShardOf(o, 7)}
	}
	want := map[string][2]int{
		// Computed independently: python3 -c "import hashlib;
		// h=int.from_bytes(hashlib.sha256(o.encode()).digest()[:8],'big'); print(h%4+1, h%7+1)"
		"wandb:acme/vision/abc123":     {3, 2},
		"mlflow:127.0.0.1:5000/1/0f3c": {3, 3},
		"memory:run-big":               {1, 7},
		"":                             {1, 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ShardOf changed:\n got %v\nwant %v", got, want)
	}
}

func TestParseShard(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"1/4", "1/4", ""},
		{"4/4", "4/4", ""},
		{"1/1", "1/1", ""},
		{"0/4", "", "K must be from 1 to 4"},
		{"5/4", "", "K must be from 1 to 4"},
		{"1/0", "", "N (the number of shards) must be at least 1"},
		{"a/4", "", "whole numbers"},
		{"3", "", "want K/N"},
	} {
		s, err := transfer.ParseShard(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.in) {
				t.Errorf("%q: error %v, want one naming %q and saying %q", c.in, err, c.in, c.err)
			}
			continue
		}
		if err != nil || s.String() != c.want {
			t.Errorf("%q: %v, %v", c.in, s, err)
		}
	}
}

func TestShardFromEnv(t *testing.T) {
	for _, c := range []struct {
		env       map[string]string
		want, err string
	}{
		{map[string]string{"JOB_COMPLETION_INDEX": "0", "RUNFERRY_SHARDS": "4"}, "1/4", ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "3", "RUNFERRY_SHARDS": "4"}, "4/4", ""},
		{map[string]string{"JOB_COMPLETION_INDEX": "4", "RUNFERRY_SHARDS": "4"}, "", "shard 5 of 4, which does not exist"},
		{map[string]string{"JOB_COMPLETION_INDEX": "2"}, "", "set RUNFERRY_SHARDS to the Job's spec.completions"},
		{map[string]string{"JOB_COMPLETION_INDEX": "x", "RUNFERRY_SHARDS": "4"}, "", `JOB_COMPLETION_INDEX="x" is not a whole number`},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"}, "1/4", ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, "4/4", ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "8", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "4", "SLURM_ARRAY_TASK_COUNT": "4"}, "3/4", ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "3"}, "", "has no shard numbering"},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "5", "RUNFERRY_SHARDS": "3"}, "3/3", ""},
		{map[string]string{"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0"}, "", "neither SLURM_ARRAY_TASK_COUNT nor RUNFERRY_SHARDS"},
		{map[string]string{}, "", "neither JOB_COMPLETION_INDEX"},
	} {
		s, err := transfer.ShardFromEnv(func(k string) string { return c.env[k] })
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.env, err, c.err)
			}
			continue
		}
		if err != nil || s.String() != c.want {
			t.Errorf("%v: got %v (%v), want %s", c.env, s, err, c.want)
		}
	}
}

// TestShardsCoverEveryRunOnce: N sharded jobs into one destination write
// every run exactly once between them, each report counts the others'
// runs as other shards', and together they equal an unsharded copy.
func TestShardsCoverEveryRunOnce(t *testing.T) {
	want := dataset.Canonical()
	for i := range 20 { // enough runs that each of 3 shards gets some
		want.Runs = append(want.Runs, &dataset.RunData{Run: schema.Run{
			Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("extra-%02d", i)}, Experiment: want.Experiments[1].Origin,
			Name: fmt.Sprint("extra ", i), Status: schema.StatusFinished, Start: want.Runs[0].Run.Start}})
	}
	dst := memsink.New(sinks.Limits{})
	const n = 3
	var seen []string
	for k := 1; k <= n; k++ {
		rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Shard: transfer.Shard{K: k, N: n}}))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Shard != fmt.Sprintf("%d/%d", k, n) {
			t.Errorf("report names shard %q", rep.Shard)
		}
		var mine []string
		for _, r := range rep.Runs {
			if r.Outcome != transfer.Committed {
				t.Errorf("shard %d: %s %s", k, r.Origin, r.Outcome)
			}
			if transfer.ShardOf(r.Origin, n) != k {
				t.Errorf("shard %d wrote %s of shard %d", k, r.Origin, transfer.ShardOf(r.Origin, n))
			}
			mine = append(mine, r.Origin)
		}
		if len(mine) == 0 {
			t.Errorf("shard %d got no run: the fixture does not test the split", k)
		}
		if rep.Totals.Runs != len(mine) || rep.Totals.OtherShards != len(want.Runs)-len(mine) {
			t.Errorf("shard %d totals: runs %d, other shards %d; want %d and %d", k, rep.Totals.Runs, rep.Totals.OtherShards, len(mine), len(want.Runs)-len(mine))
		}
		seen = append(seen, mine...)
	}
	slices.Sort(seen)
	if len(slices.Compact(slices.Clone(seen))) != len(seen) || len(seen) != len(want.Runs) {
		t.Fatalf("shards wrote %d runs (%d distinct), want %d", len(seen), len(slices.Compact(slices.Clone(seen))), len(want.Runs))
	}
	mustEqual(t, want, dst)
}
