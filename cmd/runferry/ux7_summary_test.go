package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
)

// TestClosingLineSaysWhatWasAppended: a nightly sync after a W&B run grew
// (the real SDK resumed it offline) appends the new points to the archive's
// copy. The closing line said "copied 1 run (60 points, ...)" of a run of
// 160 points, which reads as a run copied with 60, while the report said
// appended, with the points held already; the line now says how many runs
// were appended to and the points their copies held, as the report does.
// A first sync, which appends to nothing, says nothing of it.
func TestClosingLineSaysWhatWasAppended(t *testing.T) {
	dir := t.TempDir()
	growWandb(t, dir, "ux7grow1", 0, 50, false)
	src := "wandb:" + filepath.Join(dir, "wandb")
	archive := "parquet:" + filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	sync := func() (*transfer.Report, string) {
		t.Helper()
		rep := filepath.Join(dir, "report.json")
		code, out, errOut := runCLI(t, "sync", src, archive, "--state", ledger, "--report", rep)
		if code != 0 {
			t.Fatalf("sync: exit %d\n%s%s", code, out, errOut)
		}
		r := readReport(t, rep)
		return &r, out
	}
	if _, out := sync(); strings.Contains(out, "appended to") || strings.Contains(out, "held already") {
		t.Errorf("first sync speaks of appending:\n%s", out)
	}
	growWandb(t, dir, "ux7grow1", 50, 80, false)
	rep, out := sync()
	if rep.Totals.Appended != 1 || len(rep.Runs) != 1 || !rep.Runs[0].Appended || rep.Runs[0].KeptPoints == 0 {
		t.Fatalf("second sync did not append to the run: totals %+v runs %+v", rep.Totals, rep.Runs)
	}
	r := rep.Runs[0]
	want := fmt.Sprintf("copied 1 run (%s, %s, %s; 1 run appended to: %s held already, not sent again); 0 unchanged, 0 failed",
		counted(r.Points, "point"), counted(r.Files, "file"), bytesText(r.Bytes), counted(r.KeptPoints, "point"))
	if !strings.Contains(out, want) {
		t.Errorf("closing line lacks %q:\n%s", want, out)
	}
}
