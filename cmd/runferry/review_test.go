package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	sinksall "github.com/runferry/runferry/sinks/all"
	sourcesall "github.com/runferry/runferry/sources/all"
)

// Findings of the end-to-end review as a new user (docs/REVIEW.md,
// 2026-12-01), each pinned by a test that failed before its fix.

// TestFileNotCopiedExits3: a file the source names but cannot give
// (fixture run fxa00001's artifact entry whose staged copy is gone) fails
// the job with exit 3, as damaged source data does: exit 0 means
// everything asked for arrived. --accept-gaps accepts it: exit 0, the file
// still named and counted, and the report says the gaps were accepted.
// Before, the copy exited 0.
func TestFileNotCopiedExits3(t *testing.T) {
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	report := filepath.Join(t.TempDir(), "r.json")
	code, out, errOut := runCLI(t, "copy", fixtures, archive, "--no-state", "--run", "fxa00001", "--report", report)
	if code != exitRunsFailed {
		t.Fatalf("copy: exit %d, want %d\n%s\n%s", code, exitRunsFailed, out, errOut)
	}
	var rep transfer.Report
	if err := readJSON(report, &rep); err != nil || rep.Totals.FilesNotCopied != 1 || rep.AcceptedGaps {
		t.Errorf("report: %v, totals %+v, accepted %v: want files_not_copied 1", err, rep.Totals, rep.AcceptedGaps)
	}
	archive2 := "parquet:" + filepath.Join(t.TempDir(), "a")
	code, out, errOut = runCLI(t, "copy", fixtures, archive2, "--no-state", "--run", "fxa00001", "--accept-gaps", "--report", report)
	if code != 0 || !strings.Contains(out, "file not copied wandb:fixture-entity/runferry-fixtures/fxa00001: ") ||
		!strings.Contains(out, ", 1 file not copied (named above) (gaps accepted: --accept-gaps) in ") {
		t.Fatalf("copy --accept-gaps: exit %d, want 0 with the file named and counted\n%s\n%s", code, out, errOut)
	}
	rep = transfer.Report{}
	if err := readJSON(report, &rep); err != nil || rep.Totals.FilesNotCopied != 1 || !rep.AcceptedGaps {
		t.Errorf("report --accept-gaps: %v, totals %+v, accepted %v", err, rep.Totals, rep.AcceptedGaps)
	}
}

