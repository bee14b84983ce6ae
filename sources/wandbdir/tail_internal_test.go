package wandbdir

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestTailFastPathMatchesDecode reads the tail of every log of the
// fixtures, the real-world samples and a generated log (larger than the
// tail, so the tail starts mid-file) with the fast path (history rows
// scanned in place, records the header does not use skipped) and with
// every record decoded: the exit record, preempting flag, latest timestamp
// and damage are the same.
func TestTailFastPathMatchesDecode(t *testing.T) {
	gen := t.TempDir()
	dir := filepath.Join(gen, "bench", "wandb", "run-20240601_120000-tail1")
	if err := os.MkdirAll(filepath.Join(dir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeBenchLog(filepath.Join(dir, "run-tail1.wandb"), 3000); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "run-tail1.wandb")); err != nil || fi.Size() <= 2*tailBytes {
		t.Fatalf("generated log: %v, %d bytes; want more than twice the tail", err, fi.Size())
	}
	roots := []string{gen, filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "fixtures"), testenv.Samples(t, "wandb")}
	logs := 0
	for _, root := range roots {
		runs, _, err := discover(context.Background(), root, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, ri := range runs {
			for _, seg := range ri.segments {
				if seg.wandbFile == "" {
					continue
				}
				fi, err := os.Stat(seg.wandbFile)
				if err != nil {
					t.Fatal(err)
				}
				read := func(fast bool) tailInfo {
					defer func(old bool) { fastPath = old }(fastPath)
					fastPath = fast
					return readTail(seg, fi.Size())
				}
				got, want := read(true), read(false)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s: fast tail %+v, decoded %+v", seg.wandbFile, got, want)
				}
				if seg.wandbFile == filepath.Join(dir, "run-tail1.wandb") && (want.lastTime == 0 || want.exit == nil) {
					t.Errorf("generated log: tail %+v, want a timestamp and the exit record", want)
				}
				logs++
			}
		}
	}
	if logs < 3 {
		t.Fatalf("only %d logs read", logs)
	}
}
