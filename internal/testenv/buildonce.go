package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// built holds the binaries BuildOnce made, by package.
var built struct {
	sync.Mutex
	bins map[string]*builtBinary
}

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// BuildOnce builds the Go package pkg (as `go build` names it, relative to
// the test's folder: "." for the package under test) into a binary once per
// test binary, and returns its path; later calls, from any test, return
// the same binary. Each `go build -o` links anew even with its build cache
// warm (about 6 s of CPU for runferry), so tests that each need the real
// binary share one. The binary must not be changed by a test. Its folder
// is readable and searchable by every user (tests run it as an
// unprivileged one, see OpenToAll) and is removed when the test binary
// exits, however it exits (a watchdog). A failed build fails every caller
// with the same output.
func BuildOnce(t testing.TB, pkg string) string {
	t.Helper()
	built.Lock()
	if built.bins == nil {
		built.bins = map[string]*builtBinary{}
	}
	b := built.bins[pkg]
	if b == nil {
		b = &builtBinary{}
		built.bins[pkg] = b
	}
	built.Unlock()
	b.once.Do(func() { b.path, b.err = build(pkg) })
	if b.err != nil {
		t.Fatalf("testenv: %v", b.err)
	}
	return b.path
}

func build(pkg string) (string, error) {
	abs, err := filepath.Abs(pkg)
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "runferry-bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	startWatchdog(fmt.Sprintf("rm -rf '%s'", dir))
	bin := filepath.Join(dir, filepath.Base(abs))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, strings.TrimSpace(string(out)))
	}
	// Whatever the umask: tests run it as another user.
	if err := os.Chmod(bin, 0o755); err != nil {
		return "", err
	}
	return bin, nil
}
