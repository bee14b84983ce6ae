package parquetdir_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/sinktest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestSyncAppendsToGrowingWandbRun: a W&B run synced into an archive, then
// resumed by the real SDK to log more steps, then synced again: the second
// sync's snapshot holds only the new points in one more metrics file of
// the run, DuckDB over metrics/ sees every point once, and check finds the
// archive equal to the W&B run.
func TestSyncAppendsToGrowingWandbRun(t *testing.T) {
	t.Parallel() // most of its time is spent waiting on the W&B SDK
	dir := t.TempDir()
	arch := filepath.Join(t.TempDir(), "archive")
	const id = "grow0002"
	sinktest.GrowWandb(t, dir, id, 0, 40)
	l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "wandb:" + dir, Sink: "parquet:" + arch}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	g := growingInto(arch, dir, l)
	sync := func() transfer.RunResult { t.Helper(); return g.Sync(t) }
	first := sync()
	if first.Outcome != transfer.Committed || first.Appended || first.Points != 80 {
		t.Fatalf("first sync: %+v, want 80 points committed", first)
	}
	sinktest.GrowWandb(t, dir, id, 40, 65)
	second := sync()
	if second.Outcome != transfer.Committed || !second.Appended || second.Points != 50 || second.KeptPoints != 80 {
		t.Fatalf("second sync: %s, appended %v, %d points written, %d kept (%s); want 50 new points appended to 80",
			second.Outcome, second.Appended, second.Points, second.KeptPoints, second.Reason)
	}

	e := onlyRun(t, arch)
	var rows []string
	for _, f := range metricsFiles(e) {
		rows = append(rows, fmt.Sprintf("%d rows in snapshot %s", f.Rows, filepath.Base(f.Path)[:6]))
	}
	if want := []string{"80 rows in snapshot 000001", "50 rows in snapshot 000002"}; fmt.Sprint(rows) != fmt.Sprint(want) || e.Points != 130 {
		t.Fatalf("the run's metrics files: %v (%d points), want %v", rows, e.Points, want)
	}

	// DuckDB, reading the metrics folder as a user would, sees every point once.
	requireEachPointOnce(t, arch, 65)

	if third := sync(); third.Outcome != transfer.Unchanged {
		t.Fatalf("third sync without change: %s (%s)", third.Outcome, third.Reason)
	}
}
