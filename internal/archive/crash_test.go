package archive_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

const crashChildEnv = "RUNFERRY_ARCHIVE_CRASH_CHILD"

// crashSteps is how many steps of three keys each run of crashData holds.
// What the crash tests guard is that a writer killed at any moment leaves
// every run old or new; the number of points only sets how long a write
// takes (the window the kills fall in) and how long each kill's checks
// take (a read, a resumed write and a read again of the whole archive).
// 1,500 steps (90,000 points a version) keep the write longer than the
// test binary's start, so the kills still fall in the staging, commit and
// publication phases, and cost a quarter of the 6,000 steps before.
const crashSteps = 1_500

// crashData returns the dataset of the crash test: version 0 has runs
// 0..13, version 1 changes every one of them and adds runs 14..19.
func crashData(version int) *dataset.Dataset {
	base := dataset.Canonical()
	d := &dataset.Dataset{Experiments: base.Experiments[:1]}
	n := 14 + 6*version
	for i := range n {
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: fmt.Sprintf("crash-%02d", i)},
			Experiment: base.Experiments[0].Origin, Name: fmt.Sprintf("v%d run %d", version, i), Status: schema.StatusFinished,
			Start: base.Runs[0].Run.Start, End: base.Runs[0].Run.End.Add(time.Duration(version) * time.Second),
			Params: []schema.Param{{Key: "version", Value: fmt.Sprint(version)}}}}
		for s := range crashSteps {
			for _, k := range []string{"b", "a", "c"} {
				r.Metrics = append(r.Metrics, schema.Metric{Key: k, Step: int64(s), Time: int64(1e12 + s), Value: float64(version*1e6 + i*1e3 + s)})
			}
		}
		r.Logs = []schema.LogLine{{Time: 1e12, Stream: schema.Stdout, Line: fmt.Sprintf("v%d", version)}}
		r.Files = []dataset.File{{Path: "model.bin", Content: bytes.Repeat([]byte{byte(version), byte(i)}, 50_000)}}
		d.Runs = append(d.Runs, r)
	}
	return d
}

// TestCrashChild is the process the crash test kills: it writes version 1
// into the archive named by the environment. It does nothing otherwise.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("run by TestCrashSafety")
	}
	d := crashData(1)
	fmt.Println(childWriting)
	write(t, dir, d)
}

// childWriting is the line a crash test's child prints on its standard
// output just before it opens the archive.
const childWriting = "runferry-crash-child: writing"

// startChild starts cmd, a crash test's child, and returns once the child
// printed childWriting: the moment its write begins. The kill moments
// count from there, not from the process's start: the test binary's exec
// and start-up touch no archive and took a large, load-dependent share of
// the time (under load most kills fell in it). The returned function
// waits for the child to end and returns what it printed and its error.
func startChild(t *testing.T, cmd *exec.Cmd) (wait func() (string, error)) {
	t.Helper()
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(out)
	var printed strings.Builder
	for {
		line, err := r.ReadString('\n')
		printed.WriteString(line)
		if strings.TrimSpace(line) == childWriting {
			break
		}
		if err != nil {
			cmd.Wait()
			t.Fatalf("the child ended before writing: %v\n%s%s", err, printed.String(), errOut.String())
		}
	}
	return func() (string, error) {
		rest, _ := io.ReadAll(r)
		printed.Write(rest)
		err := cmd.Wait()
		return printed.String() + errOut.String(), err
	}
}

// crashKills is how many times TestCrashSafety kills a writer. The kills
// fall one in each tenth of an uninterrupted write's time (killMoments),
// so every stretch of the write is hit on every run; 20 kills drawn over
// the whole write (before session 14) hit the same stretches twice and
// left some tenth unhit in about one run in eight (0.9^20).
const crashKills = 10

// killMoments returns n moments to kill a writer at, for a write that
// takes full uninterrupted: one drawn at random (rng) from each of n equal
// stretches of [0, full), in order. Drawn over the whole of [0, full)
// instead, n kills leave a stretch of a tenth of the write unhit with
// probability 0.9^n and put several in the same stretch; stratified, no
// stretch of 2/n of the write or more is ever missed, which is what lets
// a test kill fewer times and still reach each phase of the write (see
// killPhase).
func killMoments(rng *rand.Rand, n int, full time.Duration) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		lo, hi := int64(full)*int64(i)/int64(n), int64(full)*int64(i+1)/int64(n)
		out[i] = time.Duration(lo + rng.Int64N(max(hi-lo, 1)))
	}
	return out
}

