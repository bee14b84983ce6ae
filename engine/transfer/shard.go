package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/runferry/runferry/sources"
)

// Shard is one of N disjoint shares of a job's runs (--shard K/N): N
// workers, each given another K, together cover every run exactly once.
// The zero Shard (N == 0) holds every run.
//
// The partition is part of the archive of decisions users rely on (a
// worker re-run next week must find the same runs it had), so it is fixed
// and must never change between versions:
//
//	shard(run) = 1 + (uint64 big-endian of the first 8 bytes of
//	             SHA-256(origin)) mod N
//
// where origin is the run's origin as the report prints it
// ("system:id", schema.Ref.String). K is 1-based: 1 <= K <= N.
type Shard struct {
	K, N int
}

// ShardOf returns the shard (1..n) that holds origin among n shards.
func ShardOf(origin string, n int) int {
	sum := sha256.Sum256([]byte(origin))
	return 1 + int(binary.BigEndian.Uint64(sum[:8])%uint64(n))
}

// Holds reports whether the shard holds the run or experiment with origin
// (every origin, for the zero Shard).
func (s Shard) Holds(origin string) bool {
	return s.N <= 1 || ShardOf(origin, s.N) == s.K
}

// IsZero reports whether s is the zero Shard (no sharding).
func (s Shard) IsZero() bool { return s.N == 0 }

// String renders s as "K/N" ("" for the zero Shard).
func (s Shard) String() string {
	if s.IsZero() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.K, s.N)
}

// ParseShard reads "K/N" (1 <= K <= N). Its errors name what is wrong.
func ParseShard(v string) (Shard, error) {
	ks, ns, ok := strings.Cut(v, "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: want K/N, e.g. 1/4 (shard K of N, K from 1 to N), or auto", v)
	}
	k, kerr := strconv.Atoi(strings.TrimSpace(ks))
	n, nerr := strconv.Atoi(strings.TrimSpace(ns))
	switch {
	case kerr != nil || nerr != nil:
		return Shard{}, fmt.Errorf("--shard %q: K and N must be whole numbers, e.g. 1/4", v)
	case n < 1:
		return Shard{}, fmt.Errorf("--shard %q: N (the number of shards) must be at least 1", v)
	case k < 1 || k > n:
		return Shard{}, fmt.Errorf("--shard %q: K must be from 1 to %d (shards are numbered from 1)", v, n)
	}
	return Shard{K: k, N: n}, nil
}

// ShardFromEnv finds this worker's shard from the variables of the batch
// system that started it, for --shard auto:
//
//   - a Kubernetes Indexed Job sets JOB_COMPLETION_INDEX (0-based) but does
//     not expose the number of completions to the pod: RUNFERRY_SHARDS must
//     hold it (set it to the Job's spec.completions). Shard K is
//     JOB_COMPLETION_INDEX+1.
//   - a Slurm job array sets SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN,
//     SLURM_ARRAY_TASK_COUNT and, for --array=A-B:S, SLURM_ARRAY_TASK_STEP:
//     K is (ID-MIN)/STEP+1 and N is COUNT (RUNFERRY_SHARDS, if set,
//     overrides COUNT). An array given as a list with gaps (--array=1,5,9)
//     has no such numbering and is refused.
//
// getenv is os.Getenv in the command.
func ShardFromEnv(getenv func(string) string) (Shard, error) {
	num := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("--shard auto: %s=%q is not a whole number", name, v)
		}
		return n, true, nil
	}
	shards, haveShards, err := num("RUNFERRY_SHARDS")
	if err != nil {
		return Shard{}, err
	}
	if idx, ok, err := num("JOB_COMPLETION_INDEX"); err != nil {
		return Shard{}, err
	} else if ok {
		if !haveShards {
			return Shard{}, fmt.Errorf("--shard auto: JOB_COMPLETION_INDEX=%d is set (Kubernetes Indexed Job) but Kubernetes does not tell a pod the number of completions: set RUNFERRY_SHARDS to the Job's spec.completions, or pass --shard %d/N", idx, idx+1)
		}
		return checkAuto(Shard{K: idx + 1, N: shards}, fmt.Sprintf("JOB_COMPLETION_INDEX=%d, RUNFERRY_SHARDS=%d", idx, shards))
	}
	id, ok, err := num("SLURM_ARRAY_TASK_ID")
	if err != nil {
		return Shard{}, err
	}
	if !ok {
		return Shard{}, fmt.Errorf("--shard auto: neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm job array) is set; pass --shard K/N")
	}
	lo, okMin, err := num("SLURM_ARRAY_TASK_MIN")
	if err != nil {
		return Shard{}, err
	}
	count, okCount, err := num("SLURM_ARRAY_TASK_COUNT")
	if err != nil {
		return Shard{}, err
	}
	step, okStep, err := num("SLURM_ARRAY_TASK_STEP")
	if err != nil {
		return Shard{}, err
	}
	if !okMin {
		return Shard{}, fmt.Errorf("--shard auto: SLURM_ARRAY_TASK_ID=%d is set but SLURM_ARRAY_TASK_MIN is not", id)
	}
	if haveShards {
		count, okCount = shards, true
	}
	if !okCount {
		return Shard{}, fmt.Errorf("--shard auto: SLURM_ARRAY_TASK_ID=%d is set but neither SLURM_ARRAY_TASK_COUNT nor RUNFERRY_SHARDS is", id)
	}
	if !okStep || step < 1 {
		step = 1
	}
	what := fmt.Sprintf("SLURM_ARRAY_TASK_ID=%d, SLURM_ARRAY_TASK_MIN=%d, step %d, %d tasks", id, lo, step, count)
	if (id-lo)%step != 0 {
		return Shard{}, fmt.Errorf("--shard auto: %s: the task id is not on the array's step; use --array=A-B[:S]", what)
	}
	return checkAuto(Shard{K: (id-lo)/step + 1, N: count}, what)
}

func checkAuto(s Shard, what string) (Shard, error) {
	if s.N < 1 || s.K < 1 || s.K > s.N {
		return Shard{}, fmt.Errorf("--shard auto: %s gives shard %d of %d, which does not exist (an array given as a list with gaps, --array=1,5,9, has no shard numbering: use --array=A-B[:S])", what, s.K, s.N)
	}
	return s, nil
}

// skipAfterRuns warns that a sharded job leaves the model registry and the
// traces to an unsharded job (a source that can hold them gets the warning).
func (j *job) skipAfterRuns() {
	var what []string
	if _, ok := j.src.(sources.RegistryReader); ok {
		what = append(what, "the model registry")
	}
	if _, ok := j.src.(sources.TraceReader); ok {
		what = append(what, "traces")
	}
	if len(what) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rep.Warnings = append(j.rep.Warnings, fmt.Sprintf("--shard: %s (if the source holds any) not copied by a sharded job: they point at runs of every shard; copy them with one unsharded sync of the same source and destination after the shards finished (its runs are then all unchanged)", strings.Join(what, " and ")))
}
