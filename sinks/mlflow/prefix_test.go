package mlflow_test

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestExperimentPrefixFlagMeansTheOption: --experiment-prefix and the
// location's ?experiment-prefix= plan alike: a copy under a second prefix
// is a second copy (the flag used to find the runs held under the first
// prefix and skip them), and the two given at odds is a usage error.
func TestExperimentPrefixFlagMeansTheOption(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMLflow(t)
	bin := buildCLI(t)
	// crashed-after=1ns: the fixture run without an exit record is judged
	// crashed whatever the clone's mtimes, so its state cannot change between copies.
	fixtures := "wandb:" + testenv.RepoRoot(t) + "/testdata/wandb/fixtures?crashed-after=1ns"
	base := fmt.Sprintf("pfx-%d-", testenv.FreePort(t))
	copyTo := func(dst string, args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"copy", fixtures, dst, "--no-state", "--accept-gaps"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil {
			return 0, string(out)
		}
		return cmdExit(err), string(out)
	}
	dst := "mlflow+" + srv.URL
	if code, out := copyTo(dst, "--experiment-prefix", base+"a/"); code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("first copy: exit %d\n%s", code, out)
	}
	if code, out := copyTo(dst, "--experiment-prefix", base+"b/"); code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy under a second prefix (want 6 runs copied again): exit %d\n%s", code, out)
	}
	code, out := copyTo(dst+"?experiment-prefix="+base+"a/", "--dry-run")
	if code != 0 || !strings.Contains(out, "would copy 0 runs") || !strings.Contains(out, "6 unchanged") {
		t.Fatalf("the option with the flag's first prefix should find the runs copied with the flag: exit %d\n%s", code, out)
	}
	if code, out := copyTo(dst+"?experiment-prefix="+base+"a/", "--experiment-prefix", base+"c/"); code != 2 || !strings.Contains(out, "give one") {
		t.Fatalf("option and flag at odds: exit %d\n%s", code, out)
	}
}

// TestTransformRecordedInMLflow: a run copied with --drop-metrics carries
// the transform in its runferry.fingerprint tag, and check (reading what
// MLflow holds) compares with the source as transformed.
func TestTransformRecordedInMLflow(t *testing.T) {
	t.Parallel()
	srv := testenv.SharedMLflow(t)
	bin := buildCLI(t)
	fixtures := "wandb:" + testenv.RepoRoot(t) + "/testdata/wandb/fixtures?crashed-after=1ns"
	dst := "mlflow+" + srv.URL + fmt.Sprintf("?experiment-prefix=drop-%d/", testenv.FreePort(t))
	run := func(args ...string) (int, string) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err == nil {
			return 0, string(out)
		}
		return cmdExit(err), string(out)
	}
	if code, out := run("copy", fixtures, dst, "--no-state", "--accept-gaps", "--drop-metrics", "system/*"); code != 0 || !strings.Contains(out, "copied 6 runs (72 points") {
		t.Fatalf("copy: exit %d\n%s", code, out)
	}
	if code, out := run("check", fixtures, dst); code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	if code, out := run("check", fixtures, dst, "--drop-metrics", "none"); code != 4 || !strings.Contains(out, "system/proc.memory.percent missing") {
		t.Fatalf("check with another transform: exit %d\n%s", code, out)
	}
}
