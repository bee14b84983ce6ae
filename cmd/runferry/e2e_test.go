package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// fixtures judges the SIGKILLed fixture run crashed whatever its files' times
// (see the wandb source's crashed-after), so that no test depends on the clock.
const fixtures = "wandb:../../testdata/wandb/fixtures?crashed-after=1ns"

// TestCopyWandbToParquetEndToEnd: dry run writes nothing; a copy commits
// every run and check passes; a second copy commits nothing twice; the
// report and the ledger hold no secret.
func TestCopyWandbToParquetEndToEnd(t *testing.T) {
	const secret = "pl4nted-T0KEN-e2e"
	t.Setenv("MLFLOW_TRACKING_TOKEN", secret)
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	report := filepath.Join(dir, "report.json")

	code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+archive, "--dry-run", "--state", ledger)
	if code != 0 || !strings.Contains(out, "would copy 6 runs (142 points") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Fatalf("dry run created the archive (%v)", err)
	}
	if _, err := os.Stat(ledger); !os.IsNotExist(err) {
		t.Fatalf("dry run created the ledger (%v)", err)
	}

	code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+archive, "--state", ledger, "--report", report)
	if code != 0 || !strings.Contains(out, "copied 6 runs (142 points, 15 files") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	var rep transfer.Report
	b, err := os.ReadFile(report)
	if err != nil || json.Unmarshal(b, &rep) != nil || rep.Totals.Committed != 6 || rep.Totals.Points != 142 {
		t.Fatalf("report: %v %+v", err, rep.Totals)
	}
	code, out, _ = runCLI(t, "check", fixtures, "parquet:"+archive)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}

	// Nothing changed in the run folders (the source's fingerprints say so),
	// so nothing is written again.
	code, out, _ = runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+archive, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 0 runs") || !strings.Contains(out, "6 unchanged") {
		t.Fatalf("second copy: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "ls", "--count", "parquet:"+archive)
	if code != 0 || !strings.Contains(out, "1 experiment, 6 runs, 142 points") {
		t.Fatalf("ls: exit %d\n%s", code, out)
	}
	for _, f := range []string{report, ledger} {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds the planted secret", f)
		}
	}

	// A changed destination is caught by check.
	code, out, _ = runCLI(t, "check", fixtures, "parquet:"+archive, "--run", "fxa00001")
	if code != 0 {
		t.Fatalf("check --run: %d %s", code, out)
	}
	testenv.Samples(t, "wandb")
	code, out, _ = runCLI(t, "check", "wandb:../../../shared/samples/wandb/ARM-software__keyword-transformer", "parquet:"+archive)
	if code != exitDifferences || !strings.Contains(out, "missing run") {
		t.Fatalf("check against an archive lacking the runs: exit %d\n%s", code, out)
	}
}

