package wandbcloud_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
)

// TestFirstCopyAsksEachPageOnce: a first copy (a ledger that never saw the
// job) of a project of 3 pages of runs asks each page once, in export form
// (the server answers 3 runs listings, each run served once), and copies
// every point; the next sync with that ledger, nothing changed, lists the
// 3 pages plainly (no parquetHistory asked, no history read). Before, a
// copy asked each page twice (the plain listing, then its export form).
func TestFirstCopyAsksEachPageOnce(t *testing.T) {
	const pages, rows = 3, 4
	nruns := pages * wandbapi.RunsPageSize
	keys := []string{"loss", "acc"}
	srv := generatedProject(t, nruns, rows, keys, false)
	ledgerPath := filepath.Join(t.TempDir(), "ledger.db")
	dst := memory.New(sinks.Limits{})

	job := func() (pagesServed, runsServed, parquet int64) {
		t.Helper()
		l, err := state.Open(ledgerPath, state.Job{Source: "wandb+http://test/fixture-entity/p", Sink: "memory"}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		p0, r0, q0 := srv.RunsPages.Load(), srv.RunsListed.Load(), srv.ParquetQueries.Load()
		src := open(t, srv.URL, "p")
		rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{Ledger: l, LastStart: l.PreviousStart()})
		if err != nil {
			t.Fatalf("%v (report %+v)", err, rep.Totals)
		}
		return srv.RunsPages.Load() - p0, srv.RunsListed.Load() - r0, srv.ParquetQueries.Load() - q0
	}

	pg, rn, pq := job()
	if pg != pages || rn != int64(nruns) || pq != int64(nruns) {
		t.Errorf("first copy: %d runs listings served (%d runs, %d parquetHistory), want %d (%d runs, %d): one request a page", pg, rn, pq, pages, nruns, nruns)
	}
	got := dst.Dataset().Runs
	if len(got) != nruns {
		t.Fatalf("%d runs copied, want %d", len(got), nruns)
	}
	for _, rd := range got {
		if len(rd.Metrics) != rows*len(keys) {
			t.Errorf("run %s: %d points copied, want %d", rd.Run.Origin.ID, len(rd.Metrics), rows*len(keys))
		}
	}
	reads := srv.HistoryReads.Load()
	pg, rn, pq = job()
	if pg != pages || rn != int64(nruns) || pq != 0 || srv.HistoryReads.Load() != reads {
		t.Errorf("sync, nothing changed: %d runs listings served (%d runs, %d parquetHistory, %d history reads), want %d (%d runs, 0, 0): the plain listing",
			pg, rn, pq, srv.HistoryReads.Load()-reads, pages, nruns)
	}
	if n := len(dst.Dataset().Runs); n != nruns {
		t.Errorf("%d runs after the sync, want %d", n, nruns)
	}
}

// TestFirstRunCommittedBeforeLastPage: a first copy of a project of two
// pages of runs commits a run of the first page before the server answers
// the second (the engine transfers while it plans): the server holds every
// GraphQL request after the first page until a run is committed, for at
// most 10 s. Before, the plan asked every page before any transfer.
func TestFirstRunCommittedBeforeLastPage(t *testing.T) {
	const pages, rows = 2, 4
	nruns := pages * wandbapi.RunsPageSize
	keys := []string{"loss", "acc"}
	srv := generatedProject(t, nruns, rows, keys, false)
	committed := make(chan struct{})
	var once sync.Once
	var held, released atomic.Int32
	srv.Before(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/graphql" || srv.RunsPages.Load() < 1 {
			return false
		}
		held.Add(1)
		select {
		case <-committed:
			released.Add(1)
		case <-time.After(10 * time.Second):
		}
		return false
	})
	l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "wandb+http://test/fixture-entity/p", Sink: "memory"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dst := memory.New(sinks.Limits{})
	rep, err := transfer.Copy(context.Background(), open(t, srv.URL, "p"), dst, transfer.Options{Ledger: l, Observer: func(e transfer.Event) {
		if e.Kind == transfer.EventRunDone && e.Result.Outcome == transfer.Committed {
			once.Do(func() { close(committed) })
		}
	}})
	if err != nil {
		t.Fatalf("%v (report %+v)", err, rep.Totals)
	}
	if held.Load() == 0 || released.Load() != held.Load() {
		t.Fatalf("%d GraphQL requests after the first page, %d of them answered after a run was committed: the copy waited for the whole listing", held.Load(), released.Load())
	}
	if srv.RunsPages.Load() != pages || rep.Totals.Committed != nruns || len(dst.Dataset().Runs) != nruns {
		t.Fatalf("%d pages served, %d runs committed, %d in the destination; want %d, %d", srv.RunsPages.Load(), rep.Totals.Committed, len(dst.Dataset().Runs), pages, nruns)
	}
}
