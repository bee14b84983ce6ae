package wandbcloud_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// TestListingNotesReleased: what the source notes of each run it lists
// (fingerprint, estimates, last step, tail, files, what its page carried,
// its place in the order of downloads ahead) is forgotten once the job is
// done with the run (sources.RunReleaser), so that it does not grow with
// the runs listed (docs/WANDB-CLOUD.md gap 6): during a first copy of 1,500
// runs (every run read, exports downloaded ahead) and a second sync over
// its ledger (every run unchanged, none read), the notes held at any run's
// end stay under maxHeld runs, and none are left at the end. Every point
// arrives. Before, the source held every listed run's notes to the end.
func TestListingNotesReleased(t *testing.T) {
	if testing.Short() {
		t.Skip("copies 1,500 runs")
	}
	const nruns, rows, maxHeld = 1500, 3, 700
	keys := []string{"loss", "acc"}
	srv := generatedProject(t, nruns, rows, keys, true)
	ledgerPath := filepath.Join(t.TempDir(), "ledger.db")
	dst := memory.New(sinks.Limits{})
	for job, want := range []transfer.Totals{{Runs: nruns, Committed: nruns}, {Runs: nruns, Unchanged: nruns}} {
		src, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", Project: "p", APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		l, err := state.Open(ledgerPath, state.Job{Source: "wandb+http://test/fixture-entity/p", Sink: "memory"}, false)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var held, order int
		observe := func(e transfer.Event) {
			if e.Kind != transfer.EventRunDone && e.Kind != transfer.EventListing {
				return
			}
			r, o := src.ListedState()
			mu.Lock()
			held, order = max(held, r), max(order, o)
			mu.Unlock()
		}
		rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{Ledger: l, Observer: observe})
		if err != nil {
			t.Fatal(err)
		}
		got := rep.Totals
		if got.Runs != want.Runs || got.Committed != want.Committed || got.Unchanged != want.Unchanged || got.Failed != 0 {
			t.Fatalf("job %d: %+v, want %+v", job+1, got, want)
		}
		endRuns, endOrder := src.ListedState()
		t.Logf("job %d: notes of at most %d runs held, %d places in the order of downloads ahead; %d and %d at the end", job+1, held, order, endRuns, endOrder)
		if held > maxHeld || order > 2*maxHeld || endRuns != 0 || endOrder != 0 {
			t.Errorf("job %d: the source held the notes of up to %d runs (order %d), %d at the end (order %d); want at most %d, none at the end",
				job+1, held, order, endRuns, endOrder, maxHeld)
		}
		rep.Close()
		l.Close()
		src.Close()
	}
	var points int
	for _, r := range dst.Dataset().Runs {
		points += len(r.Metrics)
	}
	if points != nruns*rows*len(keys) {
		t.Errorf("%d points arrived, want %d", points, nruns*rows*len(keys))
	}
}
