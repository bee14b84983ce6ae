package archive_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// shardData returns n small runs over the two experiments of the
// canonical dataset.
func shardData(n, version int) *dataset.Dataset {
	base := dataset.Canonical()
	d := &dataset.Dataset{Experiments: base.Experiments}
	for i := range n {
		exp := base.Experiments[i%2].Origin
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("shard-run-%03d", i)},
			Experiment: exp, Name: fmt.Sprintf("v%d run %d", version, i), Status: schema.StatusFinished,
			Start: base.Runs[0].Run.Start, End: base.Runs[0].Run.End}}
		for s := range 200 + version*10 {
			r.Metrics = append(r.Metrics, schema.Metric{Key: "loss", Step: int64(s), Time: int64(1e12 + s), Value: float64(i*1000 + s)})
		}
		d.Runs = append(d.Runs, r)
	}
	return d
}

// TestConcurrentWriters: several writers may have an archive open at
// once, while Prune, which needs it alone, is refused until they close.
func TestConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, shardData(1, 0))
	w1, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatalf("a second writer: %v", err)
	}
	if _, err := archive.Prune(dir, 1); !errors.Is(err, archive.ErrLocked) {
		t.Errorf("Prune while writers are open: %v, want ErrLocked", err)
	}
	for _, w := range []*archive.Writer{w1, w2} {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := archive.Prune(dir, 1); err != nil {
		t.Errorf("Prune after the writers closed: %v", err)
	}
}

// TestShardsWriteOneArchive: four shards, each its own sink and writer,
// sync into one archive at the same time, twice (the second time with
// every run grown, so each shard appends). The archive then reads back as
// the source, Check passes, no table folder holds a run twice and a plain
// read sees each point once.
func TestShardsWriteOneArchive(t *testing.T) {
	shardsWriteOneArchive(t, t.TempDir(), duckCount)
}

// shardsWriteOneArchive is TestShardsWriteOneArchive on the archive at
// dir, counting the points a plain read of its metrics folder sees with
// count.
func shardsWriteOneArchive(t *testing.T, dir string, count func(t *testing.T, dir string) int) {
	const n = 4
	for version := range 2 {
		want := shardData(40, version)
		var wg sync.WaitGroup
		errs := make([]error, n)
		reps := make([]*transfer.Report, n)
		for k := 1; k <= n; k++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				dst, err := sinkparquet.New(dir)
				if err != nil {
					errs[k-1] = err
					return
				}
				reps[k-1], errs[k-1] = transfer.Copy(context.Background(), memsrc.New(want), dst,
					transfer.Options{Shard: transfer.Shard{K: k, N: n}, Concurrency: 2})
				if err := dst.Close(); err != nil && errs[k-1] == nil {
					errs[k-1] = err
				}
			}()
		}
		wg.Wait()
		committed := 0
		for k, err := range errs {
			if err != nil || reps[k].Totals.Failed != 0 {
				t.Fatalf("version %d shard %d: %v %+v", version, k+1, err, reps[k].Runs)
			}
			committed += reps[k].Totals.Committed
		}
		if committed != len(want.Runs) {
			t.Errorf("version %d: shards committed %d runs, want %d", version, committed, len(want.Runs))
		}
		expectEqual(t, dir, want)
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("version %d: check: %v", version, err)
		}
		st, err := archive.LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending != 0 || len(st.Manifest.Runs) != len(want.Runs) {
			t.Errorf("version %d: manifest lists %d runs with %d commits unpublished, want %d and 0", version, len(st.Manifest.Runs), st.Pending, len(want.Runs))
		}
		points := 0
		for _, r := range want.Runs {
			points += len(r.Metrics)
		}
		if got := count(t, dir); got != points {
			t.Errorf("version %d: DuckDB reads %d points, want %d", version, got, points)
		}
	}
}

// duckCount returns the number of metric rows DuckDB reads from the
// archive's metrics folder as a user would, failing if any (run, key,
// step) is seen twice.
func duckCount(t *testing.T, dir string) int {
	t.Helper()
	return duckCounts(t, dir)[0]
}

// duckCounts is duckCount of each archive in dirs, from one Python
// process (one import of DuckDB for all of them), in the order given.
func duckCounts(t *testing.T, dirs ...string) []int {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), append([]string{"-c", `import duckdb, sys
duckdb.execute("set enable_progress_bar = false")  # no progress bar on the output this test parses
for dir in sys.argv[1:]:
    n, d = duckdb.execute("select count(*), count(distinct (run, key, step)) from read_parquet(?)",
                          [dir + "/metrics/*/*.parquet"]).fetchone()
    print(n, d)`}, dirs...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(dirs) {
		t.Fatalf("duckdb printed %q for %d archives", out, len(dirs))
	}
	counts := make([]int, len(dirs))
	for i, line := range lines {
		var rows, distinct int
		if _, err := fmt.Sscan(line, &rows, &distinct); err != nil {
			t.Fatalf("duckdb printed %q", out)
		}
		if rows != distinct {
			t.Errorf("DuckDB sees %d rows but %d distinct (run, key, step) in %s: points seen twice", rows, distinct, dirs[i])
		}
		counts[i] = rows
	}
	return counts
}

// TestTornJournalLineIsCutOff: what a writer killed during a journal
// append left of its line is cut off by the next writer's commit, even
// while another writer (here w) keeps the archive open, so the journal
// never holds a damaged line among whole ones.
func TestTornJournalLineIsCutOff(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, shardData(2, 0))
	w, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := archive.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	journal := filepath.Join(dir, "journal", fmt.Sprintf("%06d.jsonl", st.Manifest.Snapshot+1))
	os.MkdirAll(filepath.Dir(journal), 0o755)
	if err := os.WriteFile(journal, []byte(`0123456789abcdef {"run":{"origin":"memory:torn`), 0o644); err != nil {
		t.Fatal(err)
	}
	want := shardData(5, 1)
	dst, err := sinkparquet.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, transfer.Options{})
	if err != nil || rep.Totals.Committed != 5 {
		t.Fatalf("copy beside an open writer: %v %+v", err, rep.Totals)
	}
	// Before either writer publishes, a reader sees every commit.
	if st, err := archive.LoadState(dir); err != nil || st.Pending != 5 {
		t.Fatalf("state with 5 runs committed and not published: %v, %+v", err, st)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expectEqual(t, dir, want)
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
}
