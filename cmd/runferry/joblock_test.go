//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSecondRunOfAJobStops holds the lock of a sync job, as a run of it
// still going does when cron starts the next: a second sync of the same
// SRC, DST and options stops at once with exit 1, naming the lock file,
// and writes nothing, while a sync into another DST goes on. Once the lock
// is released (the first run ended) the job runs again.
func TestSecondRunOfAJobStops(t *testing.T) {
	dir := t.TempDir()
	src := "wandb:../../testdata/wandb/fixtures/wandb?crashed-after=1ns"
	ledger := filepath.Join(dir, "ledger.db")
	sync := func(dst string) (int, string) {
		t.Helper()
		code, out, errOut := runCLI(t, "sync", "--accept-gaps", "-q", src, "parquet:"+filepath.Join(dir, dst), "--state", ledger)
		return code, out + errOut
	}
	if code, out := sync("a"); code != 0 {
		t.Fatalf("first sync: exit %d\n%s", code, out)
	}
	locks, _ := filepath.Glob(ledger + ".job-*.lock")
	if len(locks) != 1 {
		t.Fatalf("lock files beside the ledger: %v, want one for the job", locks)
	}
	f, err := os.Open(locks[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	code, out := sync("a")
	if code != 1 || !strings.Contains(out, "another copy or sync of the same SRC, DST and options is running") || !strings.Contains(out, locks[0]) {
		t.Errorf("sync while the job runs: exit %d, want 1 naming %s\n%s", code, locks[0], out)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("sync while the job runs wrote the archive (%v)", err)
	}
	if code, out := sync("b"); code != 0 {
		t.Errorf("sync of another job while the first runs: exit %d\n%s", code, out)
	}
	f.Close()
	if code, out := sync("a"); code != 0 {
		t.Errorf("sync once the first run ended: exit %d\n%s", code, out)
	}
}

// TestJobLockFreedWhileItsFileIsShared: the lock is free once release
// returns, even while another descriptor of its open file lives on, as a
// child process forked by another goroutine between its fork and its exec
// holds one (tests run the command in-process beside tests starting
// processes, and an embedding program may start its own). Before, release
// only closed the file, so the next sync of the job failed with "another
// copy or sync ... is running" until that descriptor closed
// (TestTenSyncsChangeNothing/sqlite, run in parallel, tt14).
func TestJobLockFreedWhileItsFileIsShared(t *testing.T) {
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	release, err := lockJob(ledger, "k")
	if err != nil {
		t.Fatal(err)
	}
	// The descriptor of the lock's open file, duplicated as a fork does.
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	dup := -1
	for _, e := range fds {
		if target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); target == ledger+".job-k.lock" {
			fd, _ := strconv.Atoi(e.Name())
			if dup, err = syscall.Dup(fd); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if dup < 0 {
		t.Fatal("the lock file is not open")
	}
	defer syscall.Close(dup)
	release()
	again, err := lockJob(ledger, "k")
	if err != nil {
		t.Fatalf("lock after release, with a copy of its descriptor open: %v", err)
	}
	again()
}
