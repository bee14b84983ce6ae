package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSyncKeepsLogCacheBesideLedger: a sync with a ledger keeps the W&B
// source's log cache beside it (one file named after the ledger, each
// shard's after its own ledger), and the next sync, taking the logs from
// it, still finds nothing changed; --no-state and --dry-run keep none (the
// default ledger's folder included).
func TestSyncKeepsLogCacheBesideLedger(t *testing.T) {
	root := filepath.Join(t.TempDir(), "fx")
	if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	// Logs changed within 5 s of a job's start are not kept (docs/SYNC.md).
	time.Sleep(5500 * time.Millisecond)
	t.Setenv("XDG_STATE_HOME", filepath.Join(t.TempDir(), "state"))
	loc := "wandb:" + filepath.Join(root, "wandb")
	dir := t.TempDir()
	caches := func() []string {
		t.Helper()
		var found []string
		for _, d := range []string{dir, os.Getenv("XDG_STATE_HOME")} {
			filepath.Walk(d, func(path string, fi os.FileInfo, err error) error {
				if err == nil && strings.Contains(filepath.Base(path), ".wandb-") && strings.HasSuffix(path, ".cache") {
					found = append(found, strings.TrimPrefix(path, d+"/"))
				}
				return nil
			})
		}
		return found
	}
	sync := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"sync", "--accept-gaps", loc}, args...)...)
		if code != 0 || !strings.Contains(out+errOut, want) {
			t.Fatalf("sync %v: exit %d, want %q\n%s%s", args, code, want, out, errOut)
		}
	}
	sync("", "parquet:"+filepath.Join(dir, "nostate"), "--no-state")
	sync("", "parquet:"+filepath.Join(dir, "dry"), "--dry-run")
	if c := caches(); len(c) != 0 {
		t.Fatalf("--no-state and --dry-run kept %v", c)
	}
	arch, ledger := "parquet:"+filepath.Join(dir, "archive"), filepath.Join(dir, "ledger.db")
	sync("", arch, "--state", ledger)
	c := caches()
	if len(c) != 1 || !strings.HasPrefix(c[0], "ledger.db.wandb-") {
		t.Fatalf("caches %v: want one beside ledger.db", c)
	}
	before, err := os.ReadFile(filepath.Join(dir, c[0]))
	if err != nil || len(before) == 0 {
		t.Fatalf("cache: %v, %d bytes", err, len(before))
	}
	sync("copied 0 runs", arch, "--state", ledger)
	if after, _ := os.ReadFile(filepath.Join(dir, c[0])); string(after) != string(before) {
		t.Error("a no-change sync rewrote the cache")
	}
	sync("", "parquet:"+filepath.Join(dir, "sharded"), "--state", ledger, "--shard", "1/2")
	if c := caches(); len(c) != 2 || !strings.HasPrefix(c[1], "ledger.shard-1-of-2.db.wandb-") && !strings.HasPrefix(c[0], "ledger.shard-1-of-2.db.wandb-") {
		t.Errorf("caches %v: want the shard's beside its ledger", c)
	}
}