// TestDamagedRunReportedOnEverySync: a run copied from damaged source data
// (the sample run 3ojed7lz, whose log is truncated) and a run with a file
// not copied (fixture fxa00001) are named, counted and exit 3 on every
// sync while the ledger records their copies as incomplete, not only on
// the first: the second sync finds them unchanged and says so, with the
// same damage lines. --accept-gaps accepts them (exit 0, still named).
// Before, the second sync said "unchanged" and exited 0.
func TestDamagedRunReportedOnEverySync(t *testing.T) {
	for _, c := range []struct{ src, line, count string }{
		{"wandb:" + testenv.Samples(t, "wandb/ARM-software__keyword-transformer/wandb"),
			"damaged source wandb:adeeplearners/kwt-improvements/3ojed7lz: run-20220429_201936-3ojed7lz/run-3ojed7lz.wandb: offset 335628: ",
			", 1 read from damaged source data (see above)"},
		{fixtures, "file not copied wandb:fixture-entity/runferry-fixtures/fxa00001: ", ", 1 file not copied (named above)"},
	} {
		archive := "parquet:" + filepath.Join(t.TempDir(), "a")
		ledger := filepath.Join(t.TempDir(), "ledger.db")
		for i, extra := range [][]string{nil, nil, {"--accept-gaps"}} {
			args := append([]string{"sync", c.src, archive, "--state", ledger, "-v"}, extra...)
			code, out, errOut := runCLI(t, args...)
			want := exitRunsFailed
			if extra != nil {
				want = 0
			}
			if code != want || !strings.Contains(out, c.line) || !strings.Contains(out, c.count) {
				t.Errorf("sync %d of %s: exit %d, want %d, naming and counting the gap\n%s\n%s", i+1, c.src, code, want, out, errOut)
			}
			if i > 0 && !strings.Contains(out, "copied 0 runs") {
				t.Errorf("sync %d of %s copied runs again:\n%s", i+1, c.src, out)
			}
		}
	}
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// TestSummaryCountsFilesNotCopied: a file the source names but cannot
// give (fixture run fxa00001's W&B artifact entry whose staged copy is
// gone) is named in a "file not copied" line, and the closing summary line
// counts it too, for every destination, not only where the sink counts it
// as "not as given" (MLflow). Before, a copy into an archive ended with
// "0 failed" and nothing in the line said a file was missing.
func TestSummaryCountsFilesNotCopied(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "a")
	code, out, errOut := runCLI(t, "copy", fixtures, "parquet:"+archive, "--no-state")
	if code != exitRunsFailed {
		t.Fatalf("copy: exit %d, want %d (a file not copied)\n%s\n%s", code, exitRunsFailed, out, errOut)
	}
	if !strings.Contains(out, "file not copied wandb:fixture-entity/runferry-fixtures/fxa00001: ") {
		t.Fatalf("the missing file is not named:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, ", 1 file not copied (named above)") {
		t.Errorf("closing line does not count the file not copied: %q", last)
	}
}

// TestReadOnlySchemeAsDestination: a scheme runferry reads but does not
// write (wandb:, tensorboard:, mlflow+file:, ...) given as the destination
// is refused as read only, with the schemes that can be written, in one
// line. Before, it was called an "unknown scheme", which is untrue: the
// same scheme works as the source.
func TestReadOnlySchemeAsDestination(t *testing.T) {
	for _, dst := range []string{"wandb:" + t.TempDir(), "tensorboard:" + t.TempDir(), "mlflow+file:" + t.TempDir(), "wandb+https://api.wandb.ai/acme"} {
		code, out, errOut := runCLI(t, "copy", fixtures, dst)
		scheme, _, _ := strings.Cut(dst, ":")
		if code != exitUsage || strings.Contains(errOut, "unknown scheme") ||
			!strings.Contains(errOut, scheme+": is read only (a source, not a destination)") ||
			!strings.Contains(errOut, "mlflow+http:") || !strings.Contains(errOut, "parquet:") ||
			strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("copy to %s: exit %d, want %d and one line saying it is read only\n%s\n%s", dst, code, exitUsage, out, errOut)
		}
	}
	// A scheme no adapter has is still unknown.
	if code, _, errOut := runCLI(t, "copy", fixtures, "nosuch:/x"); code != exitUsage || !strings.Contains(errOut, `unknown scheme "nosuch"`) {
		t.Errorf("copy to nosuch: exit %d\n%s", code, errOut)
	}
}

// TestLsCountsConfigAsParams: a W&B run's params are its config keys (MLflow
// shows fixture run fxa00001 with 14 parameters after a copy), so ls counts
// them in PARAMS, from the run folders with --count and from an archive of
// them; a light listing of the run folders, whose headers leave out the
// config, says it does not know ("-", null in --json). Before, every W&B
// run was listed with 0 params.
func TestLsCountsConfigAsParams(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+archive, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, c := range []struct {
		args []string
		want int // -1: not known
	}{
		{[]string{fixtures, "--count"}, 14},
		{[]string{"parquet:" + archive}, 14},
		{[]string{fixtures}, -1},
	} {
		code, out, errOut := runCLI(t, append([]string{"ls", "--json", "--run", "fxa00001"}, c.args...)...)
		if code != 0 {
			t.Fatalf("ls %v: exit %d\n%s", c.args, code, errOut)
		}
		var rows []runListing
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("ls %v --json: %v\n%s", c.args, err, out)
		}
		got := -1
		if rows[0].Params != nil {
			got = *rows[0].Params
		}
		if got != c.want {
			t.Errorf("ls %v: fxa00001 has %d params, want %d (-1: null)", c.args, got, c.want)
		}
	}
	_, out, _ := runCLI(t, "ls", fixtures, "--run", "fxa00001")
	if !strings.Contains(out, "FINISHED  2026-11-25 23:02  -       -     -") {
		t.Errorf("light listing: PARAMS, KEYS and POINTS should be -:\n%s", out)
	}
}

