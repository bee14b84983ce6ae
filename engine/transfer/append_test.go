package transfer_test

import (
	"context"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestAppendRefusedWhenCopiedHistoryChanged: a run whose copied points
// changed in the source, or whose history got shorter, is not appended to
// but written whole, and the report says why; the sink ends equal to a
// fresh copy. The ledger is the real SQLite one, so the cursors go through
// it; the other grown runs are appended to from them.
func TestAppendRefusedWhenCopiedHistoryChanged(t *testing.T) {
	for _, tc := range []struct {
		name, why string
		change    func(d *dataset.Dataset)
	}{
		{"rewritten", `metric "loss": the 1500 points copied earlier changed in the source`, func(d *dataset.Dataset) {
			d.Runs[0].Metrics[7].Value = 42
		}},
		{"shortened", `metric "k00": the source holds 5 points, 6 were copied earlier (history shortened)`, func(d *dataset.Dataset) {
			rd := d.Runs[3]
			rd.Metrics = rd.Metrics[:15] // 18 copied
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			early, grown := sinktest.Grown()
			tc.change(grown)
			dst := memsink.New(sinks.Limits{MaxMetricsPerWrite: 700})
			l := ledger(t)
			if _, err := transfer.Copy(context.Background(), memsrc.New(early), dst, fast(transfer.Options{Ledger: l})); err != nil {
				t.Fatal(err)
			}
			rep, err := transfer.Copy(context.Background(), memsrc.New(grown), dst, fast(transfer.Options{Ledger: l}))
			if err != nil || rep.Totals.Failed != 0 {
				t.Fatalf("second copy: %v %+v", err, rep.Totals)
			}
			found, appended := false, 0
			for _, r := range rep.Runs {
				if r.Appended {
					appended++ // from the cursors the ledger kept
				}
				if strings.Contains(r.Reason, tc.why) {
					found = true
					if r.Appended || r.Outcome != transfer.Committed {
						t.Errorf("run %s: %s, appended %v, though %s", r.Origin, r.Outcome, r.Appended, tc.why)
					}
				}
			}
			if !found {
				t.Errorf("no run says %q: %+v", tc.why, rep.Runs)
			}
			if appended == 0 {
				t.Errorf("no grown run was appended to: %+v", rep.Runs)
			}
			if diff := dataset.Diff(grown, dst.Dataset(), dataset.DiffOptions{}); diff != nil {
				t.Fatalf("sink differs from the source:\n%s", strings.Join(diff, "\n"))
			}
		})
	}
}
