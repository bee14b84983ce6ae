package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

func TestDescribeVersion(t *testing.T) {
	stamp := []debug.BuildSetting{
		{Key: "CGO_ENABLED", Value: "0"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
		{Key: "vcs.time", Value: "2026-11-30T14:00:00Z"},
		{Key: "vcs.modified", Value: "false"},
	}
	modified := append(append([]debug.BuildSetting{}, stamp[:4]...), debug.BuildSetting{Key: "vcs.modified", Value: "true"})
	for _, tc := range []struct {
		name, ld string
		bi       *debug.BuildInfo
		want     string
	}{
		{"no build info", "", nil, "devel (no build information)"},
		{"ldflags, no build info", "v1.2.3", nil, "v1.2.3"},
		{"go install module@version", "", &debug.BuildInfo{Main: debug.Module{Version: "v1.4.0"}}, "v1.4.0"},
		{"go build in a checkout", "", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261130140000-0123456789ab"}, Settings: stamp},
			"v0.0.0-20261130140000-0123456789ab (commit 0123456789abcdef0123456789abcdef01234567, 2026-11-30T14:00:00Z)"},
		{"uncommitted changes", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: modified},
			"devel (commit 0123456789abcdef0123456789abcdef01234567, 2026-11-30T14:00:00Z, modified)"},
		{"ldflags win over the module version", "v2.0.0", &debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-x"}, Settings: stamp},
			"v2.0.0 (commit 0123456789abcdef0123456789abcdef01234567, 2026-11-30T14:00:00Z)"},
		{"devel without stamp", "", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "devel"},
	} {
		if got := describeVersion(tc.ld, tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestBuiltBinaryReportsCommit builds runferry with `go build` in a fresh clone of this
// checkout's HEAD (go stamps VCS information only in a clone, not in a git worktree) and
// with `make build` in this checkout: both binaries must be static (CGO_ENABLED=0: no ELF
// interpreter) and print the commit (git rev-parse HEAD) in --version and `version`,
// "modified" exactly when git status shows changes.
func TestBuiltBinaryReportsCommit(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	if testing.Short() {
		t.Skip("builds runferry twice")
	}
	root := testenv.RepoRoot(t)
	git := func(dir string, args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("git %v in %s: %v: no VCS information to compare", args, dir, err)
		}
		return strings.TrimSpace(string(out))
	}
	head := git(root, "rev-parse", "HEAD")
	dirty := git(root, "status", "--porcelain") != ""
	dir := t.TempDir()

	clone := filepath.Join(dir, "clone")
	git(root, "clone", "-q", "--shared", "--no-checkout", root, clone)
	git(clone, "checkout", "-q", "--detach", head)
	goBin := filepath.Join(dir, "go-build", "runferry")
	// -trimpath keeps the clone's folder out of every compile's cache key, so this build
	// reuses the compiles of a test run with -trimpath (make test sets it in GOFLAGS)
	// instead of compiling the whole module again (about 1-2 min of CPU).
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=true", "-o", goBin, "./cmd/runferry")
	build.Dir = clone
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	type binary struct {
		path     string
		modified bool
	}
	bins := map[string]binary{"go build in a clone": {goBin, false}}
	if _, err := exec.LookPath("make"); err == nil {
		makeDir := filepath.Join(dir, "make-build")
		mk := exec.Command("make", "-s", "build", "BIN="+makeDir)
		mk.Dir = root
		mk.Env = append(os.Environ(), "CGO_ENABLED=1") // the Makefile must override it
		if out, err := mk.CombinedOutput(); err != nil {
			t.Fatalf("make build: %v\n%s", err, out)
		}
		bins["make build"] = binary{filepath.Join(makeDir, "runferry"), dirty}
	} else if testenv.RequireReal() {
		t.Fatalf("make is not installed")
	}
	for how, bin := range bins {
		f, err := elf.Open(bin.path)
		if err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		if s := f.Section(".interp"); s != nil {
			t.Errorf("%s: dynamically linked (has an ELF interpreter); want CGO_ENABLED=0", how)
		}
		f.Close()
		for _, args := range [][]string{{"--version"}, {"version"}} {
			out, err := exec.Command(bin.path, args...).CombinedOutput()
			line := string(out)
			if err != nil || !strings.HasPrefix(line, "runferry ") || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
				t.Fatalf("%s: runferry %v: %v %q", how, args, err, out)
			}
			if !strings.Contains(line, " (commit "+head+", ") {
				t.Errorf("%s: runferry %v = %q, want commit %s", how, args, line, head)
			}
			if got := strings.HasSuffix(line, ", modified)\n"); got != bin.modified {
				t.Errorf("%s: runferry %v = %q: modified %v, want %v", how, args, line, got, bin.modified)
			}
		}
	}
}
