package main

import (
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestLsNoCountFromHeaders lists W&B folders with --no-count, which reads
// light run headers, and with counting, which reads every run in full: the
// two listings agree in every column but the counted ones (KEYS, POINTS)
// and in their exit codes, on the fixtures and the real-world samples
// (among them a run whose middle segment's log is truncated: flagged
// damaged in both).
func TestLsNoCountFromHeaders(t *testing.T) {
	for _, loc := range []string{fixtures, "wandb:" + testenv.Samples(t, "wandb")} {
		codeLight, light, errLight := runCLI(t, "ls", "--no-count", loc)
		codeFull, full, errFull := runCLI(t, "ls", loc)
		if codeLight != codeFull || errLight != errFull {
			t.Errorf("%s: exit %d %q with --no-count, %d %q counting", loc, codeLight, errLight, codeFull, errFull)
		}
		lightRows, fullRows := lsColumns(light), lsColumns(full)
		if strings.Join(lightRows, "\n") != strings.Join(fullRows, "\n") {
			t.Errorf("%s: listings differ:\n--no-count:\n%s\ncounting:\n%s", loc, strings.Join(lightRows, "\n"), strings.Join(fullRows, "\n"))
		}
		if len(lightRows) < 5 {
			t.Errorf("%s: %d rows:\n%s", loc, len(lightRows), light)
		}
	}
}

// lsColumns returns the rows of an `ls` listing without its KEYS and
// POINTS columns and its closing line, whitespace collapsed.
func lsColumns(out string) []string {
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasSuffix(line, " points") {
			continue
		}
		rows = append(rows, strings.Join(f[:len(f)-2], " "))
	}
	return rows
}
