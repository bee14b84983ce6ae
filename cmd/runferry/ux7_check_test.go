package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
)

// TestCheckShowsProgressWithinARun: check logs its progress line while one
// run is being compared, not only after each run. Checking an archive
// against the MLflow server it was restored into, a 600,000-point run kept
// check silent for 106 s (lines at 21:51:55 and 21:53:41), though its help
// says a line comes every 5 seconds. Here the interval is 1 ms and the one
// run compared is the Tarun sample (2,062 metric keys, 14,834 points), so
// lines must come before it is done (runs_checked=0); before the fix the
// only line came after it.
func TestCheckShowsProgressWithinARun(t *testing.T) {
	defer func(d time.Duration) { checkProgressEvery = d }(checkProgressEvery)
	checkProgressEvery = time.Millisecond
	src := "wandb:" + testenv.Samples(t, "wandb/Tarun-AK__scaling/wandb")
	dst := "sqlite:" + filepath.Join(t.TempDir(), "runs.db")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", "--no-state", src, dst); code != 0 {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "check", src, dst)
	if code != 0 || !strings.Contains(out, ": 1 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "msg=checking runs_checked=0 differences=0") {
		t.Errorf("no progress line while the run was compared:\n%s", errOut)
	}
	// A line after the run is not guaranteed: the ticker may have logged
	// less than the interval before the run ended. What every line says
	// must be true: no count beyond the one run, none going back.
	last := 0
	for _, line := range strings.Split(errOut, "\n") {
		if !strings.Contains(line, "msg=checking ") {
			continue
		}
		n := -1
		for _, c := range []int{0, 1} {
			if strings.Contains(line, fmt.Sprintf("runs_checked=%d differences=0", c)) {
				n = c
			}
		}
		if n < last {
			t.Errorf("progress line out of order or wrong: %q\n%s", line, errOut)
		}
		last = n
	}
	// Nothing is logged once check returned: the closing line is the last
	// word, and -q still silences the lines.
	if _, _, errOut := runCLI(t, "check", "-q", src, dst); strings.Contains(errOut, "checking") {
		t.Errorf("check -q logs progress:\n%s", errOut)
	}
}
