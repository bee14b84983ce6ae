package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
)

// asUnprivileged returns a command running the binary bin with args as a
// user to whom file modes apply: as root (whom modes do not stop) it runs
// under setpriv as nobody (uid and gid 65534, no supplementary groups).
func asUnprivileged(t *testing.T, bin string, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		return exec.Command(bin, args...)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("setpriv (util-linux) is needed to run permission tests as nobody")
		}
		t.Skip("running as root without setpriv: file modes cannot be tested")
	}
	return exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
}

// copyFolder copies the regular files and folders under src to dst,
// readable by everyone.
func copyFolder(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUnreadableWandbInputs copies W&B run folders made by the real SDK,
// some of them unreadable to the user running runferry: a run folder, a
// run's files/ folder, one run file, one `.wandb` log, and a run folder
// with no log at all. Every one is named by path and the copy exits 3,
// while everything readable arrives; a re-run copies the damaged runs
// again (nothing vouches for what was not read); once the modes are fixed,
// a re-run brings the rest, exits 0, and check finds no difference.
func TestUnreadableWandbInputs(t *testing.T) {
	fixtureRuns, _ := filepath.Glob("../../testdata/wandb/fixtures/wandb/offline-run-*")
	if len(fixtureRuns) == 0 {
		t.Fatal("no fixture run folders")
	}
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil { // let nobody reach the files
			t.Fatal(err)
		}
	}
	bin := testenv.BuildOnce(t, ".")
	data := filepath.Join(base, "data", "wandb")
	folder := map[string]string{} // run id → its (last) folder
	for _, src := range fixtureRuns {
		id := src[strings.LastIndex(src, "-")+1:]
		if id == "fxc00003" {
			continue // its status depends on the clock (crashed-after)
		}
		folder[id] = filepath.Join(data, filepath.Base(src))
		copyFolder(t, src, folder[id])
	}
	legacy := filepath.Join(data, "run-20200102_030405-old0run1") // pre-0.10, hand-written
	copyFolder(t, "../../sources/wandbdir/testdata/legacy/wandb/run-20200102_030405-old0run1", legacy)
	history, err := os.ReadFile(filepath.Join(legacy, "wandb-history.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture holds a bad line on purpose; here only the mode may hurt.
	history = []byte(strings.Replace(string(history), "not json at all\n", "", 1))
	if err := os.WriteFile(filepath.Join(legacy, "wandb-history.jsonl"), history, 0o644); err != nil {
		t.Fatal(err)
	}
	noLog := filepath.Join(data, "run-20250101_000000-nolog001")
	if err := os.MkdirAll(filepath.Join(noLog, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noLog, "files", "wandb-metadata.json"), []byte(`{"host":"h"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(out, 0o777); err != nil {
		t.Fatal(err)
	}
	wandbLog, _ := filepath.Glob(filepath.Join(folder["fxf00006"], "*.wandb"))
	broken := []string{
		folder["fxd00004"],                                       // a whole run folder
		filepath.Join(folder["fxa00001"], "files"),               // a run's files/
		filepath.Join(folder["fxe00005"], "files", "output.log"), // one run file
		wandbLog[0], // a .wandb log
		filepath.Join(legacy, "wandb-history.jsonl"), // a pre-0.10 run's history
	}
	chmod := func(mode os.FileMode) {
		for _, p := range broken {
			m := mode
			if fi, err := os.Stat(p); err == nil && fi.IsDir() && mode != 0 {
				m = 0o755
			}
			if err := os.Chmod(p, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	src, dst, ledger := "wandb:"+filepath.Join(base, "data"), "parquet:"+filepath.Join(out, "archive"), filepath.Join(out, "ledger.db")
	copyRun := func(name string) (int, string, transfer.Report) {
		report := filepath.Join(out, name+".json")
		cmd := asUnprivileged(t, bin, "copy", src, dst, "--state", ledger, "--report", report, "--accept-gaps")
		cmd.Env = append(os.Environ(), "HOME="+out, "XDG_STATE_HOME="+out)
		b, err := cmd.CombinedOutput()
		var rep transfer.Report
		if raw, rerr := os.ReadFile(report); rerr != nil || json.Unmarshal(raw, &rep) != nil {
			t.Fatalf("%s: no report (%v)\n%s", name, rerr, b)
		}
		return exitCode(err), string(b), rep
	}
	outcome := func(rep transfer.Report, id string) (transfer.Outcome, []string) {
		for _, r := range rep.Runs {
			if strings.HasSuffix(r.Origin, "/"+id) {
				return r.Outcome, r.Damage
			}
		}
		return "", nil
	}

	chmod(0)
	code, text, rep := copyRun("first")
	t.Logf("first copy, as nobody:\n%s", text)
	if code != exitRunsFailed {
		t.Fatalf("first copy: exit %d, want 3\n%s", code, text)
	}
	for _, p := range []string{broken[0], broken[3], noLog} {
		if !slices.ContainsFunc(rep.Problems, func(s string) bool { return strings.Contains(s, p+": ") }) ||
			!strings.Contains(text, p) {
			t.Errorf("first copy: %s is not reported by path (problems %q)\n%s", p, rep.Problems, text)
		}
	}
	if len(rep.Problems) != 3 {
		t.Errorf("problems %q, want 3", rep.Problems)
	}
	for id, what := range map[string]string{"fxa00001": "/files: unreadable folder", "fxe00005": "/files/output.log: unreadable",
		"old0run1": "/wandb-history.jsonl: unreadable"} {
		o, damage := outcome(rep, id)
		if o != transfer.Committed || !slices.ContainsFunc(damage, func(s string) bool { return strings.Contains(s, what) }) {
			t.Errorf("first copy: %s %s with damage %q, want committed with a note containing %q", id, o, damage, what)
		}
	}
	if o, _ := outcome(rep, "fxb00002"); o != transfer.Committed {
		t.Errorf("first copy: fxb00002 %s, want committed", o)
	}
	for _, id := range []string{"fxd00004", "fxf00006", "nolog001"} {
		if o, _ := outcome(rep, id); o != "" {
			t.Errorf("first copy: unreadable %s was %s", id, o)
		}
	}

	chk := asUnprivileged(t, bin, "check", src, dst)
	chk.Env = append(os.Environ(), "HOME="+out)
	b, err := chk.CombinedOutput()
	if exitCode(err) != exitDifferences || !strings.Contains(string(b), broken[0]) || !strings.Contains(string(b), noLog) {
		t.Errorf("check while folders are unreadable: exit %d, want 4 naming them\n%s", exitCode(err), b)
	}

	ls := asUnprivileged(t, bin, "ls", src, "--no-count")
	ls.Env = append(os.Environ(), "HOME="+out)
	b, err = ls.CombinedOutput()
	if exitCode(err) != exitRunsFailed || !strings.Contains(string(b), broken[0]) || !strings.Contains(string(b), noLog) {
		t.Errorf("ls while folders are unreadable: exit %d, want 3 naming them\n%s", exitCode(err), b)
	}

	code, text, rep = copyRun("second")
	if code != exitRunsFailed || len(rep.Problems) != 3 {
		t.Fatalf("second copy, nothing fixed: exit %d, problems %q\n%s", code, rep.Problems, text)
	}
	for id, want := range map[string]transfer.Outcome{"fxa00001": transfer.Committed, "fxe00005": transfer.Committed,
		"old0run1": transfer.Committed, "fxb00002": transfer.Unchanged} {
		if o, _ := outcome(rep, id); o != want {
			t.Errorf("second copy: %s %s, want %s", id, o, want)
		}
	}

	chmod(0o644)
	if err := os.RemoveAll(noLog); err != nil {
		t.Fatal(err)
	}
	code, text, rep = copyRun("third")
	if code != 0 || len(rep.Problems) != 0 || rep.Totals.Damaged != 0 {
		t.Fatalf("copy after fixing the modes: exit %d, problems %q\n%s", code, rep.Problems, text)
	}
	for id, want := range map[string]transfer.Outcome{"fxa00001": transfer.Committed, "fxe00005": transfer.Committed,
		"fxd00004": transfer.Committed, "fxf00006": transfer.Committed, "old0run1": transfer.Committed,
		"fxb00002": transfer.Unchanged} {
		if o, _ := outcome(rep, id); o != want {
			t.Errorf("copy after fixing the modes: %s %s, want %s", id, o, want)
		}
	}
	chk = asUnprivileged(t, bin, "check", src, dst)
	chk.Env = append(os.Environ(), "HOME="+out)
	if b, err := chk.CombinedOutput(); err != nil || !strings.Contains(string(b), " 0 differences") {
		t.Fatalf("check: %v\n%s", err, b)
	}
}

// TestLiveRunCopiedAgainOnceCrashed: the SIGKILLed SDK run, last written
// an hour ago (its records days ago), is copied while both are within
// crashed-after and arrives RUNNING; judged again with the default threshold (as time passing would
// have it, without any file changing), it has crashed, the next copy
// writes it again as FAILED, and check finds the archive equal to the
// source.
func TestLiveRunCopiedAgainOnceCrashed(t *testing.T) {
	runs, _ := filepath.Glob("../../testdata/wandb/fixtures/wandb/offline-run-*-fxc00003")
	if len(runs) != 1 {
		t.Fatal("fixture run fxc00003 not found")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "wandb", filepath.Base(runs[0]))
	copyFolder(t, runs[0], data)
	logs, _ := filepath.Glob(filepath.Join(data, "*.wandb"))
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(logs[0], old, old); err != nil {
		t.Fatal(err)
	}
	src, dst, ledger := "wandb:"+dir, "parquet:"+filepath.Join(dir, "archive"), filepath.Join(dir, "ledger.db")
	status := func() string {
		code, out, _ := runCLI(t, "ls", dst, "--json", "--no-count")
		var runs []struct{ Status string }
		if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil || len(runs) != 1 {
			t.Fatalf("ls: exit %d, %v\n%s", code, err, out)
		}
		return runs[0].Status
	}

	code, out, errOut := runCLI(t, "copy", "--accept-gaps", src+"?crashed-after=1000000h", dst, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 1 run") {
		t.Fatalf("copy of the live run: exit %d\n%s\n%s", code, out, errOut)
	}
	if s := status(); s != "RUNNING" {
		t.Errorf("the live run arrived %s, want RUNNING", s)
	}
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", src, dst, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 1 run") {
		t.Fatalf("copy once crashed: exit %d, want the run written again\n%s\n%s", code, out, errOut)
	}
	if s := status(); s != "FAILED" {
		t.Errorf("the crashed run is %s in the archive, want FAILED", s)
	}
	code, out, _ = runCLI(t, "check", src, dst)
	if code != 0 || !strings.Contains(out, " 0 differences") {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
}
