package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestMain runs the tests, then removes the binary builtRunferry built and
// stops the shared servers (their watchdogs would stop them too).
func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	testenv.StopShared()
	os.Exit(code)
}

// built is the one `go build` of this package a test binary makes.
var built struct {
	once sync.Once
	dir  string // removed by TestMain
	bin  string
	err  error
	out  []byte
}

// builtRunferry returns the runferry binary built from this package with
// `go build` in the test's environment (CGO_ENABLED as make test sets it),
// built once per test binary: each build links the whole binary again, about
// 6 s of CPU with every package in the build cache, and ten tests run it.
// With dir "" it returns the shared build, which tests only run; otherwise a
// copy in dir (a hard link where it can), for a test that needs the binary
// in a folder of its own (one another user can reach).
func builtRunferry(t *testing.T, dir string) string {
	t.Helper()
	built.once.Do(func() {
		built.dir, built.err = os.MkdirTemp("", "runferry-cli-")
		if built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "runferry")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("build: %v\n%s", built.err, built.out)
	}
	if dir == "" {
		return built.bin
	}
	bin := filepath.Join(dir, "runferry")
	if err := os.Link(built.bin, bin); err == nil {
		return bin
	}
	if err := copyExecutable(built.bin, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// copyExecutable copies the file src to dst with mode 0755.
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
