package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestDamagedTensorBoardRunsUnchanged: a nightly sync of TensorBoard logs
// holding two damaged event files (a corrupted record, a truncated tail;
// testenv.TensorBoardLogs) into an archive, run again with nothing changed,
// copies nothing and writes no snapshot, but names both damaged files
// again and exits 3, as a damaged W&B run found unchanged does. (Before:
// every sync "copied 2 runs (0 points ...)" and wrote a snapshot of them,
// night after night, so that `archive prune --keep N` kept N snapshots of
// nothing.) A damaged file that grows is a change: the run is read again.
func TestDamagedTensorBoardRunsUnchanged(t *testing.T) {
	logs := filepath.Join(t.TempDir(), "logs") // a copy: the last step changes a file
	if err := os.CopyFS(logs, os.DirFS(filepath.Join(testenv.TensorBoardLogs(t), "logs"))); err != nil {
		t.Fatal(err)
	}
	src := "tensorboard:" + logs
	archive := filepath.Join(t.TempDir(), "archive")
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	damage := []string{
		"damaged source " + src + "#damaged/crc: damaged/crc/events.out.tfevents.",
		"record data checksum mismatch (record skipped)",
		"damaged source " + src + "#damaged/truncated: damaged/truncated/events.out.tfevents.",
		"truncated record",
	}
	code, out, errOut := runCLI(t, "sync", src, "parquet:"+archive, "--state", ledger)
	if all := out + errOut; code != 3 || !strings.Contains(all, "copied 7 runs (212 points, 3 files,") {
		t.Fatalf("first sync: exit %d, want 3 with 7 runs copied\n%s", code, all)
	}
	code, out, errOut = runCLI(t, "sync", src, "parquet:"+archive, "--state", ledger)
	all := out + errOut
	if code != 3 || !strings.Contains(all, "copied 0 runs (0 points, 0 files, 0 B); 7 unchanged, 0 failed, 2 read from damaged source data (see above)") {
		t.Errorf("second sync, nothing changed: exit %d, want 3 with 0 runs copied and 7 unchanged\n%s", code, all)
	}
	for _, w := range damage {
		if !strings.Contains(all, w) {
			t.Errorf("second sync does not name the damage again (%q)\n%s", w, all)
		}
	}
	if code, out, errOut = runCLI(t, "archive", "snapshots", archive); code != 0 || !strings.Contains(out, "\n1 snapshot\n") {
		t.Errorf("archive snapshots after a sync that found nothing changed: exit %d, want 1 snapshot\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, "check", src, "parquet:"+archive); code != 0 || !strings.Contains(out, "7 runs, 212 points: 7 match, 0 differences") {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}
	// The truncated file grows (a live writer's next bytes): that run, and
	// only it, is read again.
	files, err := filepath.Glob(filepath.Join(logs, "damaged", "truncated", "events.out.tfevents.*"))
	if err != nil || len(files) != 1 {
		t.Fatalf("the truncated event file: %v %v", files, err)
	}
	f, err := os.OpenFile(files[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	code, out, errOut = runCLI(t, "sync", src, "parquet:"+archive, "--state", ledger)
	if all := out + errOut; code != 3 || !strings.Contains(all, "copied 1 run (0 points, 0 files, 0 B; 1 run appended to: 9 points held already, not sent again); 6 unchanged") {
		t.Errorf("sync after the damaged file grew: exit %d, want 3 with that run read again\n%s", code, all)
	}
}
