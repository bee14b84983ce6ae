// Package testenv gives tests the real components runferry is tested against: the project's
// Python venv (mlflow, wandb, pyarrow, duckdb), a real MLflow tracking server and a throwaway
// PostgreSQL cluster. It is used by tests only, never by the product.
//
// Missing components skip the test on a developer machine and fail it under CI (env CI set)
// or when RUNFERRY_REQUIRE_REAL=1, so a CI run can never pass by skipping everything.
package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireReal reports whether missing real components must fail tests instead of skipping
// them: true when the env var CI is non-empty or RUNFERRY_REQUIRE_REAL=1.
func RequireReal() bool {
	return os.Getenv("CI") != "" || os.Getenv("RUNFERRY_REQUIRE_REAL") == "1"
}

// Unavailable skips the test, or fails it when RequireReal, because a real component is
// missing. hint says how to get it.
func Unavailable(t testing.TB, what, hint string) {
	t.Helper()
	if RequireReal() {
		t.Fatalf("testenv: %s is not available (required because CI or RUNFERRY_REQUIRE_REAL=1 is set): %s", what, hint)
	}
	t.Skipf("testenv: %s is not available: %s", what, hint)
}

// RepoRoot returns the directory holding go.mod, found by walking up from the working
// directory (go test runs tests in their package directory) and then from this source file.
func RepoRoot(t testing.TB) string {
	t.Helper()
	if dir, ok := findRepoRoot(); ok {
		return dir
	}
	t.Fatalf("testenv: no go.mod above the working directory")
	return ""
}

func findRepoRoot() (string, bool) {
	starts := []string{}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				return dir, true
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", false
}

// Venv returns the project's Python venv: $RUNFERRY_VENV if set, else REPO/.venv. A missing
// venv skips the test (fails it under CI or RUNFERRY_REQUIRE_REAL=1).
func Venv(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("RUNFERRY_VENV")
	if dir == "" {
		root, ok := findRepoRoot()
		if !ok {
			Unavailable(t, "the Python venv", "no go.mod found above the working directory; set RUNFERRY_VENV")
			return ""
		}
		dir = filepath.Join(root, ".venv")
	}
	if !isExecutable(filepath.Join(dir, "bin", "python")) {
		Unavailable(t, "the Python venv "+dir, "run `make venv` at the repository root (or set RUNFERRY_VENV)")
	}
	return dir
}

// Python returns the venv's python interpreter.
func Python(t testing.TB) string {
	t.Helper()
	return filepath.Join(Venv(t), "bin", "python")
}

// VenvBin returns the path of a console script installed in the venv (e.g. "mlflow"),
// skipping or failing like Venv when it is missing.
func VenvBin(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Venv(t), "bin", name)
	if !isExecutable(p) {
		Unavailable(t, p, "run `make venv` (requirements-test.txt changed?)")
	}
	return p
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort()
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	return port
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// lookPath finds a program on PATH or in extra directories.
func lookPath(name string, extra ...string) (string, bool) {
	if p, err := exec.LookPath(name); err == nil {
		return p, true
	}
	for _, dir := range extra {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, true
		}
	}
	return "", false
}

// WandbArtifactRun runs testdata/wandb/generate_artifacts.py with the venv's
// python (the real wandb SDK, offline) into a temporary folder and returns
// that folder: wandb/ holds the run, cache/artifacts the SDK's artifact cache
// and expected.json what the run logged (see the script). The run is made
// once per test binary (the SDK's start costs several seconds of CPU) and
// every caller, parallel tests included, gets the same folder: callers must
// not change it. It is removed at the binary's end by testenv.Main (or
// RemoveMadeFixtures); a binary without either leaves it, and the next call
// in any binary removes what binaries no longer running left.
func WandbArtifactRun(t testing.TB) string {
	t.Helper()
	py := Python(t)
	script := filepath.Join(RepoRoot(t), "testdata", "wandb", "generate_artifacts.py")
	dir, err := wandbArtifactRun.make("runferry-wandb-artifacts", func(out string) error {
		cmd := exec.Command(py, script, out)
		cmd.Env = append(os.Environ(), "HOME="+out)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v\n%s", script, err, b)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

var wandbArtifactRun madeOnce

// RemoveMadeFixtures removes the folders WandbArtifactRun and TensorBoardLogs
// made in this binary. testenv.Main calls it after the tests; a TestMain of
// its own calls it after m.Run. Later calls of either in the binary fail.
func RemoveMadeFixtures() {
	tensorboardLogs.remove()
	wandbArtifactRun.remove()
}
