package archive_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	sinkparquet "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// grownData returns runs runs whose keys a and b hold (round+1)*points
// points each: round r+1 is round r grown, so a sync with a ledger
// appends to every run.
func grownData(runs, points, round int) *dataset.Dataset {
	base := dataset.Canonical()
	d := &dataset.Dataset{Experiments: base.Experiments[:1]}
	for i := range runs {
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("grown-%02d", i)},
			Experiment: base.Experiments[0].Origin, Name: fmt.Sprint("grown ", i), Status: schema.StatusRunning,
			Start: base.Runs[0].Run.Start}}
		for _, k := range []string{"b", "a"} {
			for s := range (round + 1) * points {
				r.Metrics = append(r.Metrics, schema.Metric{Key: k, Step: int64(s), Time: int64(1e12 + s), Value: float64(i*1e6 + s)})
			}
		}
		d.Runs = append(d.Runs, r)
	}
	return d
}

// growArchive syncs rounds from..to-1 of grownData into the archive at dir
// with one ledger, so that each run gets one metrics file per round, and
// returns the last round's data.
func growArchive(t *testing.T, dir string, runs, points, from, to int) *dataset.Dataset {
	t.Helper()
	l, err := state.Open(ledgerPath(t, dir), state.Job{Source: "memory:grown", Sink: "parquet:" + dir}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var d *dataset.Dataset
	for round := from; round < to; round++ {
		d = grownData(runs, points, round)
		dst, err := sinkparquet.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := transfer.Copy(context.Background(), memsrc.New(d), dst, transfer.Options{Ledger: l})
		if err != nil || rep.Totals.Failed != 0 || round > 0 && rep.Totals.Appended != runs {
			t.Fatalf("round %d: %v %+v", round, err, rep.Totals)
		}
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// metricsFiles returns, per run, its number of metrics files.
// ledgers holds the ledger paths of archives in object storage, by location.
var ledgers = map[string]string{}

// ledgerPath is the ledger of the jobs writing the archive at dir: beside
// a folder, in a temporary folder of t for an object-storage location.
func ledgerPath(t *testing.T, dir string) string {
	if !archive.IsObjectStorage(dir) {
		return dir + ".ledger.db"
	}
	if _, ok := ledgers[dir]; !ok {
		ledgers[dir] = filepath.Join(t.TempDir(), "ledger.db")
	}
	return ledgers[dir]
}

func metricsFiles(t *testing.T, dir string) map[string]int {
	t.Helper()
	st, err := archive.LoadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range st.Manifest.Runs {
		for _, f := range r.Files {
			if f.Table == archive.TableMetrics {
				out[r.Origin]++
			}
		}
	}
	return out
}

func points(d *dataset.Dataset) int {
	n := 0
	for _, r := range d.Runs {
		n += len(r.Metrics)
	}
	return n
}

// pyarrowCount returns the rows pyarrow reads from the metrics folder and
// the distinct (run, key, step) among them.
func pyarrowCount(t *testing.T, dir string) (rows, distinct int) {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), "-c", `import sys, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1] + "/metrics", format="parquet").to_table(columns=["run", "key", "step"])
print(t.num_rows, t.group_by(["run", "key", "step"]).aggregate([]).num_rows)`, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow: %v\n%s", err, out)
	}
	if _, err := fmt.Sscan(string(out), &rows, &distinct); err != nil {
		t.Fatalf("pyarrow printed %q", out)
	}
	return rows, distinct
}

// TestCompactMergesDeltas: runs appended to by three syncs hold three
// metrics files each; a dry run counts them and changes nothing; Compact
// leaves one per run, holding the same points (read through the archive
// source, DuckDB and pyarrow, each point once); a second Compact finds
// nothing to do; a later append goes on after the merged file.
func TestCompactMergesDeltas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	want := growArchive(t, dir, 4, 50, 0, 3)
	for o, n := range metricsFiles(t, dir) {
		if n != 3 {
			t.Fatalf("run %s holds %d metrics files before compacting, want 3", o, n)
		}
	}
	before, _ := os.ReadFile(filepath.Join(dir, archive.ManifestFile))
	rep, err := archive.Compact(dir, true)
	if err != nil || rep.Runs != 4 || rep.FilesBefore != 12 || rep.Points != int64(points(want)) || rep.NewBytes != 0 {
		t.Fatalf("dry run: %+v, %v", rep, err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, archive.ManifestFile)); !bytes.Equal(before, after) {
		t.Fatal("the dry run changed the manifest")
	}
	rep, err = archive.Compact(dir, false)
	if err != nil || rep.Runs != 4 || rep.FilesBefore != 12 || rep.Points != int64(points(want)) || rep.NewBytes == 0 || rep.Snapshot == 0 {
		t.Fatalf("compact: %+v, %v", rep, err)
	}
	for o, n := range metricsFiles(t, dir) {
		if n != 1 {
			t.Errorf("run %s holds %d metrics files after compacting, want 1", o, n)
		}
	}
	expectEqual(t, dir, want)
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
	if got := duckCount(t, dir); got != points(want) {
		t.Errorf("DuckDB reads %d points, want %d", got, points(want))
	}
	if rows, distinct := pyarrowCount(t, dir); rows != points(want) || distinct != rows {
		t.Errorf("pyarrow reads %d rows, %d distinct, want %d", rows, distinct, points(want))
	}
	oneVersionPerRun(t, dir)
	if rep, err := archive.Compact(dir, false); err != nil || rep.Runs != 0 || rep.Snapshot != 0 {
		t.Errorf("second compact: %+v, %v", rep, err)
	}
	// A fourth round appends after the merged file.
	want = growArchive(t, dir, 4, 50, 3, 4)
	for o, n := range metricsFiles(t, dir) {
		if n != 2 {
			t.Errorf("run %s holds %d metrics files after one more append, want 2", o, n)
		}
	}
	expectEqual(t, dir, want)
}

