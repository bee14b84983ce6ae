package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// goTool finds the binary name of a test server that is a Go module
// (module is PATH@VERSION): $envVar, PATH, the Go bin folder (.ci/run
// installs it there), or a build into the user cache folder from the Go
// module proxy (a few minutes, once). If none works, the test is skipped
// (failed under CI) naming what, the server.
func goTool(t testing.TB, what, name, module, envVar string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" && isExecutable(p) {
		return p
	}
	var extra []string
	if gp, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		extra = append(extra, filepath.Join(strings.TrimSpace(string(gp)), "bin"))
	}
	_, version, _ := strings.Cut(module, "@")
	cache, _ := os.UserCacheDir()
	cacheBin := filepath.Join(cache, "runferry-test", name+"-"+version)
	extra = append(extra, cacheBin)
	if p, ok := lookPath(name, extra...); ok {
		return p
	}
	cmd := exec.Command("go", "install", module)
	cmd.Env = append(os.Environ(), "GOBIN="+cacheBin, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		Unavailable(t, what, fmt.Sprintf("go install %s failed: %v: %s", module, err, out))
	}
	return filepath.Join(cacheBin, name)
}