// TestPlanLineSaysWhatIsNotKnown: the plan logged before a copy of W&B run
// folders, whose points are not counted before the runs are read, does not
// say "points=0 bytes=0" (which reads as nothing to move) but that they are
// not known yet.
func TestPlanLineSaysWhatIsNotKnown(t *testing.T) {
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+filepath.Join(t.TempDir(), "a"), "--no-state")
	if code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	var plan string
	for _, line := range strings.Split(errOut, "\n") {
		if strings.Contains(line, "msg=plan ") {
			plan = line
		}
	}
	if !strings.Contains(plan, "runs=6 up_to_date=0") || strings.Contains(plan, "points=0") || strings.Contains(plan, "bytes=0") ||
		!strings.Contains(plan, `points="not known before the runs are read"`) {
		t.Errorf("plan line: %q", plan)
	}
}

// TestCheckShowsProgress: check logs how far it got at most every
// checkProgressEvery (every run here), so that a long check (22 s for one
// 15k-point run against a local MLflow server) is not silent until its
// closing line; -q leaves the lines out.
func TestCheckShowsProgress(t *testing.T) {
	defer func(d time.Duration) { checkProgressEvery = d }(checkProgressEvery)
	checkProgressEvery = 0
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "check", fixtures, archive)
	if code != 0 || !strings.Contains(errOut, "msg=checking runs_checked=1 differences=0") || !strings.Contains(errOut, "msg=checking runs_checked=6 differences=0") {
		t.Errorf("check: exit %d, want progress lines on stderr\n%s\n%s", code, out, errOut)
	}
	if _, _, errOut := runCLI(t, "check", "-q", fixtures, archive); strings.Contains(errOut, "checking") {
		t.Errorf("check -q logs progress:\n%s", errOut)
	}
}

