package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// TestDryRunOfAnAppendCountsWhatTheSyncSends: after a W&B run grew (the real
// SDK resumed it offline), `sync --dry-run` counts what the sync then sends
// to a copy it appends to, not the whole run. Before, the dry run said
// "would copy 1 run (56000 points, ...)" where the sync sent 2000 points
// (54000 held already). Into SQLite and into a Parquet archive the dry
// run's points, the points held already, the files and bytes to send, the
// files kept (the destinations keep the files they hold unchanged: the dry
// run asks them which, sinks.HeldFilesLister) and the reason equal the
// sync's, in the report and in the closing line. Into MLflow too (since
// i12con: the sink lists the files its copy holds from the copy's
// coverage file, and says which console lines it holds, in segments,
// sinks.HeldLogsLister), and in every destination the console lines sent
// and kept (the dry run read none before).
func TestDryRunOfAnAppendCountsWhatTheSyncSends(t *testing.T) {
	dir := t.TempDir()
	growWandb(t, dir, "ux7bdry1", 0, 50, false)
	src := "wandb:" + filepath.Join(dir, "wandb")
	srv := testenv.SharedMLflow(t)
	dsts := []string{"sqlite:" + filepath.Join(dir, "runs.db"), "parquet:" + filepath.Join(dir, "archive"),
		"mlflow+" + srv.URL + "?experiment-prefix=" + uniquePrefix(t)}
	ledgerOf := func(dst string) string { return filepath.Join(dir, strings.Split(dst, ":")[0]+".ledger") }
	for _, dst := range dsts {
		ledger := ledgerOf(dst)
		if code, out, errOut := runCLI(t, "sync", "-q", src, dst, "--state", ledger); code != 0 {
			t.Fatalf("first sync into %s: exit %d\n%s%s", dst, code, out, errOut)
		}
	}
	growWandb(t, dir, "ux7bdry1", 50, 80, false)
	sync := func(dst string, dry bool) (*transfer.RunResult, string) {
		t.Helper()
		rep := filepath.Join(dir, "report.json")
		args := []string{"sync", src, dst, "--state", ledgerOf(dst), "--report", rep}
		if dry {
			args = append(args, "--dry-run")
		}
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		r := readReport(t, rep)
		if len(r.Runs) != 1 {
			t.Fatalf("%v: %d runs in the report", args, len(r.Runs))
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return &r.Runs[0], lines[len(lines)-1]
	}
	for _, dst := range dsts {
		plan, planLine := sync(dst, true)
		done, doneLine := sync(dst, false)
		if !done.Appended || done.KeptPoints == 0 || done.Points == 0 {
			t.Fatalf("%s: the sync did not append: %+v", dst, done)
		}
		if plan.Outcome != transfer.Planned || !plan.Appended || plan.Points != done.Points || plan.KeptPoints != done.KeptPoints || plan.Reason != done.Reason {
			t.Errorf("%s: dry run planned %d points (%d held, appended %v, %q), the sync sent %d (%d held, %q)",
				dst, plan.Points, plan.KeptPoints, plan.Appended, plan.Reason, done.Points, done.KeptPoints, done.Reason)
		}
		if plan.Files != done.Files || plan.Bytes != done.Bytes || plan.KeptFiles != done.KeptFiles || done.KeptFiles == 0 {
			t.Errorf("%s: dry run planned %d files, %d bytes, %d kept; the sync sent %d, %d, %d kept (want some kept)",
				dst, plan.Files, plan.Bytes, plan.KeptFiles, done.Files, done.Bytes, done.KeptFiles)
		}
		if plan.LogLines != done.LogLines || plan.KeptLogLines != done.KeptLogLines || done.LogLines == 0 {
			t.Errorf("%s: dry run planned %d console lines, %d kept; the sync sent %d, %d kept",
				dst, plan.LogLines, plan.KeptLogLines, done.LogLines, done.KeptLogLines)
		}
		// The closing lines say it alike: the points sent and held.
		want := fmt.Sprintf("(%s, %s, %s", counted(done.Points, "point"), counted(done.Files, "file"), bytesText(done.Bytes))
		held := fmt.Sprintf("; 1 run %%s: %s held already, not sent again)", counted(done.KeptPoints, "point"))
		if !strings.Contains(doneLine, "copied 1 run "+want) || !strings.Contains(doneLine, fmt.Sprintf(held, "appended to")) {
			t.Errorf("%s: sync's closing line %q", dst, doneLine)
		}
		if !strings.Contains(planLine, "would copy 1 run "+want) || !strings.Contains(planLine, fmt.Sprintf(held, "to be appended to")) {
			t.Errorf("%s: dry run's closing line %q, want %q and %q", dst, planLine, want, fmt.Sprintf(held, "to be appended to"))
		}
	}
}
