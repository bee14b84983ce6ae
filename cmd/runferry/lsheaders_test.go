package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestLsNoCountFromHeaders lists W&B folders with --no-count, which reads
// light run headers, and with counting, which reads every run in full: the
// two listings agree in every column but the counted ones (KEYS, POINTS)
// and PARAMS (a header leaves out the config: "-"), and in their exit codes, on the fixtures and the real-world samples
// (among them a run whose middle segment's log is truncated: flagged
// damaged in both).
func TestLsNoCountFromHeaders(t *testing.T) {
	for _, loc := range []string{fixtures, "wandb:" + testenv.Samples(t, "wandb")} {
		codeLight, light, errLight := runCLI(t, "ls", "--no-count", loc)
		codeFull, full, errFull := runCLI(t, "ls", "--count", loc)
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

// lsColumns returns the rows of an `ls` listing without its PARAMS, KEYS
// and POINTS columns and its closing line, whitespace collapsed.
func lsColumns(out string) []string {
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || strings.HasSuffix(line, " points") || strings.HasSuffix(line, "(points not counted: --count counts them)") {
			continue
		}
		rows = append(rows, strings.Join(f[:len(f)-3], " "))
	}
	return rows
}

// TestLsDefaultIsLight: plain `ls` is the listing without counts, the same
// bytes as `ls --no-count` (KEYS and POINTS shown as "-"), on W&B folders
// and on an archive; `--count` counts (the fixtures' 142 points), and
// `--count --no-count` is a usage error.
func TestLsDefaultIsLight(t *testing.T) {
	archive := "parquet:" + t.TempDir() + "/a"
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s%s", code, out, errOut)
	}
	for _, loc := range []string{fixtures, archive} {
		code, plain, errPlain := runCLI(t, "ls", loc)
		codeNC, light, errNC := runCLI(t, "ls", "--no-count", loc)
		if code != 0 || codeNC != 0 || plain != light || errPlain != errNC {
			t.Errorf("%s: ls (exit %d) and ls --no-count (exit %d) differ:\n%s%s\n---\n%s%s", loc, code, codeNC, plain, errPlain, light, errNC)
		}
		rows := strings.Split(strings.TrimSpace(plain), "\n")
		if len(rows) != 8 || !strings.HasSuffix(rows[1], "-     -") || rows[7] != "1 experiment, 6 runs (points not counted: --count counts them)" {
			t.Errorf("%s: plain ls:\n%s", loc, plain)
		}
		code, counted, errOut := runCLI(t, "ls", "--count", loc)
		if code != 0 || !strings.HasSuffix(counted, "1 experiment, 6 runs, 142 points\n") {
			t.Errorf("%s: ls --count: exit %d\n%s%s", loc, code, counted, errOut)
		}
		// In --json a count not taken is null, never a 0 that reads as
		// "no points"; with --count the numbers add up to the text's total.
		for _, counting := range []bool{false, true} {
			args := []string{"ls", "--json", loc}
			if counting {
				args = append(args, "--count")
			}
			code, js, errOut := runCLI(t, args...)
			var got []map[string]any
			if err := json.Unmarshal([]byte(js), &got); code != 0 || err != nil || len(got) != 6 {
				t.Fatalf("%v: exit %d %v\n%s%s", args, code, err, js, errOut)
			}
			var sum float64
			for _, r := range got {
				p, k := r["points"], r["metric_keys"]
				if !counting && (p != nil || k != nil) {
					t.Errorf("%v: points %v, metric_keys %v, want null", args, p, k)
				}
				if counting {
					n, ok := p.(float64)
					if _, kok := k.(float64); !ok || !kok {
						t.Errorf("%v: points %v, metric_keys %v, want numbers", args, p, k)
					}
					sum += n
				}
			}
			if counting && sum != 142 {
				t.Errorf("%v: %v points in all, want 142", args, sum)
			}
		}
	}
	if code, _, errOut := runCLI(t, "ls", "--count", "--no-count", fixtures); code != exitUsage || !strings.Contains(errOut, "exclude each other") {
		t.Errorf("ls --count --no-count: exit %d %q", code, errOut)
	}
}
