package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// Set-up shared by tests written apart that began alike: the W&B fixtures
// in a folder that is later moved (f1, rev2, f1b), the wandb SDK's offline
// preamble (f1b, ux11, ux12), a native MLflow run with
// files made by MLflow's own client (f2, ux11), and archive summary's rows
// and docs/ARCHIVE.md's pandas snippets read beside pandas (rev1, ux9b).

// movableFixtures copies the W&B fixtures, times kept, to root/first and
// returns that folder, and move, which copies it to root/moved without
// keeping the times (new modification times, so new fingerprints; the
// same origins: the runs name their entity), removes root/first, as a
// user moving the folder does, and returns root/moved.
func movableFixtures(t *testing.T, root string) (first string, move func() (moved string)) {
	t.Helper()
	first, moved := filepath.Join(root, "first"), filepath.Join(root, "moved")
	if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", first).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	return first, func() string {
		t.Helper()
		if out, err := exec.Command("cp", "-r", first, moved).CombinedOutput(); err != nil {
			t.Fatalf("cp: %v: %s", err, out)
		}
		if err := os.RemoveAll(first); err != nil {
			t.Fatal(err)
		}
		return moved
	}
}

// mlflowMoved is where mlflowMovableFixtures synced the W&B fixtures.
type mlflowMoved struct {
	URL, Prefix, Dst string // the shared MLflow server, the experiment prefix, the sync's destination
	Ledger2          string // a ledger not yet used, in the test's temporary folder
}

// mlflowMovableFixtures copies the W&B fixtures with movableFixtures and
// syncs them (crashed-after=1ns, --accept-gaps, a ledger of their own)
// into the shared MLflow server under an experiment prefix of the test's
// own that ends in "-"+name+"/"; a sync that does not exit 0 having copied
// 6 runs fails the test. It returns where the runs went and
// movableFixtures' move.
func mlflowMovableFixtures(t *testing.T, name string) (m mlflowMoved, move func() (moved string)) {
	t.Helper()
	srv := testenv.SharedMLflow(t)
	root := t.TempDir()
	first, move := movableFixtures(t, root)
	m.URL, m.Prefix = srv.URL, filepath.Base(root)+"-"+name+"/"
	m.Dst, m.Ledger2 = "mlflow+"+srv.URL+"?experiment-prefix="+m.Prefix, filepath.Join(root, "ledger2.db")
	code, out, errOut := runCLI(t, "sync", "wandb:"+first+"?crashed-after=1ns", m.Dst, "--state", filepath.Join(root, "ledger1.db"), "--accept-gaps")
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	return m, move
}

// mlflowFilesPy begins the Python programs that make and edit a native
// MLflow run's files with MLflow's own client, as a user does, called
// with the arguments URL MODE ARG: c is the client, and put(run, name,
// body) logs body (bytes or str) as the run's file name. A program goes
// on with what each MODE does; its "make" mode creates the experiment
// ARG and a run in it, and prints the run's id last.
const mlflowFilesPy = `
import os, sys, tempfile
os.environ.update({"MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "true"})
from mlflow.tracking import MlflowClient
url, mode, arg = sys.argv[1:4]
c = MlflowClient(url)
d = tempfile.mkdtemp()
def put(run, name, body):
    p = os.path.join(d, name)
    with open(p, "wb" if isinstance(body, bytes) else "w") as f:
        f.write(body)
    c.log_artifact(run, p)
`

