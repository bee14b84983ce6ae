package testenv_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestPyScripts: scripts run one after another in one Python process, each
// as `python SCRIPT ARGS...` would run it: its own sys.argv and a fresh
// __main__ (a global of the script before is not seen), its standard output
// returned whole, the process the same for both.
func TestPyScripts(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "echo.py")
	err := os.WriteFile(script, []byte(`import os, sys
print("seen" if "mark" in globals() else "fresh", __name__, sys.argv[0] == __file__, sys.argv[1:])
mark = 1
print(os.getpid())
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	py := testenv.StartPyScripts(t)
	first := string(py.Run(t, script, "a", "b c"))
	second := string(py.Run(t, script, "d"))
	pid, ok := strings.CutPrefix(first, "fresh __main__ True ['a', 'b c']\n")
	if !ok || pid == "" {
		t.Fatalf("first run printed %q", first)
	}
	if want := "fresh __main__ True ['d']\n" + pid; second != want {
		t.Errorf("second run printed %q, want %q (the same process)", second, want)
	}
}
