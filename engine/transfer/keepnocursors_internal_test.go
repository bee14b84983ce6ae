package transfer

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestReportKeepsNoCursors: the report's run results do not hold the runs'
// metric cursors once the ledger has them (kept for every run, they were
// most of what a job of many runs held per run: docs/WANDB-CLOUD.md gap
// 6), while the ledger still gets every committed run's cursors.
func TestReportKeepsNoCursors(t *testing.T) {
	l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "memory:a", Sink: "memory:b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	src := dataset.Canonical()
	opt := Options{Ledger: l, Backoff: func(int) time.Duration { return time.Millisecond }}
	rep, err := Copy(context.Background(), memsrc.New(src), memsink.New(sinks.Limits{}), opt)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	withKeys := 0
	for _, r := range rep.Runs {
		if r.keys != nil || r.mark != "" {
			t.Errorf("run %s: the report keeps %d cursors and mark %q", r.Origin, len(r.keys), r.mark)
		}
		e, ok, err := l.Get(r.Origin)
		if err != nil || !ok {
			t.Fatalf("ledger entry of %s: %v %v", r.Origin, ok, err)
		}
		if e.Mark != "" && len(e.Keys) > 0 {
			withKeys++
		}
	}
	if len(rep.Runs) == 0 || withKeys == 0 {
		t.Fatalf("%d runs, %d with cursors in the ledger: the test copies nothing it can check", len(rep.Runs), withKeys)
	}
}
