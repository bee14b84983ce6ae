package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestJSONSummaryNamesFilesNotCopiedApart: the --log-format json summary
// lists a file the source names but could not give under files_not_copied
// (by run), not under damage, which holds only what the source could not
// read of its data; both agree with the report (file_problems, damage,
// totals.files_not_copied) and with the text summary's "file not copied"
// and "damaged source" lines. The source: the fixture run with an artifact
// entry whose content is nowhere, and another fixture run whose log is cut
// in half (damage).
func TestJSONSummaryNamesFilesNotCopiedApart(t *testing.T) {
	src := filepath.Join(t.TempDir(), "wandb")
	for _, run := range []string{"offline-run-20261125_230205-fxa00001", "offline-run-20261125_230210-fxc00003"} {
		if err := os.CopyFS(filepath.Join(src, run), os.DirFS(filepath.Join("../../testdata/wandb/fixtures/wandb", run))); err != nil {
			t.Fatal(err)
		}
	}
	log := filepath.Join(src, "offline-run-20261125_230210-fxc00003", "run-fxc00003.wandb")
	st, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	loc := "wandb:" + src + "?crashed-after=1ns"
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	code, out, errOut := runCLI(t, "copy", loc, "parquet:"+filepath.Join(dir, "a"), "--no-state", "--log-format", "json", "--report", report)
	if code != exitRunsFailed {
		t.Fatalf("copy: exit %d, want %d (damage, a file not copied)\n%s%s", code, exitRunsFailed, out, errOut)
	}
	var sum struct {
		Totals struct {
			FilesNotCopied int `json:"files_not_copied"`
		} `json:"totals"`
		Damage         map[string][]string `json:"damage"`
		FilesNotCopied map[string][]string `json:"files_not_copied"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("stdout is not one JSON object (%v):\n%s", err, out)
	}
	rep := readReport(t, report)
	wantDamage, wantFiles := map[string][]string{}, map[string][]string{}
	var textLines []string // the lines the text summary gives, from the report
	for _, r := range rep.Runs {
		if len(r.Damage) > 0 {
			wantDamage[r.Origin] = r.Damage
		}
		if len(r.FileProblem) > 0 {
			wantFiles[r.Origin] = r.FileProblem
		}
		for _, d := range r.Damage {
			textLines = append(textLines, "damaged source "+r.Origin+": "+d)
		}
		for _, p := range r.FileProblem {
			textLines = append(textLines, "file not copied "+r.Origin+": "+p)
		}
	}
	if len(wantDamage) != 1 || len(wantFiles) != 1 || rep.Totals.FilesNotCopied != 1 {
		t.Fatalf("the report: damage %q, file problems %q, totals %+v: want one run of each", wantDamage, wantFiles, rep.Totals)
	}
	if !maps.EqualFunc(sum.Damage, wantDamage, slices.Equal) {
		t.Errorf("JSON summary's damage\n%q\nwant the report's\n%q", sum.Damage, wantDamage)
	}
	if !maps.EqualFunc(sum.FilesNotCopied, wantFiles, slices.Equal) || sum.Totals.FilesNotCopied != 1 {
		t.Errorf("JSON summary's files_not_copied\n%q (totals %d)\nwant the report's file problems\n%q (1)", sum.FilesNotCopied, sum.Totals.FilesNotCopied, wantFiles)
	}

	code, out, errOut = runCLI(t, "copy", loc, "parquet:"+filepath.Join(dir, "b"), "--no-state")
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "damaged source ") || strings.HasPrefix(l, "file not copied ") {
			got = append(got, l)
		}
	}
	slices.Sort(got)
	slices.Sort(textLines)
	if code != exitRunsFailed || !slices.Equal(got, textLines) || !strings.Contains(lastLine(out), ", 1 file not copied (named above)") {
		t.Errorf("text summary: exit %d, lines\n%s\nwant\n%s\n%s%s", code, strings.Join(got, "\n"), strings.Join(textLines, "\n"), out, errOut)
	}
}
