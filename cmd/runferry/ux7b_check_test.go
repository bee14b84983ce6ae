package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCheckCarriesOnPastAnUnreadableRun: check compares every run it can
// read, names and counts the runs it cannot read from the source, and exits
// 3, as a copy does with a run it cannot read. Before, with one metrics file
// of an archive truncated, `check parquet:DAMAGED parquet:GOOD` stopped on
// that run with exit 1 and the other runs were not compared. Here an
// archive of the fixtures (6 runs) is copied whole, one run's metrics file
// is truncated in the first: check must compare the 5 other runs (5
// match), name the truncated file's run with the file, count it in the
// closing line and in the report, and exit 3.
func TestCheckCarriesOnPastAnUnreadableRun(t *testing.T) {
	tmp := t.TempDir()
	damaged, good := filepath.Join(tmp, "damaged"), filepath.Join(tmp, "good")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", "--no-state", "-q", fixtures, "parquet:"+damaged); code != 0 {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.CopyFS(good, os.DirFS(damaged)); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(damaged, "metrics", "*", "*.parquet"))
	if len(files) == 0 {
		t.Fatal("no metrics file")
	}
	fi, err := os.Stat(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(files[0], fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(tmp, "check.json")
	code, out, errOut := runCLI(t, "check", "--report", report, "parquet:"+damaged, "parquet:"+good)
	if code != exitRunsFailed {
		t.Errorf("exit %d, want %d\n%s%s", code, exitRunsFailed, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var notCompared []string
	for _, l := range lines[:len(lines)-1] {
		if strings.HasPrefix(l, "NOT COMPARED ") {
			notCompared = append(notCompared, l)
		} else {
			t.Errorf("unexpected line: %q", l)
		}
	}
	if len(notCompared) != 1 || !strings.Contains(notCompared[0], filepath.Base(files[0])) {
		t.Errorf("want one NOT COMPARED line naming %s, got %q", filepath.Base(files[0]), notCompared)
	}
	closing := lines[len(lines)-1]
	want := regexp.MustCompile(`^checked 1 experiment, 6 runs, [0-9]+ points: 5 match, 0 differences, 1 run not compared \(could not be read, see above\)$`)
	if !want.MatchString(closing) {
		t.Errorf("closing line %q, want %s", closing, want)
	}
	data, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Runs        int
		Matching    int
		NotCompared []struct{ Run, What string } `json:"not_compared"`
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Runs != 6 || rep.Matching != 5 || len(rep.NotCompared) != 1 || !strings.HasPrefix(notCompared[0], "NOT COMPARED "+rep.NotCompared[0].Run+": ") {
		t.Errorf("report: %s", data)
	}
	// The damage goes the other way too: the destination's unreadable
	// metrics are a difference (exit 4), and still every run is compared.
	code, out, errOut = runCLI(t, "check", "parquet:"+good, "parquet:"+damaged)
	if code != exitDifferences || !strings.Contains(out, ": 5 match, 1 difference\n") {
		t.Errorf("check GOOD DAMAGED: exit %d\n%s%s", code, out, errOut)
	}
}