const compactChildEnv = "RUNFERRY_ARCHIVE_COMPACT_CHILD"

// TestCompactChild is the process TestCompactKilled kills.
func TestCompactChild(t *testing.T) {
	dir := os.Getenv(compactChildEnv)
	if dir == "" {
		t.Skip("run by TestCompactKilled")
	}
	fmt.Println(childWriting)
	if _, err := archive.Compact(dir, false); err != nil {
		t.Fatal(err)
	}
}

// compactKills is how many times TestCompactKilled kills a compaction,
// one in each quarter of an uninterrupted one's time (killMoments).
const compactKills = 4

// TestCompactKilled kills a compacting process at compactKills random
// moments, one in each quarter of the compaction (killMoments): after
// each kill the archive checks, reads back whole, DuckDB sees every point
// once, and a new Compact finishes the job. The kills fall first, each in
// its own copy of the archive, then DuckDB counts the points of every
// killed copy in one process, then each copy is compacted again.
func TestCompactKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const runs = 8
	clean := filepath.Join(t.TempDir(), "grown")
	want := growArchive(t, clean, runs, 4_000, 0, 3)
	child := func(dir string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^TestCompactChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), compactChildEnv+"="+dir)
		return cmd
	}
	dir := filepath.Join(t.TempDir(), "calibrate")
	os.CopyFS(dir, os.DirFS(clean))
	wait := startChild(t, child(dir))
	start := time.Now()
	if out, err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	full := time.Since(start)
	var dirs []string
	var merged []int
	for i, delay := range killMoments(testenv.Rand(t), compactKills, full) {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("kill-%d", i))
		if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
			t.Fatal(err)
		}
		cmd := child(dir)
		wait := startChild(t, cmd)
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		wait()
		done := 0
		for _, n := range metricsFiles(t, dir) {
			if n == 1 {
				done++
			}
		}
		t.Logf("kill %d after %v of %v: %d of %d runs compacted", i, delay, full, done, runs)
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("kill %d: check: %v", i, err)
		}
		expectEqual(t, dir, want)
		dirs, merged = append(dirs, dir), append(merged, done)
	}
	for i, got := range duckCounts(t, dirs...) {
		if got != points(want) {
			t.Fatalf("kill %d: DuckDB reads %d points, want %d", i, got, points(want))
		}
	}
	for i, dir := range dirs {
		if rep, err := archive.Compact(dir, false); err != nil || rep.Runs != runs-merged[i] {
			t.Fatalf("kill %d: compact again: %+v, %v; want the %d runs left", i, rep, err, runs-merged[i])
		}
		for o, n := range metricsFiles(t, dir) {
			if n != 1 {
				t.Fatalf("kill %d: run %s still holds %d metrics files", i, o, n)
			}
		}
		expectEqual(t, dir, want)
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("kill %d: after compacting again: %v", i, err)
		}
	}
}
