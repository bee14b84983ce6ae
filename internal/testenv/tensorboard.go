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

var tensorboardLogs struct {
	once sync.Once
	dir  string
	err  error
}

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
	tensorboardLogs.once.Do(func() {
		removeStale("runferry-tensorboard")
		dir, err := os.MkdirTemp("", fmt.Sprintf("runferry-tensorboard-%d-", os.Getpid()))
		if err != nil {
			tensorboardLogs.err = err
			return
		}
		tensorboardLogs.dir = dir
		logs := filepath.Join(dir, "logs")
		script := filepath.Join(root, "testdata", "tensorboard")
		if b, err := exec.Command(py, filepath.Join(script, "generate.py"), logs).CombinedOutput(); err != nil {
			tensorboardLogs.err = fmt.Errorf("generate.py: %v\n%s", err, b)
			return
		}
		ref, err := exec.Command(py, filepath.Join(script, "reference.py"), logs).Output()
		if err != nil {
			tensorboardLogs.err = fmt.Errorf("reference.py: %v", err)
			return
		}
		tensorboardLogs.err = os.WriteFile(filepath.Join(dir, "reference.json"), ref, 0o644)
	})
	if tensorboardLogs.err != nil {
		t.Fatalf("testenv: TensorBoard logs: %v", tensorboardLogs.err)
	}
	return tensorboardLogs.dir
}

// removeTensorBoardLogs removes what TensorBoardLogs made.
func removeTensorBoardLogs() {
	if tensorboardLogs.dir != "" {
		os.RemoveAll(tensorboardLogs.dir)
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