// TestKillAtRandomMomentsThenResume: the real binary is SIGKILLed at random
// moments while copying the real W&B samples into an archive; after each
// kill the archive verifies, and a final re-run ends with check passing.
func TestKillAtRandomMomentsThenResume(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	samples := "../../../shared/samples/wandb"
	if _, err := os.Stat(samples); err != nil {
		testenv.Unavailable(t, "../shared/samples", err.Error())
	}
	if testing.Short() {
		t.Skip("builds and kills the binary 20 times")
	}
	dir := t.TempDir()
	bin := testenv.BuildOnce(t, ".")
	archive := "parquet:" + filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	src := "wandb:" + samples + "?crashed-after=1ns" // no test depends on the clock
	// How long an uninterrupted copy takes sets the range of kill moments.
	probe := exec.Command(bin, "copy", src, "parquet:"+filepath.Join(dir, "probe"), "--no-state", "-q")
	start := time.Now()
	if out, err := probe.CombinedOutput(); exitCode(err) != exitRunsFailed || !strings.Contains(string(out), "2 read from damaged source data") {
		t.Fatalf("probe copy: %v\n%s", err, out)
	}
	full := time.Since(start)
	rng := testenv.Rand(t)
	kills := 0
	for i := range 20 {
		cmd := exec.Command(bin, "copy", "--accept-gaps", src, archive, "--state", ledger, "-q", "--concurrency", "2")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(full))))
		if err := cmd.Process.Signal(syscall.SIGKILL); err == nil {
			kills++
		}
		_ = cmd.Wait()
		chk := exec.Command(bin, "archive", "check", strings.TrimPrefix(archive, "parquet:"))
		if out, err := chk.CombinedOutput(); err != nil && !strings.Contains(string(out), "no such file") {
			t.Fatalf("after kill %d: archive check: %v\n%s", i, err, out)
		}
	}
	// Exit 3 is expected while damaged runs (the samples hold two) are
	// still being written; every run must be done afterwards.
	out, err := exec.Command(bin, "copy", "--accept-gaps", src, archive, "--state", ledger, "-q").CombinedOutput()
	if code := exitCode(err); code != 0 && code != exitRunsFailed || strings.Contains(string(out), "FAILED") {
		t.Fatalf("final copy: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "check", src, archive).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0 differences") {
		t.Fatalf("check after %d kills: %v\n%s", kills, err, out)
	}
	t.Logf("%d kills within %v each; %s", kills, full, strings.TrimSpace(string(out)))
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestInspectSample(t *testing.T) {
	file := "../../../shared/samples/wandb/ARM-software__keyword-transformer/wandb/run-20220429_201936-3ojed7lz/run-3ojed7lz.wandb"
	if _, err := os.Stat(file); err != nil {
		testenv.Unavailable(t, "../shared/samples", err.Error())
	}
	code, out, errOut := runCLI(t, "inspect", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	history := strings.Count(out, `"kind":"history"`)
	if code != exitRunsFailed || len(lines) != 1107 || history != 862 ||
		!strings.Contains(lines[len(lines)-1], `"damage"`) || !strings.Contains(errOut, "1 damaged place (") {
		t.Fatalf("inspect: exit %d, %d lines, %d history, last %q, stderr %q", code, len(lines), history, lines[len(lines)-1], errOut)
	}
	code, _, errOut = runCLI(t, "inspect", "../../README.md")
	if code != exitFatal || !strings.Contains(errOut, "README.md") {
		t.Fatalf("inspect of a non-.wandb file: exit %d %q", code, errOut)
	}
}

// TestInterruptThenResume: SIGINT in the middle of a copy of several large
// runs stops the job with exit 130 and the ledger saved; a re-run resumes
// and check passes.
func TestInterruptThenResume(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	if testing.Short() {
		t.Skip("generates a few million points")
	}
	dir := t.TempDir()
	bin := testenv.BuildOnce(t, ".")
	gen := testenv.BuildOnce(t, "../../bench/genwandb")
	data := filepath.Join(dir, "data")
	for i := range 4 {
		id := fmt.Sprintf("big%05d", i)
		if out, err := exec.Command(gen, "-out", data, "-id", id, "-rows", "60000", "-keys", "10", "-seed", fmt.Sprint(i+1)).CombinedOutput(); err != nil {
			t.Fatalf("genwandb: %v\n%s", err, out)
		}
	}
	src, dst := "wandb:"+data, "parquet:"+filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	cmd := exec.Command(bin, "copy", "--accept-gaps", src, dst, "--state", ledger, "--concurrency", "1")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once the first run is committed (its journal line is
	// written), while the others are still to come.
	journal := filepath.Join(dir, "archive", "journal")
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ents, _ := os.ReadDir(journal); len(ents) > 0 {
			if info, err := ents[0].Info(); err == nil && info.Size() > 0 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := exitCode(err); code != exitInterrupted || !strings.Contains(out.String(), "(re-run to resume)") {
		t.Fatalf("interrupted copy: exit %d\n%s", code, out.String())
	}
	// The closing line counts the runs not done, as the line of a job an
	// error stopped does: the 4 runs are those copied and those not done.
	m := regexp.MustCompile(`copied ([0-9]+) runs? .*, interrupted with ([0-9]+) runs? not done \(re-run to resume\) in `).FindStringSubmatch(out.String())
	if m == nil || atoi(m[2]) == 0 || atoi(m[1])+atoi(m[2]) != 4 {
		t.Errorf("closing line does not count the runs not done (want copied K, K + N = 4):\n%s", out.String())
	}
	res, err := exec.Command(bin, "copy", "--accept-gaps", src, dst, "--state", ledger).CombinedOutput()
	if err != nil || !strings.Contains(string(res), "0 failed") {
		t.Fatalf("resume: %v\n%s", err, res)
	}
	res, err = exec.Command(bin, "check", src, dst).CombinedOutput()
	if err != nil || !strings.Contains(string(res), "4 match, 0 differences") {
		t.Fatalf("check: %v\n%s", err, res)
	}
}
