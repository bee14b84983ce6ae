package main

import (
	"os"
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
	copiedFiles, _ := strconv.Atoi(m[2])

	code, out, errOut = runCLI(t, "archive", "summary", arch)
	if code != 0 {
		t.Fatalf("summary: exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if h := strings.Join(strings.Fields(lines[0]), " "); h != "RUN EXPERIMENT SNAPSHOT POINTS FILE BODIES BODY BYTES TABLE BYTES" {
		t.Errorf("header %q", h)
	}
	row := regexp.MustCompile(`^(\S+)\s+\S+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+(?:\.\d)? [KMG]?i?B)\s+(\d+(?:\.\d)? [KMG]?i?B)$`)
	bodies := map[string]int{}
	var points, total int
	for _, l := range lines[1 : len(lines)-1] {
		f := row.FindStringSubmatch(l)
		if f == nil {
			t.Fatalf("summary line %q", l)
		}
		p, _ := strconv.Atoi(f[2])
		b, _ := strconv.Atoi(f[3])
		bodies[f[1]] = b
		points += p
		total += b
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, strconv.Itoa(points)+" points, ") || !strings.Contains(last, " stored (files with the same content are one body, in one run or across runs") ||
		!strings.Contains(last, "the runs' FILE BODIES add up to "+strconv.Itoa(total)+" of ") || !strings.HasSuffix(last, " of tables") {
		t.Errorf("closing line %q", last)
	}

	// docs/ARCHIVE.md's pandas snippet, run as written on this archive.
	doc, err := os.ReadFile("../../docs/ARCHIVE.md")
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, b := range regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(b[1], `pd.read_parquet("ARCHIVE/metrics")`) {
			snippet = b[1]
		}
	}
	if snippet == "" {
		t.Fatal(`docs/ARCHIVE.md has no python block with pd.read_parquet("ARCHIVE/metrics")`)
	}
	script := strings.ReplaceAll(snippet, `"ARCHIVE/`, strconv.Quote(arch + "/")[:len(strconv.Quote(arch+"/"))-1]) + `
arts = pd.read_parquet(` + strconv.Quote(arch+"/artifacts") + `)
held = arts[arts["sha256"].notna()]
print("POINTS", len(metrics))
print("FILES", len(held))
for run, n in held.groupby("run")["sha256"].nunique().items():
    print("BODIES", run, n)
`
	pyOut, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("the doc's pandas snippet: %v\n%s\n%s", err, script, pyOut)
	}
	got := map[string]int{}
	var pdPoints, pdFiles int
	for _, l := range strings.Split(string(pyOut), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 2 && f[0] == "POINTS":
			pdPoints, _ = strconv.Atoi(f[1])
		case len(f) == 2 && f[0] == "FILES":
			pdFiles, _ = strconv.Atoi(f[1])
		case len(f) == 3 && f[0] == "BODIES":
			got[f[1]], _ = strconv.Atoi(f[2])
		}
	}
	if pdPoints != points || pdFiles != copiedFiles {
		t.Errorf("pandas read %d points and %d files with a body; summary says %d points, the copy %d files", pdPoints, pdFiles, points, copiedFiles)
	}
	for run, n := range bodies {
		if got[run] != n {
			t.Errorf("%s: summary says %d file bodies, pandas finds %d distinct sha256", run, n, got[run])
		}
	}
	t.Logf("summary:\n%s\npandas:\n%s", out, pyOut)
}
