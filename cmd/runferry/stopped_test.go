package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
)

// TestSummarySaysWhatStoppedTheJob prints the closing line of a job that a
// fatal error stopped (a full disk: "no space left on device") with runs
// not done, and of one the user interrupted: the first says the error
// stopped it and how many runs are left, not "interrupted", which reads as
// the user's Ctrl-C; the second still says "interrupted", and counts the
// runs not done too (before, it did not: "interrupted (re-run to resume)"
// after SIGINT with 10 runs planned, review Session 11).
func TestSummarySaysWhatStoppedTheJob(t *testing.T) {
	start := time.Now()
	for _, c := range []struct {
		rep       transfer.Report
		want, not string
	}{
		{transfer.Report{Fatal: "committing run: write x: no space left on device", Totals: transfer.Totals{Committed: 1, Failed: 1, Interrupted: 6}},
			", stopped by the error below with 6 runs not done (re-run to resume)", "interrupted"},
		{transfer.Report{Canceled: true, Totals: transfer.Totals{Interrupted: 7}},
			", interrupted with 7 runs not done (re-run to resume)", "stopped by"},
		{transfer.Report{Canceled: true}, // during the plan: no run known yet
			", interrupted (re-run to resume)", "not done"},
	} {
		c.rep.Started, c.rep.Finished = start, start.Add(time.Second)
		var out bytes.Buffer
		a := &app{stdout: &out, stderr: &out}
		a.printReport(&c.rep)
		if !strings.Contains(out.String(), c.want) || strings.Contains(out.String(), c.not) {
			t.Errorf("summary lacks %q or has %q:\n%s", c.want, c.not, out.String())
		}
	}
}
