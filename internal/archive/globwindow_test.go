package archive_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/sources/dataset"
)

// TestGlobSeesOneVersion stops a commit between its moves (the move hook)
// and reads the metrics folder there with DuckDB, as a user's plain glob
// would: a compact that merges a run's three files into one, and a sync
// that rewrites a run (its metrics file replaced by a new one), must show
// every point once at each step. On a local folder on Linux the files of
// a run's folder change in one step (renameat2 RENAME_EXCHANGE); before
// that, the superseded files left first and DuckDB read the run without
// them ("left": 0 of a run's points).
func TestGlobSeesOneVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("runs DuckDB at each step")
	}
	dir := filepath.Join(t.TempDir(), "a")
	want := growArchive(t, dir, 2, 50, 0, 3)
	var steps []string
	check := func(what string, want *dataset.Dataset) {
		archive.SetMoveHook(func(step string) {
			steps = append(steps, step)
			if got := duckCounts(t, dir)[0]; got != points(want) {
				t.Errorf("%s, step %q: DuckDB reads %d points, want %d", what, step, got, points(want))
			}
		})
		t.Cleanup(func() { archive.SetMoveHook(nil) })
	}
	check("compact", want)
	if rep, err := archive.Compact(dir, false); err != nil || rep.Runs != 2 {
		t.Fatalf("compact: %+v, %v", rep, err)
	}
	expectEqual(t, dir, want)
	if runtime.GOOS == "linux" && !slices.Contains(steps, "swapped") {
		t.Errorf("compact: steps %q, want the folder swapped", steps)
	}

	// A sync without a ledger whose runs changed rewrites them: each
	// run's files are replaced by new ones.
	changed := grownData(2, 50, 2)
	for _, r := range changed.Runs {
		for i := range r.Metrics {
			r.Metrics[i].Value++
		}
	}
	steps = nil
	check("rewrite", changed)
	write(t, dir, changed)
	archive.SetMoveHook(nil)
	expectEqual(t, dir, changed)
	if len(steps) == 0 {
		t.Fatal("the rewrite moved no file: not a rewrite")
	}
	if runtime.GOOS == "linux" && !slices.Contains(steps, "swapped") {
		t.Errorf("rewrite: steps %q, want the folder swapped", steps)
	}
	if got := duckCounts(t, dir)[0]; got != points(changed) {
		t.Errorf("after the rewrite DuckDB reads %d points, want %d", got, points(changed))
	}
	if _, err := archive.Check(dir); err != nil {
		t.Fatal(err)
	}
}

const cutChildEnv = "RUNFERRY_ARCHIVE_CUT_CHILD" // archive folder and step, "DIR|STEP"

// TestCutChild is the process TestCompactCutBetweenMoves ends: it compacts
// the archive and exits, as a kill would, at the second time the move
// hook reaches the step (the first run is then compacted, the second cut).
func TestCutChild(t *testing.T) {
	dir, step, ok := strings.Cut(os.Getenv(cutChildEnv), "|")
	if !ok {
		t.Skip("run by TestCompactCutBetweenMoves")
	}
	seen := 0
	archive.SetMoveHook(func(s string) {
		if s == step {
			if seen++; seen == 2 {
				os.Exit(3)
			}
		}
	})
	if _, err := archive.Compact(dir, false); err != nil {
		t.Fatal(err)
	}
}

// TestCompactCutBetweenMoves ends a compacting process at each step of a
// run's moves (before the folder swap, after it, and, where no swap is
// possible, between the old files leaving and the merged one arriving):
// DuckDB then reads every point once, check passes, the archive reads
// back whole, and a compact again leaves one file a run. Before the swap
// the cut at "left" left DuckDB without the cut run's points until the
// next writer (TestCompactKilled's rare "176000 points, want 192000").
func TestCompactCutBetweenMoves(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	clean := filepath.Join(t.TempDir(), "grown")
	want := growArchive(t, clean, 3, 50, 0, 3)
	steps := []string{"prepared", "swapped"}
	if runtime.GOOS != "linux" {
		steps = []string{"left"}
	}
	var dirs []string
	for _, step := range steps {
		dir := filepath.Join(t.TempDir(), step)
		if err := os.CopyFS(dir, os.DirFS(clean)); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestCutChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), cutChildEnv+"="+dir+"|"+step)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("%s: the child did not stop at the step: %v\n%s", step, err, out)
		}
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("%s: check: %v", step, err)
		}
		expectEqual(t, dir, want)
		dirs = append(dirs, dir)
	}
	for i, got := range duckCounts(t, dirs...) {
		if got != points(want) {
			t.Errorf("cut at %q: DuckDB reads %d points, want %d", steps[i], got, points(want))
		}
	}
	for i, dir := range dirs {
		if rep, err := archive.Compact(dir, false); err != nil || rep.Runs == 0 {
			t.Fatalf("cut at %q: compact again: %+v, %v", steps[i], rep, err)
		}
		for o, n := range metricsFiles(t, dir) {
			if n != 1 {
				t.Errorf("cut at %q: run %s holds %d metrics files after compacting again", steps[i], o, n)
			}
		}
		expectEqual(t, dir, want)
		if _, err := archive.Check(dir); err != nil {
			t.Fatalf("cut at %q: after compacting again: %v", steps[i], err)
		}
		if got := duckCounts(t, dir)[0]; got != points(want) {
			t.Errorf("cut at %q: after compacting again DuckDB reads %d points, want %d", steps[i], got, points(want))
		}
	}
}