// killPhase names the phase of TestCrashSafety's write a kill fell in,
// from the archive's Check report after the kill (Runs counts the runs
// readers see, pending journal records applied): "nothing committed"
// (snapshot 1, no pending commit), "old runs committed" (journal records
// of rewritten old runs only, not yet in a snapshot), "new runs committed"
// (journal records of new runs too), "published" (snapshot 2, nothing
// pending).
func killPhase(rep archive.Report) string {
	switch {
	case rep.Pending == 0 && rep.Snapshot == 1 && rep.Runs == 14:
		return "nothing committed"
	case rep.Pending > 0 && rep.Runs == 14:
		return "old runs committed"
	case rep.Pending > 0 && rep.Runs > 14:
		return "new runs committed"
	case rep.Pending == 0 && rep.Snapshot == 2 && rep.Runs == 20:
		return "published"
	}
	return fmt.Sprintf("other (snapshot %d, %d runs, %d pending)", rep.Snapshot, rep.Runs, rep.Pending)
}

// TestCrashSafety kills a process writing version 1 over version 0 at
// crashKills moments, one in each tenth of the write (killMoments). After
// each kill, Check passes, every run reads back wholly as version 0 or
// wholly as version 1 (or is absent, if new), and no table folder holds
// two versions of a run; a new write then ends identical to an
// uninterrupted one. The phases the kills fell in are logged (killPhase).
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	clean := filepath.Join(t.TempDir(), "v0")
	write(t, clean, crashData(0))
	crashSafety(t, crashKills, func(name string) string {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
			t.Fatal(err)
		}
		return dir
	}, 0)
}

// crashSafety is TestCrashSafety on archives that fresh returns, each
// holding version 0: kills writers of version 1 at the given number of
// random moments (killMoments), and waits for settle (a killed writer's locks to expire,
// in object storage) before resuming.
func crashSafety(t *testing.T, kills int, fresh func(name string) string, settle time.Duration) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	old, want := crashData(0), crashData(1)
	child := func(dir string) *exec.Cmd {
		cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		return cmd
	}
	// Calibrate: how long does an uninterrupted write take?
	dir := fresh("calibrate")
	wait := startChild(t, child(dir))
	start := time.Now()
	if out, err := wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	full := time.Since(start)
	expectEqual(t, dir, want)
	phases := map[string]int{}
	for i, delay := range killMoments(testenv.Rand(t), kills, full) {
		dir := fresh(fmt.Sprintf("kill-%02d", i))
		cmd := child(dir)
		wait := startChild(t, cmd)
		time.Sleep(delay)
		cmd.Process.Signal(syscall.SIGKILL)
		wait()
		if rep, err := archive.Check(dir); err != nil {
			t.Fatalf("kill %d after %v: check: %v", i, delay, err)
		} else {
			t.Logf("kill %d after %v of %v: snapshot %d, %d runs, %d pending commits: %s", i, delay, full, rep.Snapshot, rep.Runs, rep.Pending, killPhase(rep))
			phases[killPhase(rep)]++
		}
		oneVersionPerRun(t, dir)
		got, err := read(t, dir)
		if err != nil {
			t.Fatalf("kill %d: reading: %v", i, err)
		}
		for _, w := range want.Runs {
			g := got.Run(w.Run.Origin)
			o := old.Run(w.Run.Origin)
			switch {
			case g == nil && o == nil:
			case g == nil:
				t.Fatalf("kill %d: run %s lost", i, w.Run.Origin)
			case sameRun(g, w):
			case o != nil && sameRun(g, o):
			default:
				t.Fatalf("kill %d: run %s is neither the old nor the new version", i, w.Run.Origin)
			}
		}
		time.Sleep(settle)
		write(t, dir, want) // resume
		expectEqual(t, dir, want)
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("kill %d: after resuming: %v", i, err)
		}
		oneVersionPerRun(t, dir)
	}
	t.Logf("phases the %d kills fell in: %v", kills, phases)
}

func sameRun(got, want *dataset.RunData) bool {
	a := &dataset.Dataset{Experiments: nil, Runs: []*dataset.RunData{want}}
	b := &dataset.Dataset{Runs: []*dataset.RunData{got}}
	return dataset.Diff(a, b, dataset.DiffOptions{}) == nil
}

// oneVersionPerRun fails if a table folder holds more than one file for a
// run or experiment: a plain glob over it would then see rows twice.
func oneVersionPerRun(t *testing.T, dir string) {
	t.Helper()
	seen := map[string]string{}
	for _, f := range dataFiles(t, dir) {
		parts := strings.Split(f, "/")
		if parts[0] == "blobs" || strings.HasSuffix(f, ".tmp") {
			continue
		}
		key := parts[0] + "/" + parts[1]
		if prev, dup := seen[key]; dup {
			t.Fatalf("%s and %s are both current: a glob would see two versions", prev, f)
		}
		seen[key] = f
	}
}
