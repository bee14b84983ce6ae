package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// TestInheritedFileProblemIsNotNewGap: a W&B artifact entry whose content is
// nowhere is a gap of the W&B folder: its first copy names it as `file not
// copied` and exits 3 (here accepted with --accept-gaps). A copy of that
// copy (archive -> SQLite, SQLite -> MLflow, MLflow -> archive) holds the
// file's problem as the first copy recorded it: the copy is whole, so it
// exits 0, names the problem as an `inherited file problem`, counts it in
// the closing line and the report (never as a file not copied), and the
// problem travels on. Before, every restore exited 3 for it.
func TestInheritedFileProblemIsNotNewGap(t *testing.T) {
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	const origin = "wandb:fixture-entity/runferry-fixtures/fxa00001"
	const file = "wandb-artifacts/run-fxa00001-preds/e4810979814a7646642b20d59558d10e/preds.table.json: content not found"
	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "archive")
	code, out, errOut := runCLI(t, "copy", "--no-state", fixtures, archive)
	if code != exitRunsFailed || !strings.Contains(out, "file not copied "+origin+": "+file) {
		t.Fatalf("copy of the fixtures: exit %d, want %d naming the file\n%s%s", code, exitRunsFailed, out, errOut)
	}
	if code, out, errOut := runCLI(t, "copy", "--no-state", "--accept-gaps", fixtures, archive); code != 0 {
		t.Fatalf("copy of the fixtures, --accept-gaps: exit %d\n%s%s", code, out, errOut)
	}
	db := "sqlite:" + filepath.Join(dir, "restore.db")
	mlf := "mlflow+" + srv.URL + "?experiment-prefix=" + p
	for _, leg := range []struct{ name, src, dst string }{
		{"archive -> SQLite", archive, db},
		{"SQLite -> MLflow", db, mlf},
		{"MLflow -> archive", mlf, "parquet:" + filepath.Join(dir, "archive2")},
	} {
		path := filepath.Join(t.TempDir(), "report.json")
		code, out, errOut := runCLI(t, "copy", "--no-state", leg.src, leg.dst, "--report", path)
		var rep transfer.Report
		if err := readJSON(path, &rep); err != nil {
			t.Fatalf("%s: exit %d: %v\n%s%s", leg.name, code, err, out, errOut)
		}
		last := lastLine(out)
		if code != 0 || strings.Contains(out, "file not copied") ||
			!strings.Contains(out, "inherited file problem "+origin+": "+file) ||
			!strings.Contains(last, ", 1 inherited file problem (named above: ") || !strings.Contains(last, "copied 6 runs ") {
			t.Errorf("%s: exit %d, want 0, the file named as an inherited problem and counted, not as a file not copied\n%s%s", leg.name, code, out, errOut)
		}
		if rep.Totals.FilesNotCopied != 0 || rep.Totals.InheritedFileProblems != 1 {
			t.Errorf("%s: totals %+v, want files_not_copied 0, inherited_file_problems 1", leg.name, rep.Totals)
		}
		if b, err := matchReportSchema(t, path); err != nil {
			t.Errorf("%s: the report does not match docs/report.schema.json: %v\n%s", leg.name, err, b)
		}
	}
}
