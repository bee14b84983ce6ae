package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// runShards runs the command line args once per shard, with the
// variables env(i) set for task i of tasks, and checks that the shards
// between them copy the fixtures' 6 runs once (and, run again, find them
// all unchanged).
func runShards(t *testing.T, argsOf func(i int) []string, tasks int, env func(i int) map[string]string) {
	t.Helper()
	summary := regexp.MustCompile(`shard (\d+)/(\d+): copied (\d+) runs? .*; (\d+) unchanged, (\d+) in other shards`)
	for round := range 2 {
		copied, unchanged := 0, 0
		for i := range tasks {
			for k, v := range env(i) {
				t.Setenv(k, v)
			}
			args := argsOf(i)
			code, out, errOut := runCLI(t, args...)
			m := summary.FindStringSubmatch(out)
			if code != 0 || m == nil || m[1] != strconv.Itoa(i+1) || m[2] != strconv.Itoa(tasks) {
				t.Fatalf("round %d task %d of %q: exit %d, want shard %d/%d\n%s%s", round, i, args, code, i+1, tasks, out, errOut)
			}
			c, u, o := atoi(m[3]), atoi(m[4]), atoi(m[5])
			if c+u+o != 6 {
				t.Errorf("task %d: %d copied + %d unchanged + %d in other shards, want 6 in all", i, c, u, o)
			}
			copied, unchanged = copied+c, unchanged+u
		}
		if want := [2]int{6, 0}; round == 1 {
			want = [2]int{0, 6}
			if [2]int{copied, unchanged} != want {
				t.Errorf("round 2: the shards copied %d and found %d unchanged, want none copied", copied, unchanged)
			}
		} else if [2]int{copied, unchanged} != want {
			t.Errorf("round 1: the shards copied %d runs (%d unchanged), want each of the 6 once", copied, unchanged)
		}
	}
}

// TestShardedJobExamples parses the Kubernetes Indexed Job (with PyYAML)
// and the Slurm array script of docs/examples, checks what sharding
// relies on (an Indexed Job whose RUNFERRY_SHARDS equals its completions;
// an array numbered as a range), and runs each task's command line with
// the variables the batch system sets, against the W&B fixtures.
func TestShardedJobExamples(t *testing.T) {
	dir := filepath.Join(testenv.RepoRoot(t), "docs", "examples")
	out, err := exec.Command(testenv.Python(t), "-c", "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)",
		filepath.Join(dir, "runferry-sharded.job.yaml")).Output()
	if err != nil {
		t.Fatalf("parsing the Job: %v", err)
	}
	var job struct {
		APIVersion, Kind string
		Spec             struct {
			CompletionMode           string
			Completions, Parallelism int
			Template                 struct {
				Spec struct {
					Containers []struct {
						Args         []string
						Env          []struct{ Name, Value string }
						VolumeMounts []struct{ MountPath string }
					}
				}
			}
		}
	}
	if err := json.Unmarshal(out, &job); err != nil {
		t.Fatal(err)
	}
	cs := job.Spec.Template.Spec.Containers
	if job.APIVersion != "batch/v1" || job.Kind != "Job" || job.Spec.CompletionMode != "Indexed" || len(cs) != 1 || len(cs[0].Args) < 3 {
		t.Fatalf("not an Indexed Job with one container: %+v", job)
	}
	shards := ""
	for _, e := range cs[0].Env {
		if e.Name == "RUNFERRY_SHARDS" {
			shards = e.Value
		}
	}
	if shards != strconv.Itoa(job.Spec.Completions) || job.Spec.Parallelism != job.Spec.Completions {
		t.Fatalf("RUNFERRY_SHARDS %q, completions %d, parallelism %d: want all equal", shards, job.Spec.Completions, job.Spec.Parallelism)
	}
	tmp := t.TempDir()
	var args []string
	for _, a := range cs[0].Args {
		if a == cs[0].Args[1] {
			a = fixtures
		}
		for _, m := range cs[0].VolumeMounts {
			a = strings.Replace(a, m.MountPath, filepath.Join(tmp, m.MountPath), 1)
		}
		args = append(args, a)
	}
	args = append(args, "--accept-gaps") // fixture fxa00001's file whose content is gone
	t.Run("kubernetes", func(t *testing.T) {
		argsOf := func(i int) []string { // Kubernetes expands $(VAR) in args
			var out []string
			for _, a := range args {
				out = append(out, strings.ReplaceAll(a, "$(JOB_COMPLETION_INDEX)", fmt.Sprint(i)))
			}
			return out
		}
		runShards(t, argsOf, job.Spec.Completions, func(i int) map[string]string {
			return map[string]string{"JOB_COMPLETION_INDEX": fmt.Sprint(i), "RUNFERRY_SHARDS": shards}
		})
		reports, _ := filepath.Glob(filepath.Join(tmp, "state", "report-*.json"))
		if len(reports) != job.Spec.Completions {
			t.Errorf("%d reports, want one per pod: %v", len(reports), reports)
		}
	})

	script, err := os.ReadFile(filepath.Join(dir, "runferry-sharded.sbatch"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^#SBATCH --array=(\d+)-(\d+)\s`).FindStringSubmatch(string(script))
	if m == nil {
		t.Fatalf("no #SBATCH --array=A-B in the script")
	}
	lo, hi := atoi(m[1]), atoi(m[2])
	var line string
	for _, l := range strings.Split(strings.ReplaceAll(string(script), "\\\n", " "), "\n") {
		if strings.HasPrefix(l, "runferry ") {
			line = l
		}
	}
	if line == "" {
		t.Fatal("no runferry command line in the script")
	}
	home, scratch := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(home, "runferry"), 0o755)
	argsOf := func(i int) []string {
		expanded := os.Expand(line, func(v string) string {
			return map[string]string{"USER": "alice", "HOME": home, "SLURM_ARRAY_TASK_ID": fmt.Sprint(lo + i)}[v]
		})
		var args []string
		for _, f := range strings.Fields(expanded)[1:] {
			f = strings.Trim(f, `"`)
			switch {
			case strings.HasPrefix(f, "wandb:"):
				f = fixtures
			case strings.HasPrefix(f, "parquet:"):
				f = "parquet:" + filepath.Join(scratch, "archive")
			}
			args = append(args, f)
		}
		return append(args, "--accept-gaps")
	}
	t.Run("slurm", func(t *testing.T) {
		runShards(t, argsOf, hi-lo+1, func(i int) map[string]string {
			return map[string]string{"SLURM_ARRAY_TASK_ID": fmt.Sprint(lo + i), "SLURM_ARRAY_TASK_MIN": fmt.Sprint(lo),
				"SLURM_ARRAY_TASK_MAX": fmt.Sprint(hi), "SLURM_ARRAY_TASK_COUNT": fmt.Sprint(hi - lo + 1), "JOB_COMPLETION_INDEX": "", "RUNFERRY_SHARDS": ""}
		})
		reports, _ := filepath.Glob(filepath.Join(home, "runferry", "report-*.json"))
		if len(reports) != hi-lo+1 {
			t.Errorf("%d reports, want one per task: %v", len(reports), reports)
		}
	})
}
