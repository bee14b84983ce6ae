package parquetdir_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	srcparquet "github.com/runferry/runferry/sources/parquetdir"
)

// TestAppendFromArchiveCursors: a sync stopped between the archive's
// commit of an append and the ledger's record of it (the ledger's write
// fails, as when the process is killed there) leaves the ledger one commit
// behind. The next sync of the grown run appends only the new points,
// from the cursors the archive keeps in the run's manifest entry; so does
// a sync without a ledger (--no-state). DuckDB over metrics/ and archive
// check see every point once, and check finds the archive equal to the
// W&B run after each sync.
func TestAppendFromArchiveCursors(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(t.TempDir(), "archive")
	const id = "curs0001"
	ledger := &sinktest.MemLedger{}
	open := func(t *testing.T) (sinks.Sink, func() error) {
		dst, err := parquetdir.New(arch)
		if err != nil {
			t.Fatal(err)
		}
		return dst, dst.Close
	}
	g := &sinktest.Growing{Dir: dir, Ledger: ledger, Sink: open,
		Read: func(t *testing.T) sources.Source {
			back, err := srcparquet.New(arch, 0)
			if err != nil {
				t.Fatal(err)
			}
			return back
		}}

	sinktest.GrowWandb(t, dir, id, 0, 40)
	if first := g.Sync(t); first.Outcome != transfer.Committed || first.Points != 80 {
		t.Fatalf("first sync: %+v, want 80 points committed", first)
	}

	// The run grows; the sync appends and commits into the archive, then
	// cannot record the commit in its ledger.
	sinktest.GrowWandb(t, dir, id, 40, 65)
	lost := errors.New("test: the ledger's record of the commit was lost")
	ledger.FailPut = func(e state.Entry) error {
		if e.Status == string(transfer.Committed) {
			return lost
		}
		return nil
	}
	src := sinktest.OpenWandb(t, dir)
	dst, done := open(t)
	_, err := transfer.Copy(context.Background(), src, dst, transfer.Options{Ledger: ledger, Backoff: func(int) time.Duration { return time.Millisecond }})
	src.Close()
	if cerr := done(); cerr != nil {
		t.Fatal(cerr)
	}
	if !errors.Is(err, lost) {
		t.Fatalf("sync with a failing ledger returned %v, want the ledger's error", err)
	}
	ledger.FailPut = nil
	if e, _, _ := ledger.Get(runOrigin(t, arch)); e.Keys[0].Count != 40 {
		t.Fatalf("the ledger should still hold the first sync's cursors, holds %+v", e.Keys)
	}

	// The ledger lags behind the archive: the archive's cursors are used.
	sinktest.GrowWandb(t, dir, id, 65, 90)
	third := g.Sync(t)
	if third.Outcome != transfer.Committed || !third.Appended || third.Points != 50 || third.KeptPoints != 130 ||
		!strings.Contains(third.Reason, "cursors kept in the destination") {
		t.Fatalf("sync after the lost record: %s, appended %v, %d points written, %d kept (%s); want 50 new points appended to 130 from the archive's cursors",
			third.Outcome, third.Appended, third.Points, third.KeptPoints, third.Reason)
	}

	// Without a ledger (--no-state), the archive's cursors alone.
	g.Ledger = nil
	sinktest.GrowWandb(t, dir, id, 90, 100)
	fourth := g.Sync(t)
	if fourth.Outcome != transfer.Committed || !fourth.Appended || fourth.Points != 20 || fourth.KeptPoints != 180 ||
		!strings.Contains(fourth.Reason, "cursors kept in the destination") {
		t.Fatalf("sync without a ledger: %s, appended %v, %d points written, %d kept (%s); want 20 new points appended to 180 from the archive's cursors",
			fourth.Outcome, fourth.Appended, fourth.Points, fourth.KeptPoints, fourth.Reason)
	}
	if fifth := g.Sync(t); fifth.Outcome != transfer.Unchanged {
		t.Fatalf("sync without change or ledger: %s (%s)", fifth.Outcome, fifth.Reason)
	}

	st, err := archive.LoadState(arch)
	if err != nil {
		t.Fatal(err)
	}
	e := st.Manifest.Runs[0]
	var rows []int64
	for _, f := range e.Files {
		if f.Table == archive.TableMetrics {
			rows = append(rows, f.Rows)
		}
	}
	if fmt.Sprint(rows) != "[80 50 50 20]" || e.Points != 200 {
		t.Fatalf("the run's metrics files hold %v rows (%d points), want [80 50 50 20]: one file per sync", rows, e.Points)
	}
	var doc struct {
		Mark string            `json:"mark"`
		Keys []state.KeyCursor `json:"keys"`
	}
	if err := json.Unmarshal([]byte(e.Cursors), &doc); err != nil || doc.Mark != e.Mark || len(doc.Keys) != 2 ||
		doc.Keys[0].Count != 100 || doc.Keys[0].LastStep != 99 || doc.Keys[1].Count != 100 {
		t.Fatalf("the run's entry holds cursors %q (mark %s): %v", e.Cursors, e.Mark, err)
	}

	rep, err := archive.Check(arch)
	if err != nil || !rep.OK() {
		t.Fatalf("archive check: %v %+v", err, rep.Problems)
	}
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
		for step := range 100 {
			want = append(want, []any{key, float64(step), float64(1)})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("duckdb reads (key, step, count):\n%v\nwant each of steps 0..99 of acc and loss once", got)
	}
}

// runOrigin is the origin of the one run the archive holds.
func runOrigin(t *testing.T, arch string) string {
	t.Helper()
	st, err := archive.LoadState(arch)
	if err != nil || len(st.Manifest.Runs) != 1 {
		t.Fatalf("archive state: %v", err)
	}
	return st.Manifest.Runs[0].Origin
}
