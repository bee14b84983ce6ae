package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// dryThenCopy runs copy --dry-run and then the copy itself of the W&B
// fixtures (one run names an artifact entry whose content is nowhere) into
// dst, each with its report, and returns both reports and outputs.
func dryThenCopy(t *testing.T, dst string) (dry, real *transfer.Report, dryOut, realOut string) {
	t.Helper()
	src := "wandb:" + filepath.Join("..", "..", "testdata", "wandb", "fixtures", "wandb") + "?crashed-after=1ns"
	dir := t.TempDir()
	leg := func(extra ...string) (*transfer.Report, string) {
		rep := filepath.Join(dir, fmt.Sprintf("report-%d.json", len(extra)))
		args := append([]string{"copy", src, dst, "--accept-gaps", "--no-state", "--report", rep}, extra...)
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		r := readReport(t, rep)
		return &r, out
	}
	dry, dryOut = leg("--dry-run")
	real, realOut = leg()
	return dry, real, dryOut, realOut
}

// closingLine is the last line of a copy's output with the verb and the
// duration taken out, so that a dry run's and a copy's can be compared.
func closingLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	last = strings.Replace(last, "would copy ", "copied ", 1)
	return regexp.MustCompile(` in [0-9.]+[µmn]?s$`).ReplaceAllString(last, "")
}

// linesWith returns the lines of out that start with prefix, in order.
func linesWith(out, prefix string) []string {
	var got []string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			got = append(got, l)
		}
	}
	return got
}

// perRun is what the report says each run holds: points, files, bytes and
// the files not copied.
func perRun(rep *transfer.Report) map[string]string {
	m := map[string]string{}
	for _, r := range rep.Runs {
		m[r.Origin] = fmt.Sprintf("%d points, %d files, %d bytes, not copied %q", r.Points, r.Files, r.Bytes, r.FileProblem)
	}
	return m
}

// TestDryRunCountsWhatTheCopyCopies: a dry run into a Parquet archive
// promises what the copy then does, run by run and in the closing line. It
// counted a file the source names but cannot give (the fixtures' artifact
// entry preds.table.json) among the files it would copy ("would copy 6 runs
// (142 points, 16 files, ...)", then "copied 6 runs (142 points, 15 files,
// ...)"; the samples into PostgreSQL: 48 files planned, 46 copied), while
// naming it as not copied in the same output.
func TestDryRunCountsWhatTheCopyCopies(t *testing.T) {
	dry, real, dryOut, realOut := dryThenCopy(t, "parquet:"+filepath.Join(t.TempDir(), "archive"))
	if real.Totals.FilesNotCopied == 0 {
		t.Fatalf("the fixtures' copy named no file not copied; the test needs one:\n%s", realOut)
	}
	if got, want := closingLine(dryOut), closingLine(realOut); got != want {
		t.Errorf("closing lines differ:\ndry run: %s\ncopy:    %s", got, want)
	}
	if got, want := linesWith(dryOut, "file not copied "), linesWith(realOut, "file not copied "); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files not copied:\ndry run: %q\ncopy:    %q", got, want)
	}
	d, r := perRun(dry), perRun(real)
	for o, want := range r {
		if d[o] != want {
			t.Errorf("run %s: dry run %s, copy %s", o, d[o], want)
		}
	}
	if len(d) != len(r) {
		t.Errorf("dry run planned %d runs, the copy wrote %d", len(d), len(r))
	}
	if dry.Totals.Files != real.Totals.Files || dry.Totals.Bytes != real.Totals.Bytes || dry.Totals.Points != real.Totals.Points {
		t.Errorf("totals: dry run %+v, copy %+v", dry.Totals, real.Totals)
	}
}

// TestDryRunIntoMLflowSaysWhatItDoesNotCount: into MLflow, what the server
// would not hold of the metric points (system metrics renamed, per-core CPU
// folded, keys it rejects) is found only while the points are written. The
// dry run of the W&B samples said "86 items not as given", the copy "254":
// the closing line of the dry run now says that it leaves those out, and
// every kind it counts, the copy counts alike. The files and points agree as
// into an archive.
func TestDryRunIntoMLflowSaysWhatItDoesNotCount(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dst := "mlflow+" + srv.URL + "?experiment-prefix=" + uniquePrefix(t)
	dry, real, dryOut, realOut := dryThenCopy(t, dst)
	const said = "not as given (see above; a dry run counts what the destination would not hold of the runs' metadata and files, not of their metric points: the copy counts those too)"
	if !strings.Contains(dryOut, said) {
		t.Errorf("the dry run's closing line does not say what it leaves out (%q):\n%s", said, dryOut)
	}
	if strings.Contains(realOut, "a dry run counts") {
		t.Errorf("the copy's closing line speaks of a dry run:\n%s", realOut)
	}
	if len(real.Coverage) <= len(dry.Coverage) {
		t.Fatalf("the copy counted no kind the dry run did not (the test needs one):\ndry run %v\ncopy %v", dry.Coverage, real.Coverage)
	}
	for k, n := range dry.Coverage {
		if real.Coverage[k] != n {
			t.Errorf("not as given %q: dry run %d, copy %d", k, n, real.Coverage[k])
		}
	}
	if got, want := linesWith(dryOut, "file not copied "), linesWith(realOut, "file not copied "); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files not copied:\ndry run: %q\ncopy:    %q", got, want)
	}
	if dry.Totals.Files != real.Totals.Files || dry.Totals.Points != real.Totals.Points {
		t.Errorf("totals: dry run %+v, copy %+v", dry.Totals, real.Totals)
	}
}
