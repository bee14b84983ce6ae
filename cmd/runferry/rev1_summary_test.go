package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	pyOut, err := exec.Command(py, "-c", "import pandas as pd\n"+pandasArtifactsPy(arch)).CombinedOutput()
	if err != nil {
		t.Fatalf("pandas: %v\n%s", err, pyOut)
	}
	pd := readPandasArtifacts(string(pyOut))
	files, fileBytes, bodies, bodyBytes, perRun := pd.Files, pd.FileBytes, pd.Bodies, pd.BodyBytes, pd.PerRun
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

	_, rows, closing := archiveSummary(t, arch)
	var points int64
	for _, r := range rows {
		points += r.Points
		want, ok := perRun[r.Run]
		if !ok || r.Bodies != want[0] || r.BodyBytes != bytesText(want[1]) {
			t.Errorf("row of %s: %d bodies of %s, pandas finds %d distinct sha256 of %s", r.Run, r.Bodies, r.BodyBytes, want[0], bytesText(want[1]))
		}
	}
	tables := regexp.MustCompile(`, (\d+(?:\.\d)? [KMG]?i?B) of tables$`).FindStringSubmatch(closing)
	if tables == nil {
		t.Fatalf("closing line %q", closing)
	}
	want := fmt.Sprintf("2 runs, %d points, %d file bodies of %s stored (files with the same content are one body, in one run or across runs; "+
		"the runs' FILE BODIES add up to %d of %s, a body held by several runs counted in each), %s of tables",
		points, bodies, bytesText(bodyBytes), rowsSum, bytesText(rowsBytes), tables[1])
	if got := closing; got != want {
		t.Errorf("closing line\n%s\nwant\n%s", got, want)
	}

	// docs/ARCHIVE.md's artifacts snippet, run as written on this archive:
	// its first line is the copy's files and bytes, its last the bodies
	// stored.
	snippet := archiveDocSnippet(t, `pd.read_parquet("ARCHIVE/artifacts")`, arch)
	docOut, err := exec.Command(py, "-c", snippet).CombinedOutput()
	if err != nil {
		t.Fatalf("the doc's snippet: %v\n%s", err, docOut)
	}
	docLines := strings.Split(strings.TrimSpace(string(docOut)), "\n")
	if first, last := docLines[0], docLines[len(docLines)-1]; first != fmt.Sprintf("%d %d", files, fileBytes) || last != fmt.Sprintf("%d %d", bodies, bodyBytes) {
		t.Errorf("the doc's snippet printed\n%s\nwant first %d %d (files), last %d %d (bodies stored)", docOut, files, fileBytes, bodies, bodyBytes)
	}
	t.Logf("pandas:\n%s\nthe doc's snippet:\n%s", pyOut, docOut)
}
