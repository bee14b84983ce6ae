package transfer_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestParallelPlanKeepsListingOrder: a no-change job over more runs than
// one plan batch reports every run unchanged, in the same order and with
// the same reasons whether the plan decides one run at a time or eight.
func TestParallelPlanKeepsListingOrder(t *testing.T) {
	base := dataset.Canonical()
	var tmpl *dataset.RunData
	for _, r := range base.Runs {
		if r.Run.Status == schema.StatusFinished {
			tmpl = r
			break
		}
	}
	if tmpl == nil {
		t.Fatal("no finished run in the canonical dataset")
	}
	want := &dataset.Dataset{Experiments: base.Experiments}
	for i := range 600 { // more than two plan batches
		r := *tmpl
		r.Run.Origin.ID = fmt.Sprintf("%s-%03d", tmpl.Run.Origin.ID, (i*7)%600)
		want.Runs = append(want.Runs, &r)
	}
	dst := memsink.New(sinks.Limits{})
	l := ledger(t)
	if rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l})); err != nil || rep.Totals.Committed != 600 {
		t.Fatalf("first copy: %v", err)
	}
	var runs [][]transfer.RunResult
	for _, conc := range []int{1, 8} {
		rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, fast(transfer.Options{Ledger: l, Concurrency: conc}))
		if err != nil || rep.Totals.Unchanged != 600 || rep.Totals.Committed != 0 {
			t.Fatalf("concurrency %d: %v totals %+v", conc, err, rep.Totals)
		}
		runs = append(runs, rep.Runs)
	}
	if !reflect.DeepEqual(runs[0], runs[1]) {
		for i := range runs[0] {
			if !reflect.DeepEqual(runs[0][i], runs[1][i]) {
				t.Fatalf("run %d differs: one at a time %+v, eight at a time %+v", i, runs[0][i], runs[1][i])
			}
		}
		t.Fatal("reports differ")
	}
	mustEqual(t, want, dst)
}