// TestCheckNamesDamagedSource: check against a copy of a damaged W&B run
// (the sample run 3ojed7lz, whose log is truncated) compares what was
// readable, as the copy did, and passes; it names the run's damage and
// counts it in its closing line, so that a check run alone does not
// read as "everything the run had is there". Before, it said only
// "2 match, 0 differences".
func TestCheckNamesDamagedSource(t *testing.T) {
	src := "wandb:" + testenv.Samples(t, "wandb/ARM-software__keyword-transformer/wandb")
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", src, archive, "--no-state"); code != exitRunsFailed {
		t.Fatalf("copy: exit %d, want %d (damaged source)\n%s\n%s", code, exitRunsFailed, out, errOut)
	}
	code, out, errOut := runCLI(t, "check", src, archive, "--report", filepath.Join(t.TempDir(), "r.json"))
	if code != 0 || !strings.Contains(out, "damaged source wandb:adeeplearners/kwt-improvements/3ojed7lz: run-20220429_201936-3ojed7lz/run-3ojed7lz.wandb: offset 335628: ") ||
		!strings.Contains(out, ": 2 match, 0 differences, 1 run read from damaged source data (compared what was readable, see above)") {
		t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestRootHelpNamesEveryScheme: runferry --help lists, among its locations,
// the scheme of every adapter (sources and destinations), so that a new
// user learns of the W&B cloud, TensorBoard and MLflow's own stores without
// guessing that 'runferry backends' has more. Before, five were missing.
func TestRootHelpNamesEveryScheme(t *testing.T) {
	_, out, _ := runCLI(t, "--help")
	for _, d := range append(sourcesall.Sources().All(), sinksall.Sinks().All()...) {
		if !strings.Contains(out, d.Scheme+":") {
			t.Errorf("runferry --help does not name %s:", d.Scheme)
		}
	}
}

// TestFatalErrorIsOneLine: a fatal error is printed as one line, even when
// a library's message spans several (pgx names each address it tried on a
// line of its own, the same address twice for an IPv4 host), so that logs
// and scripts that read the last line get all of it. Before, a PostgreSQL
// destination that refused connections printed three lines, two alike.
func TestFatalErrorIsOneLine(t *testing.T) {
	port := testenv.FreePort(t)
	for _, verb := range [][]string{{"copy", fixtures}, {"ls"}} {
		args := append(verb, fmt.Sprintf("postgres://u@127.0.0.1:%d/db", port))
		if verb[0] == "copy" {
			args = append(args, "--no-state")
		}
		code, out, errOut := runCLI(t, args...)
		line := strings.TrimSuffix(errOut, "\n")
		if code != exitFatal || strings.Contains(line, "\n") || strings.Contains(line, "\t") ||
			!strings.Contains(line, "connection refused") || strings.Count(line, "dial tcp") != 1 {
			t.Errorf("%v: exit %d, want %d and one line naming the refused connection once\n%s\n%q", args, code, exitFatal, out, errOut)
		}
	}
}

// TestOneLine: what oneLine makes of messages.
func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                       "plain",
		"a:\n\tb\n\tb":                "a: b",
		"a:\n\tb\n\tc\n":              "a: b; c",
		"first\nsecond":               "first; second",
		"x:  two  spaces kept\n\n\ty": "x:  two  spaces kept; y",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestArchivePruneSaysWhatItKept: archive prune names the snapshots kept as
// a list ("kept snapshots 2, 3"), not as a Go slice ("[2 3]"), and prune
// without --keep says that --keep N is needed.
func TestArchivePruneSaysWhatItKept(t *testing.T) {
	archive := filepath.Join(t.TempDir(), "a")
	for _, run := range []string{"fxa00001", "fxb00002", "fxc00003"} {
		if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+archive, "--no-state", "--run", run); code != 0 {
			t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
		}
	}
	code, out, errOut := runCLI(t, "archive", "prune", archive, "--keep", "2")
	if code != 0 || !strings.HasPrefix(out, "kept snapshots ") || strings.Contains(out, "[") {
		t.Errorf("prune: exit %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "archive", "prune", archive)
	if code != exitUsage || !strings.Contains(errOut, "prune needs --keep N") {
		t.Errorf("prune without --keep: exit %d\n%s", code, errOut)
	}
}

// TestForceIntoNewDestination: --force (and --lookback) on the first copy
// into a destination that does not exist yet copies every run, as a copy
// without it does: there is nothing to compare yet. Before, the job failed
// with exit 1 before copying anything ("--force reads DST as check does:
// ... is not a runferry archive"), so a nightly job written with --force
// could not make its first backup.
func TestForceIntoNewDestination(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ dst, flag string }{
		{"parquet:" + filepath.Join(dir, "a"), "--force"},
		{"sqlite:" + filepath.Join(dir, "s.db"), "--force"},
		{"parquet:" + filepath.Join(dir, "b"), "--lookback=10m"},
	} {
		code, out, errOut := runCLI(t, "sync", "--accept-gaps", fixtures, c.dst, c.flag, "--state", filepath.Join(dir, "l.db"))
		if code != 0 || !strings.Contains(out, "copied 6 runs") {
			t.Errorf("sync %s %s: exit %d\n%s\n%s", c.dst, c.flag, code, out, errOut)
			continue
		}
		// The second compares every run with the copy.
		if c.flag == "--force" {
			code, out, errOut = runCLI(t, "sync", "--accept-gaps", fixtures, c.dst, c.flag, "--state", filepath.Join(dir, "l.db"))
			if code != 0 || !strings.Contains(out, "6 verified") {
				t.Errorf("second sync %s %s: exit %d\n%s\n%s", c.dst, c.flag, code, out, errOut)
			}
		}
	}
}

// TestSyncHelpNamesVerify: sync --help says how a Parquet archive's file
// bodies are checked at each sync (by size) and that ?verify=sha256 hashes
// them, since a same-size change is otherwise found only by check and
// archive check (the review flipped one bit of a body: sync said
// unchanged).
func TestSyncHelpNamesVerify(t *testing.T) {
	_, out, _ := runCLI(t, "sync", "--help")
	if !strings.Contains(out, "?verify=sha256") {
		t.Errorf("sync --help does not name ?verify=sha256:\n%s", out)
	}
}

// TestRateOnlyWhereASourceIsRead: --rate, which paces requests to a
// source's server (the W&B cloud), is a flag of the commands that read a
// source (copy, sync, check, ls) and of no other: the help of archive,
// backends, inspect and mapping does not offer it, and given there it is an
// unknown flag (exit 2). Before, it was a global flag shown everywhere.
func TestRateOnlyWhereASourceIsRead(t *testing.T) {
	for _, cmd := range [][]string{{"copy"}, {"sync"}, {"check"}, {"ls"}} {
		if _, out, _ := runCLI(t, append(cmd, "--help")...); !strings.Contains(out, "--rate float") {
			t.Errorf("%v --help does not offer --rate", cmd)
		}
	}
	for _, cmd := range [][]string{{}, {"archive"}, {"archive", "summary"}, {"backends"}, {"inspect"}, {"mapping"}, {"version"}} {
		if _, out, _ := runCLI(t, append(cmd, "--help")...); strings.Contains(out, "--rate") {
			t.Errorf("%v --help offers --rate, which does nothing there", cmd)
		}
	}
	if code, _, errOut := runCLI(t, "archive", "summary", t.TempDir(), "--rate", "5"); code != exitUsage || !strings.Contains(errOut, "unknown flag: --rate") {
		t.Errorf("archive summary --rate: exit %d\n%s", code, errOut)
	}
}

// TestSummaryNamesExperimentsAsLs: archive summary's EXPERIMENT column
// names each run's experiment as ls does (its name: here the W&B project
// under --experiment-prefix bk/), not by its origin. Before, summary showed
// wandb:fixture-entity/runferry-fixtures where ls showed the name.
func TestSummaryNamesExperimentsAsLs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+dir, "--no-state", "--experiment-prefix", "bk/"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "ls", "--json", "parquet:"+dir)
	var rows []runListing
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 6 {
		t.Fatalf("ls: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	want := map[string]string{}
	for _, r := range rows {
		want[r.Origin] = r.Experiment
	}
	code, out, errOut = runCLI(t, "archive", "summary", dir)
	if code != 0 {
		t.Fatalf("summary: exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 {
		t.Fatalf("summary: want a header, 6 runs and totals\n%s", out)
	}
	for _, l := range lines[1:7] {
		f := strings.Fields(l)
		if want[f[0]] != f[1] || f[1] != "bk/fixture-entity/runferry-fixtures" {
			t.Errorf("summary names %s's experiment %q, ls %q", f[0], f[1], want[f[0]])
		}
	}
}

// TestS3WithoutCredentials: a copy into an S3 archive (versitygw) with no
// AWS credentials anywhere (an empty environment and HOME) fails with one
// line saying that none were found and where they were looked for, exit
// 1, and the AWS SDK's own "SDK ... WARN falling back to IMDSv1" line does
// not reach stderr. It runs the binary: the SDK logs to the process's
// stderr. Before, stderr held the SDK's line and a chain of wrapped errors
// ("blob (code=Unknown): operation error S3: ListObjectsV2, get identity:
// get credentials: ...").
func TestS3WithoutCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	srv := testenv.SharedS3(t)
	loc := srv.Location(srv.CreateBucket(t, "nocred"), "a")
	bin := testenv.BuildOnce(t, ".")
	cmd := exec.Command(bin, "copy", fixtures, "parquet:"+loc, "--no-state", "-q")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err == nil {
		t.Skip("credentials were found (an instance or container role on this machine)")
	}
	errOut := strings.TrimSpace(stderr.String())
	if exitCode(err) != exitFatal || strings.Contains(errOut, "\n") || strings.Contains(errOut, "SDK") || strings.Contains(errOut, "IMDSv1") ||
		!strings.HasPrefix(errOut, "runferry: ") || !strings.Contains(errOut, ": no AWS credentials found (searched: the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the shared config and credentials files") {
		t.Errorf("exit %d (%v), want 1 and one line saying no AWS credentials were found\nstdout:\n%s\nstderr:\n%s", exitCode(err), err, stdout.String(), errOut)
	}
}
