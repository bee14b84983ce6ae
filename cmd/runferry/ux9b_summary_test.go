package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestSummaryReconcilesWithTheCopy: archive summary labels what it counts
// so that a user can reconcile it with the copy's closing line: FILE
// BODIES (distinct contents per run) with BODY BYTES, and TABLE BYTES
// (its columns said FILES and BYTES, while the copy counted more files
// and its bytes were the tables' only). Checked against pandas reading
// the archive with docs/ARCHIVE.md's own snippet: the points it reads
// equal summary's, each run's distinct sha256 values in the artifacts
// table equal its bodies, and the rows with a body equal the copy's files.
func TestSummaryReconcilesWithTheCopy(t *testing.T) {
	py := testenv.Python(t)
	arch := filepath.Join(t.TempDir(), "a")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+arch, "--no-state")
	if code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	m := regexp.MustCompile(`copied \d+ runs \((\d+) points, (\d+) files, `).FindStringSubmatch(out + errOut)
	if m == nil {
		t.Fatalf("no closing line:\n%s\n%s", out, errOut)
	}
	copiedFiles, _ := strconv.ParseInt(m[2], 10, 64)

	header, rows, last := archiveSummary(t, arch)
	if h := strings.Join(strings.Fields(header), " "); h != "RUN EXPERIMENT SNAPSHOT POINTS FILE BODIES BODY BYTES TABLE BYTES" {
		t.Errorf("header %q", h)
	}
	bodies := map[string]int64{}
	var points, total int64
	for _, r := range rows {
		bodies[r.Run] = r.Bodies
		points += r.Points
		total += r.Bodies
	}
	if !strings.Contains(last, strconv.FormatInt(points, 10)+" points, ") || !strings.Contains(last, " stored (files with the same content are one body, in one run or across runs") ||
		!strings.Contains(last, "the runs' FILE BODIES add up to "+strconv.FormatInt(total, 10)+" of ") || !strings.HasSuffix(last, " of tables") {
		t.Errorf("closing line %q", last)
	}

	// docs/ARCHIVE.md's pandas snippet, run as written on this archive.
	script := archiveDocSnippet(t, `pd.read_parquet("ARCHIVE/metrics")`, arch) + `
print("POINTS", len(metrics))
` + pandasArtifactsPy(arch)
	pyOut, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the doc's pandas snippet: %v\n%s\n%s", err, script, pyOut)
	}
	var pdPoints int64
	for _, l := range strings.Split(string(pyOut), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "POINTS" {
			pdPoints, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	pd := readPandasArtifacts(string(pyOut))
	if pdPoints != points || pd.Files != copiedFiles {
		t.Errorf("pandas read %d points and %d files with a body; summary says %d points, the copy %d files", pdPoints, pd.Files, points, copiedFiles)
	}
	for run, n := range bodies {
		if pd.PerRun[run][0] != n {
			t.Errorf("%s: summary says %d file bodies, pandas finds %d distinct sha256", run, n, pd.PerRun[run][0])
		}
	}
	t.Logf("pandas:\n%s", pyOut)
}
