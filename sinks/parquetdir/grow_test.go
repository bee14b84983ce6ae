package parquetdir_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/parquetdir"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
	"github.com/runferry/runferry/sources/wandbdir"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// growWandb has the real wandb SDK (offline) write steps [from, to) into
// the run id under dir, resuming it when it exists.
func growWandb(t *testing.T, dir, id string, from, to int) {
	t.Helper()
	script := filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "grow.py")
	out, err := exec.Command(testenv.Python(t), script, dir, id, strconv.Itoa(from), strconv.Itoa(to)).CombinedOutput()
	if err != nil {
		t.Fatalf("grow.py %s %d..%d: %v\n%s", id, from, to, err, out)
	}
}

// TestSyncAppendsToGrowingWandbRun: a W&B run synced into an archive, then
// resumed by the real SDK to log more steps, then synced again: the second
// sync's snapshot holds only the new points in one more metrics file of
// the run, DuckDB over metrics/ sees every point once, and check finds the
// archive equal to the W&B run.
func TestSyncAppendsToGrowingWandbRun(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(t.TempDir(), "archive")
	const id = "grow0002"
	growWandb(t, dir, id, 0, 40)
	l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "wandb:" + dir, Sink: "parquet:" + arch}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	sync := func() transfer.RunResult {
		t.Helper()
		loc, err := location.Parse("wandb:"+dir+"/wandb?crashed-after=1ns", func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := wandbdir.Open(ctx, loc)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		dst, err := parquetdir.New(arch)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := transfer.Copy(ctx, src, dst, transfer.Options{Ledger: l, Backoff: func(int) time.Duration { return time.Millisecond }})
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil || rep.Totals.Failed != 0 || len(rep.Runs) != 1 {
			t.Fatalf("sync: %v %+v %+v", err, rep.Totals, rep.Runs)
		}
		back, err := srcparquet.New(arch, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer back.Close()
		res, err := check.Run(ctx, src, back, check.Options{})
		if err != nil || len(res.Differences) > 0 {
			t.Fatalf("check W&B vs the archive after the sync: %v\n%v", err, res.Differences)
		}
		return rep.Runs[0]
	}
	first := sync()
	if first.Outcome != transfer.Committed || first.Appended || first.Points != 80 {
		t.Fatalf("first sync: %+v, want 80 points committed", first)
	}
	growWandb(t, dir, id, 40, 65)
	second := sync()
	if second.Outcome != transfer.Committed || !second.Appended || second.Points != 50 || second.KeptPoints != 80 {
		t.Fatalf("second sync: %s, appended %v, %d points written, %d kept (%s); want 50 new points appended to 80",
			second.Outcome, second.Appended, second.Points, second.KeptPoints, second.Reason)
	}

	st, err := archive.LoadState(arch)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Manifest.Runs) != 1 {
		t.Fatalf("the archive holds %d runs", len(st.Manifest.Runs))
	}
	e := st.Manifest.Runs[0]
	var rows []string
	for _, f := range e.Files {
		if f.Table == archive.TableMetrics {
			rows = append(rows, fmt.Sprintf("%d rows in snapshot %s", f.Rows, filepath.Base(f.Path)[:6]))
		}
	}
	if want := []string{"80 rows in snapshot 000001", "50 rows in snapshot 000002"}; fmt.Sprint(rows) != fmt.Sprint(want) || e.Points != 130 {
		t.Fatalf("the run's metrics files: %v (%d points), want %v", rows, e.Points, want)
	}

	// DuckDB, reading the metrics folder as a user would, sees every point once.
	out, err := exec.Command(testenv.Python(t), "-c", `import duckdb, json, sys
rows = duckdb.execute("select key, step, count(*) from read_parquet(?) group by key, step order by key, step",
                      [sys.argv[1] + "/metrics/*/*.parquet"]).fetchall()
print(json.dumps(rows))`, arch).Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	var got [][]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckdb printed %q: %v", out, err)
	}
	var want [][]any
	for _, key := range []string{"acc", "loss"} {
		for step := range 65 {
			want = append(want, []any{key, float64(step), float64(1)})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("duckdb reads (key, step, count):\n%v\nwant each of steps 0..64 of acc and loss once", got)
	}

	if third := sync(); third.Outcome != transfer.Unchanged {
		t.Fatalf("third sync without change: %s (%s)", third.Outcome, third.Reason)
	}
}
