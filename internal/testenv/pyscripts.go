package testenv

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

//go:embed pyscripts.py
var pyScriptsRunner []byte

// PyScripts is one Python process of the venv that runs scripts one after
// another, each as `python SCRIPT ARGS...` would run it (as __main__, with
// that sys.argv, its standard output captured), so that a test running
// several scripts that import MLflow (its client reading a server after each
// of the test's copies) imports it once instead of once a script (about 6 s
// of CPU each). Each script builds its own clients from its arguments; what
// one leaves in the process's modules (MLflow's tracking URI, say) is
// replaced by the next one's own setup, as the scripts of testdata do.
type PyScripts struct {
	in  io.WriteCloser
	out *bufio.Reader
}

// StartPyScripts starts the process with the venv's python (Python(t)); it
// ends with the test (its standard input closed; the test fails if it then
// exits with an error), or with the test binary (it reads its standard input
// to the end).
func StartPyScripts(t testing.TB) *PyScripts {
	t.Helper()
	runner := filepath.Join(t.TempDir(), "pyscripts.py")
	if err := os.WriteFile(runner, pyScriptsRunner, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python(t), runner)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("pyscripts.py: %v", err)
		}
	})
	return &PyScripts{in: in, out: bufio.NewReader(out)}
}

// Run runs the Python script at path with args in the process and returns
// what it printed on its standard output; the test fails (t.Fatal) if the
// script raised an exception or exited with a non-zero status.
func (p *PyScripts) Run(t testing.TB, path string, args ...string) []byte {
	t.Helper()
	req, err := json.Marshal(append([]string{path}, args...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.in.Write(append(req, '\n')); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		t.Fatalf("%s: no answer from pyscripts.py: %v", path, err)
	}
	var ans struct {
		Out   string `json:"out"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(line, &ans); err != nil {
		t.Fatalf("%s: pyscripts.py answered %q: %v", path, line, err)
	}
	if ans.Error != "" {
		t.Fatalf("%s: %s\n%s", filepath.Base(path), ans.Error, ans.Out)
	}
	return []byte(ans.Out)
}
