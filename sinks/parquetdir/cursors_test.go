package parquetdir_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/sinks/sinktest"
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
	t.Parallel() // most of its time is spent waiting on the W&B SDK
	dir := t.TempDir()
	arch := filepath.Join(t.TempDir(), "archive")
	const id = "curs0001"
	ledger := &sinktest.MemLedger{}
	g := growingInto(arch, dir, ledger)

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
	dst, done := g.Sink(t)
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

	e := onlyRun(t, arch)
	var rows []int64
	for _, f := range metricsFiles(e) {
		rows = append(rows, f.Rows)
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
	requireEachPointOnce(t, arch, 100)
}

// runOrigin is the origin of the one run the archive holds.
func runOrigin(t *testing.T, arch string) string {
	t.Helper()
	return onlyRun(t, arch).Origin
}
