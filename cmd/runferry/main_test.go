package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
)

// runCLI runs runferry in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpIsComplete(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	for _, verb := range []string{"copy", "sync", "check", "ls", "backends", "inspect", "version"} {
		if !strings.Contains(out, "\n  "+verb+" ") {
			t.Errorf("--help does not list %q", verb)
		}
		code, vout, _ := runCLI(t, verb, "--help")
		if code != 0 || !strings.Contains(vout, "Usage:") || len(vout) < 200 {
			t.Errorf("%s --help: exit %d, %d bytes", verb, code, len(vout))
		}
	}
	_, out, _ = runCLI(t, "copy", "--help")
	for _, flag := range []string{"--concurrency", "--include", "--exclude", "--run", "--since", "--until",
		"--dry-run", "--report", "--state", "--restart", "--log-format", "--verbose", "--quiet"} {
		if !strings.Contains(out, flag) {
			t.Errorf("copy --help lacks %s", flag)
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	cases := [][]string{
		{"copy", "only-one"},
		{"copy", "/bare/path", "parquet:/x"},
		{"copy", "--accept-gaps", `C:\data`, "parquet:/x"},
		{"copy", "nosuch:/x", "parquet:/x"},
		{"ls"},
		{"copy", "a:b", "c:d", "--since", "yesterday"},
		{"frobnicate"},
		{"ls", "x:y", "--log-format", "xml"},
	}
	for _, args := range cases {
		code, _, stderr := runCLI(t, args...)
		if code != 2 || !strings.HasPrefix(stderr, "runferry: ") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and a runferry: message", args, code, stderr)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const secret = "pl4nted-S3CRET-value"
	t.Setenv("MLFLOW_TRACKING_TOKEN", secret)
	t.Setenv("WANDB_API_KEY", secret+"-wandb")
	for _, args := range [][]string{
		{"copy", "mlflow+http://alice:" + secret + "@127.0.0.1:1/x", "nosuch://h"},
		{"ls", "mlflow+https://127.0.0.1:1/?tokn=" + secret},
		{"check", "postgres://bob:" + secret + "@db/x", "parquet:/x"},
		{"copy", "oops://" + secret, "x:" + secret},
	} {
		code, out, errOut := runCLI(t, args...)
		if code == 0 {
			t.Errorf("%v: exit 0", args)
		}
		if strings.Contains(out+errOut, secret) {
			t.Errorf("%v printed the secret: %q %q", args, out, errOut)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || out != "runferry "+versionString()+"\n" {
			t.Fatalf("%v: %d %q", args, code, out)
		}
	}
}

func TestUnknownOptionIsUsageError(t *testing.T) {
	code, _, errOut := runCLI(t, "ls", "parquet:"+t.TempDir()+"?snapshto=1")
	if code != 2 || !strings.Contains(errOut, `unknown option "snapshto"`) {
		t.Fatalf("exit %d, %q", code, errOut)
	}
}

// TestHelpListsEveryExitCode: the root help lists exit codes 0, 1, 2, 3, 4 and 130, the same
// codes as README.md's table, with their meanings.
func TestHelpListsEveryExitCode(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit %d", code)
	}
	want := `Exit codes:
  0    everything arrived (check: no difference)
  1    fatal error: nothing more could be done (unreachable server, bad
       credentials, disk full)
  2    bad usage: unknown flag, malformed location
  3    finished, but some runs failed, were read from damaged source
       data or could not be read, or files were not copied (each is
       named; re-run to retry; copy/sync --accept-gaps accepts the
       source's damage and missing files)
  4    check found differences, archive check found damage, or mapping
       check found problems
  130  interrupted; the ledger is saved, re-run to resume
`
	if !strings.Contains(out, "\n\n"+want+"\n") {
		t.Fatalf("--help does not list the exit codes as\n%s\ngot:\n%s", want, out)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(readme)[strings.Index(string(readme), "## Exit codes"):]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	var documented []string
	for _, line := range strings.Split(section, "\n") {
		if f := strings.Split(line, "|"); len(f) > 2 && strings.TrimSpace(f[1]) != "code" && !strings.HasPrefix(strings.TrimSpace(f[1]), "-") {
			documented = append(documented, strings.TrimSpace(f[1]))
		}
	}
	var listed []string
	for _, e := range exitCodes {
		listed = append(listed, strconv.Itoa(e.code))
	}
	if strings.Join(documented, " ") != "0 1 2 3 4 130" || strings.Join(listed, " ") != strings.Join(documented, " ") {
		t.Fatalf("help lists exit codes %v, README.md documents %v; want 0 1 2 3 4 130 in both", listed, documented)
	}
}

// TestVerdictExit: the command maps each of the engine's verdicts to its
// exit code.
func TestVerdictExit(t *testing.T) {
	for v, want := range map[transfer.Verdict]int{transfer.VerdictOK: 0, transfer.VerdictRunsFailed: 3,
		transfer.VerdictFatal: 1, transfer.VerdictInterrupted: 130} {
		if got := verdictExit(v); got != want {
			t.Errorf("verdictExit(%d) = %d, want %d", v, got, want)
		}
	}
}

// TestBadShardExits2: a bad --shard is a usage error naming the flag,
// given locations that would copy fine without it.
func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func TestBadShardExits2(t *testing.T) {
	for _, k := range []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "RUNFERRY_SHARDS"} {
		t.Setenv(k, "")
	}
	for _, shard := range []string{"0/4", "5/4", "1/0", "x/4", "2", "auto"} {
		src, dst := t.TempDir(), t.TempDir()
		code, _, stderr := runCLI(t, "sync", "--accept-gaps", "wandb:"+src, "parquet:"+dst, "--no-state", "--shard", shard)
		if code != 2 || !strings.HasPrefix(stderr, "runferry: --shard") {
			t.Errorf("--shard %s: exit %d, stderr %q; want exit 2 and a message about --shard", shard, code, stderr)
		}
	}
	// The shards of the fixtures between them copy each run once.
	dst, total := "parquet:"+t.TempDir(), 0
	for k := 1; k <= 2; k++ {
		code, out, stderr := runCLI(t, "sync", "--accept-gaps", fixtures, dst, "--no-state", "--shard", fmt.Sprintf("%d/2", k))
		m := regexp.MustCompile(`shard ` + fmt.Sprint(k) + `/2: copied (\d+) runs .*; 0 unchanged, (\d+) in other shards`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("--shard %d/2: exit %d, %q %q", k, code, out, stderr)
		}
		mine, other := atoi(m[1]), atoi(m[2])
		if total != 0 && mine+other != total {
			t.Errorf("shard %d: %d runs + %d in other shards, shard 1 saw %d in all", k, mine, other, total)
		}
		total = mine + other
	}
	code, out, _ := runCLI(t, "sync", "--accept-gaps", fixtures, dst, "--no-state")
	if code != 0 || !strings.Contains(out, "copied 0 runs") || !strings.Contains(out, fmt.Sprintf("; %d unchanged", total)) {
		t.Errorf("unsharded sync after both shards: exit %d, %q; want all %d unchanged", code, out, total)
	}
}

func TestShardStatePath(t *testing.T) {
	for in, want := range map[string]string{
		"/s/ledger.db": "/s/ledger.shard-2-of-4.db",
		"/s/ledger":    "/s/ledger.shard-2-of-4",
		"/s.d/l.x.db":  "/s.d/l.x.shard-2-of-4.db",
	} {
		if got := shardStatePath(in, transfer.Shard{K: 2, N: 4}); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
	if got := shardStatePath("/s/ledger.db", transfer.Shard{}); got != "/s/ledger.db" {
		t.Errorf("unsharded: %s", got)
	}
}

// readReport reads the JSON report a job wrote at path (--report).
func readReport(t *testing.T, path string) transfer.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r transfer.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("report %s: %v", path, err)
	}
	return r
}
