package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLsAndCheckRefuseAMissingEntity: an entity that does not exist on the
// server (a typo) is refused by ls and check as copy refuses it (exit 1, one
// line naming the entity), never listed as "0 experiments" nor checked as
// "0 match, 0 differences" with exit 0 against an archive holding its runs.
func TestLsAndCheckRefuseAMissingEntity(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef0123k3y9"
	t.Setenv("WANDB_API_KEY", key)
	loc := wandbServer(t, key)
	missing := strings.TrimSuffix(loc, "/fixture-entity") + "/fixture-entty"
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--no-state"); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	want := `entity "fixture-entty" has no project`
	for _, args := range [][]string{
		{"copy", missing, archive, "--no-state"},
		{"ls", missing},
		{"ls", "--runs", missing},
		{"check", missing, archive},
	} {
		code, out, errOut := runCLI(t, args...)
		if code != exitFatal || !strings.Contains(errOut, want) || strings.Contains(out+errOut, key) {
			t.Errorf("%s: exit %d, want %d and an error saying %q\nstdout: %s\nstderr: %s", args[0], code, exitFatal, want, out, errOut)
		}
		if n := strings.Count(strings.TrimSpace(errOut), "\n"); n > 0 {
			t.Errorf("%s: error is %d lines: %q", args[0], n+1, errOut)
		}
	}
}