// mlflowFilesScripts returns a function running program (mlflowFilesPy and
// what follows) with args (URL MODE ARG) and returning what it printed, each
// call in the test's one Python process (testenv.StartPyScripts): a test
// that makes a run and edits it several times imports MLflow once, not once
// a call. The test fails if a call fails.
func mlflowFilesScripts(t *testing.T, program string) func(args ...string) []byte {
	t.Helper()
	script := filepath.Join(t.TempDir(), "mlflowfiles.py")
	if err := os.WriteFile(script, []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	py := testenv.StartPyScripts(t)
	return func(args ...string) []byte {
		t.Helper()
		return py.Run(t, script, args...)
	}
}

// mlflowFilesRun runs program (a function of mlflowFilesScripts) in "make"
// mode against the MLflow server at url for the experiment prefix+"src/exp"
// and returns the run's id and the location reading the experiments
// under prefix+"src/".
func mlflowFilesRun(t *testing.T, url, prefix string, program func(args ...string) []byte) (run, src string) {
	t.Helper()
	printed := strings.Fields(string(program(url, "make", prefix+"src/exp")))
	if len(printed) == 0 {
		t.Fatal("the run-making program printed no run id")
	}
	return printed[len(printed)-1], // after MLflow's "View run" lines
		"mlflow+" + url + "?experiment-prefix=" + prefix + "src/"
}

// wandbOfflinePy returns the Python program body preceded by what every
// program that makes W&B run folders with the real wandb SDK begins with:
// os and sys imported, the SDK set through its environment to run offline
// and silent, capturing no git state, code or console, for the entity
// "ent" and, unless project is "", the project named, and then imported as
// wandb.
func wandbOfflinePy(project, body string) string {
	env := `"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true",
    "WANDB_DISABLE_CODE": "true", "WANDB_CONSOLE": "off", "WANDB_ENTITY": "ent"`
	if project != "" {
		env += `, "WANDB_PROJECT": ` + strconv.Quote(project)
	}
	return "\nimport os, sys\nos.environ.update({" + env + "})\nimport wandb\n" + strings.TrimPrefix(body, "\n")
}

// runWandbPy runs program (made by wandbOfflinePy) with args; a failure
// fails the test with what the program printed.
func runWandbPy(t *testing.T, program string, args ...string) {
	t.Helper()
	if out, err := exec.Command(testenv.Python(t), append([]string{"-c", program}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("wandb SDK %q: %v\n%s", args, err, out)
	}
}

// summaryRow is a run's row of archive summary.
type summaryRow struct {
	Run                   string
	Points, Bodies        int64
	BodyBytes, TableBytes string // as printed
}

// archiveSummary runs archive summary on arch and returns its header,
// its run rows and its closing line; a row it cannot read fails the test.
func archiveSummary(t *testing.T, arch string) (header string, rows []summaryRow, closing string) {
	t.Helper()
	code, out, errOut := runCLI(t, "archive", "summary", arch)
	if code != 0 {
		t.Fatalf("archive summary: exit %d\n%s\n%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("archive summary printed no rows:\n%s", out)
	}
	row := regexp.MustCompile(`^(\S+)\s+\S+\s+\d+\s+(\d+)\s+(\d+)\s+(\d+(?:\.\d)? [KMG]?i?B)\s+(\d+(?:\.\d)? [KMG]?i?B)$`)
	for _, l := range lines[1 : len(lines)-1] {
		f := row.FindStringSubmatch(l)
		if f == nil {
			t.Fatalf("summary line %q", l)
		}
		p, _ := strconv.ParseInt(f[2], 10, 64)
		b, _ := strconv.ParseInt(f[3], 10, 64)
		rows = append(rows, summaryRow{Run: f[1], Points: p, Bodies: b, BodyBytes: f[4], TableBytes: f[5]})
	}
	t.Logf("summary:\n%s", out)
	return lines[0], rows, lines[len(lines)-1]
}

// archiveDocSnippet returns the python block of docs/ARCHIVE.md that
// holds marker, with its "ARCHIVE/ paths made arch's.
func archiveDocSnippet(t *testing.T, marker, arch string) string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/ARCHIVE.md")
	if err != nil {
		t.Fatal(err)
	}
	var snippet string
	for _, b := range regexp.MustCompile("(?s)```python\n(.*?)```").FindAllStringSubmatch(string(doc), -1) {
		if strings.Contains(b[1], marker) {
			snippet = b[1]
		}
	}
	if snippet == "" {
		t.Fatalf("docs/ARCHIVE.md has no python block with %s", marker)
	}
	quoted := strconv.Quote(arch + "/")
	return strings.ReplaceAll(snippet, `"ARCHIVE/`, quoted[:len(quoted)-1])
}

// pandasArtifactsPy is Python that reads arch's artifacts table with
// pandas (imported as pd) and prints what readPandasArtifacts reads.
func pandasArtifactsPy(arch string) string {
	return `
arts = pd.read_parquet(` + strconv.Quote(arch+"/artifacts") + `)
held = arts[arts["sha256"].notna()]
print("FILES", len(held), int(held["size"].sum()))
bodies = held.drop_duplicates("sha256")
print("BODIES", len(bodies), int(bodies["size"].sum()))
for run, n in held.groupby("run")["sha256"].nunique().items():
    print("RUN", run, n, int(held[held["run"] == run].drop_duplicates("sha256")["size"].sum()))
`
}

// pandasArtifacts is what pandas reads in an archive's artifacts table:
// the rows with a body and their sizes, the distinct bodies (sha256) and
// theirs, and per run its distinct bodies and their sizes.
type pandasArtifacts struct {
	Files, FileBytes, Bodies, BodyBytes int64
	PerRun                              map[string][2]int64
}

// readPandasArtifacts reads the lines pandasArtifactsPy printed in out.
func readPandasArtifacts(out string) pandasArtifacts {
	p := pandasArtifacts{PerRun: map[string][2]int64{}}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
		switch {
		case len(f) == 3 && f[0] == "FILES":
			p.Files, p.FileBytes = n(1), n(2)
		case len(f) == 3 && f[0] == "BODIES":
			p.Bodies, p.BodyBytes = n(1), n(2)
		case len(f) == 4 && f[0] == "RUN":
			p.PerRun[f[1]] = [2]int64{n(2), n(3)}
		}
	}
	return p
}
