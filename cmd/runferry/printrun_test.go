package main

import (
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
)

// TestVerboseLineSaysHowRunWasWritten: with -v, the line of a committed
// run says when it was appended to or continued in place, with the
// points the destination held already, and the files it deleted.
func TestVerboseLineSaysHowRunWasWritten(t *testing.T) {
	var out strings.Builder
	a := &app{stdout: &out, verbose: true}
	now := time.Now()
	a.printReport(&transfer.Report{Started: now, Finished: now, Runs: []transfer.RunResult{
		{Origin: "wandb:e/p/a", Name: "a", Outcome: transfer.Committed, Points: 10, Files: 1, Appended: true, KeptPoints: 90},
		{Origin: "wandb:e/p/b", Name: "b", Outcome: transfer.Committed, Points: 5, Files: 2, Continued: true, KeptPoints: 40, DeletedFiles: 2},
		{Origin: "wandb:e/p/c", Name: "c", Outcome: transfer.Committed, Points: 7, Files: 0},
	}})
	for _, want := range []string{
		"committed   wandb:e/p/a (a) 10 points, 1 file, appended (90 points held already)\n",
		"committed   wandb:e/p/b (b) 5 points, 2 files, continued in place (40 points held already), 2 files deleted (gone from the source)\n",
		"committed   wandb:e/p/c (c) 7 points, 0 files\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
