package transfer_test

import (
	"context"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestDeletedRunsFoundWithOriginsOnDisk: a sync whose source no longer
// lists one run the ledger holds reports that run, and only it, as
// deleted at the source, whether the job holds the origins it listed in
// memory or has written them to its temporary database (as a job of many
// runs does): the ledger's entries are read one at a time and each looked
// up among the origins listed.
func TestDeletedRunsFoundWithOriginsOnDisk(t *testing.T) {
	inDatabase(t, func(t *testing.T) {
		all := dataset.Canonical()
		l := ledger(t)
		dst := memsink.New(sinks.Limits{})
		rep, err := transfer.Copy(context.Background(), memsrc.New(all), dst, fast(transfer.Options{Ledger: l}))
		if err != nil || rep.Totals.Committed != len(all.Runs) || len(rep.Deleted) != 0 {
			t.Fatalf("first copy: %v, %+v, deleted %+v", err, rep.Totals, rep.Deleted)
		}
		gone := all.Runs[len(all.Runs)/2]
		less := &dataset.Dataset{Experiments: all.Experiments}
		for _, r := range all.Runs {
			if r != gone {
				less.Runs = append(less.Runs, r)
			}
		}
		rep, err = transfer.Copy(context.Background(), memsrc.New(less), dst, fast(transfer.Options{Ledger: l}))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Deleted) != 1 || rep.Deleted[0].Origin != gone.Run.Origin.String() || rep.Deleted[0].Name != gone.Run.Name {
			t.Fatalf("deleted %+v, want only %s (%s)", rep.Deleted, gone.Run.Origin, gone.Run.Name)
		}
		if rep.Totals.Runs != len(less.Runs) || rep.Totals.Failed != 0 {
			t.Errorf("second copy: %+v, want %d runs, none failed", rep.Totals, len(less.Runs))
		}
	})
}
