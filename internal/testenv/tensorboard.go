package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

var tensorboardLogs madeOnce

// TensorBoardLogs returns a folder holding logs/, TensorBoard log folders
// written by real writers (testdata/tensorboard/generate.py: tensorboardX
// and the tensorboard package), and reference.json, what the tensorboard
// package's EventAccumulator reads from them (testdata/tensorboard/
// reference.py). They are made once per test binary and removed at its end
// by testenv.Main; a binary without it leaves them, and the next call in any
// binary removes what binaries no longer running left. Callers must not
// change them.
func TensorBoardLogs(t testing.TB) string {
	t.Helper()
	py := Python(t)
	root := RepoRoot(t)
	dir, err := tensorboardLogs.make("runferry-tensorboard", func(dir string) error {
		logs := filepath.Join(dir, "logs")
		script := filepath.Join(root, "testdata", "tensorboard")
		if b, err := exec.Command(py, filepath.Join(script, "generate.py"), logs).CombinedOutput(); err != nil {
			return fmt.Errorf("generate.py: %v\n%s", err, b)
		}
		ref, err := exec.Command(py, filepath.Join(script, "reference.py"), logs).Output()
		if err != nil {
			return fmt.Errorf("reference.py: %v", err)
		}
		return os.WriteFile(filepath.Join(dir, "reference.json"), ref, 0o644)
	})
	if err != nil {
		t.Fatalf("testenv: TensorBoard logs: %v", err)
	}
	return dir
}

// madeOnce is a fixture folder made once per test binary, in the temporary
// folder as PREFIX-PID-*, and shared by every caller (parallel tests
// included), who must not change it.
type madeOnce struct {
	once sync.Once
	dir  string
	err  error
}

// make returns the folder, filled by fill on the first call (after removing
// what binaries no longer running left under prefix); every later call gets
// the same folder or the same error.
func (m *madeOnce) make(prefix string, fill func(dir string) error) (string, error) {
	m.once.Do(func() {
		removeStale(prefix)
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s-%d-", prefix, os.Getpid()))
		if err != nil {
			m.err = err
			return
		}
		m.dir = dir
		m.err = fill(dir)
	})
	return m.dir, m.err
}

// remove removes the folder, if it was made.
func (m *madeOnce) remove() {
	if m.dir != "" {
		os.RemoveAll(m.dir)
	}
}

// removeStale removes the folders NAME-PID-* in the temporary folder that
// test binaries no longer running made (TensorBoardLogs, WandbArtifactRun).
func removeStale(name string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), name+"-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(strings.TrimPrefix(filepath.Base(d), name+"-"), "%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}
