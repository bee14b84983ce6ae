package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestSummaryTotalsCountSharedBodiesOnce copies two W&B runs that hold a
// file of the same content (files/shared.txt in both, and a second copy of
// it in one of them) into an archive, then compares what archive summary,
// the copy's JSON summary and its report count with what the archive
// stores, read independently: pandas reading the artifacts table and the
// files under blobs/. The closing line of archive summary counts each body
// stored once (it added up the runs' rows, counting a body two runs share
// twice, more bodies than blobs/ holds), and names the rows' sum beside
// it; each run's row counts its distinct bodies; the copy's files and
// bytes are the artifacts table's rows with a body and their sizes.
func TestSummaryTotalsCountSharedBodiesOnce(t *testing.T) {
	py := testenv.Python(t)
	src := filepath.Join(t.TempDir(), "wandb")
	shared := strings.Repeat("the same bytes in two runs\n", 200)
	for _, run := range []string{"offline-run-20261125_230217-fxe00005", "offline-run-20261125_230219-fxf00006"} {
		if err := os.CopyFS(filepath.Join(src, run), os.DirFS(filepath.Join("../../testdata/wandb/fixtures/wandb", run))); err != nil {
			t.Fatal(err)
		}
		names := []string{"shared.txt"}
		if strings.HasSuffix(run, "fxe00005") {
			names = append(names, "shared-again.txt")
		}
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(src, run, "files", n), []byte(shared), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	arch, report := filepath.Join(dir, "a"), filepath.Join(dir, "report.json")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", "wandb:"+src+"?crashed-after=1ns", "parquet:"+arch,
		"--no-state", "--log-format", "json", "--report", report)
	if code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	type totals struct {
		Files int64 `json:"files"`
		Bytes int64 `json:"bytes"`
	}
	var sum struct {
		Totals totals `json:"totals"`
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil {
		t.Fatalf("the copy's JSON summary (%v):\n%s", err, out)
	}
	var rep struct {
		Totals totals `json:"totals"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}

	// What the archive stores, read without runferry.
	script := `import pandas as pd
arts = pd.read_parquet(` + strconv.Quote(arch+"/artifacts") + `)
held = arts[arts["sha256"].notna()]
print("FILES", len(held), int(held["size"].sum()))
bodies = held.drop_duplicates("sha256")
print("BODIES", len(bodies), int(bodies["size"].sum()))
for run, n in held.groupby("run")["sha256"].nunique().items():
    print("RUN", run, n, int(held[held["run"] == run].drop_duplicates("sha256")["size"].sum()))
`
	pyOut, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("pandas: %v\n%s", err, pyOut)
	}
	var files, fileBytes, bodies, bodyBytes int64
	perRun := map[string][2]int64{}
	for _, l := range strings.Split(string(pyOut), "\n") {
		f := strings.Fields(l)
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		switch {
		case len(f) == 3 && f[0] == "FILES":
			files, fileBytes = n(1), n(2)
		case len(f) == 3 && f[0] == "BODIES":
			bodies, bodyBytes = n(1), n(2)
		case len(f) == 4 && f[0] == "RUN":
			perRun[f[1]] = [2]int64{n(2), n(3)}
		}
	}
	var blobs, blobBytes int64
	err = filepath.WalkDir(filepath.Join(arch, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		blobs++
		blobBytes += fi.Size()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if bodies != blobs || bodyBytes != blobBytes || len(perRun) != 2 {
		t.Fatalf("pandas: %d distinct bodies of %d B in %d runs; blobs/ holds %d of %d B\n%s", bodies, bodyBytes, len(perRun), blobs, blobBytes, pyOut)
	}
	var rowsSum, rowsBytes int64
	for _, r := range perRun {
		rowsSum += r[0]
		rowsBytes += r[1]
	}
	if rowsSum <= bodies {
		t.Fatalf("the runs share no body (%d per run, %d in all): the test proves nothing\n%s", rowsSum, bodies, pyOut)
	}

	// The copy counted files: the artifacts rows with a body.
	if sum.Totals != (totals{files, fileBytes}) || rep.Totals != sum.Totals {
		t.Errorf("copy's JSON summary %+v, report %+v; the artifacts table holds %d files of %d B", sum.Totals, rep.Totals, files, fileBytes)
	}

	code, out, errOut = runCLI(t, "archive", "summary", arch)
	if code != 0 {
		t.Fatalf("archive summary: exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	row := regexp.MustCompile(`^(\S+)\s+\S+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+(?:\.\d)? [KMG]?i?B)\s+(\d+(?:\.\d)? [KMG]?i?B)$`)
	var points int64
	for _, l := range lines[1 : len(lines)-1] {
		f := row.FindStringSubmatch(l)
		if f == nil {
			t.Fatalf("summary line %q", l)
		}
		p, _ := strconv.ParseInt(f[2], 10, 64)
		points += p
		want, ok := perRun[f[1]]
		if n, _ := strconv.ParseInt(f[3], 10, 64); !ok || n != want[0] || f[4] != bytesText(want[1]) {
			t.Errorf("row of %s: %s bodies of %s, pandas finds %d distinct sha256 of %s", f[1], f[3], f[4], want[0], bytesText(want[1]))
		}
	}
	tables := regexp.MustCompile(`, (\d+(?:\.\d)? [KMG]?i?B) of tables$`).FindStringSubmatch(lines[len(lines)-1])
	if tables == nil {
		t.Fatalf("closing line %q", lines[len(lines)-1])
	}
	want := fmt.Sprintf("2 runs, %d points, %d file bodies of %s stored (files with the same content are one body, in one run or across runs; "+
		"the runs' FILE BODIES add up to %d of %s, a body held by several runs counted in each), %s of tables",
		points, bodies, bytesText(bodyBytes), rowsSum, bytesText(rowsBytes), tables[1])
	if got := lines[len(lines)-1]; got != want {
		t.Errorf("closing line\n%s\nwant\n%s", got, want)
	}

	// docs/ARCHIVE.md's artifacts snippet, run as written on this archive:
	// its first line is the copy's files and bytes, its last the bodies
	// stored.
	doc, err := os.ReadFile("../../docs/ARCHIVE.md")
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, b := range regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(b[1], `pd.read_parquet("ARCHIVE/artifacts")`) {
			snippet = b[1]
		}
	}
	if snippet == "" {
		t.Fatal(`docs/ARCHIVE.md has no python block with pd.read_parquet("ARCHIVE/artifacts")`)
	}
	docOut, err := exec.Command(py, "-c", strings.ReplaceAll(snippet, `"ARCHIVE/`, `"`+arch+`/`)).CombinedOutput()
	if err != nil {
		t.Fatalf("the doc's snippet: %v\n%s", err, docOut)
	}
	docLines := strings.Split(strings.TrimSpace(string(docOut)), "\n")
	if first, last := docLines[0], docLines[len(docLines)-1]; first != fmt.Sprintf("%d %d", files, fileBytes) || last != fmt.Sprintf("%d %d", bodies, bodyBytes) {
		t.Errorf("the doc's snippet printed\n%s\nwant first %d %d (files), last %d %d (bodies stored)", docOut, files, fileBytes, bodies, bodyBytes)
	}
	t.Logf("summary:\n%s\npandas:\n%s\nthe doc's snippet:\n%s", out, pyOut, docOut)
}
