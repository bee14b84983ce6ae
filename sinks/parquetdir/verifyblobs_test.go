package parquetdir_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestVerifyRunSharedBodies: VerifyRun checks each artifact body once a
// job (runs share bodies), and that never hides a missing one: with a body
// two runs share deleted, a new job's VerifyRun names it for both runs;
// with it back, a run whose other body is missing is named after a run
// that shares the first body was found whole.
func TestVerifyRunSharedBodies(t *testing.T) {
	ctx := context.Background()
	arch := filepath.Join(t.TempDir(), "archive")
	d, _ := sinktest.Grown()
	d.Runs = d.Runs[:2]
	shared, own := []byte("shared body\n"), []byte("the second run's own body\n")
	d.Runs[0].Files = []dataset.File{{Path: "a.txt", Content: shared}}
	d.Runs[1].Files = []dataset.File{{Path: "a.txt", Content: shared}, {Path: "b.txt", Content: own}}
	dst, err := parquetdir.New(arch)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(ctx, memsrc.New(d), dst, transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return 0 }})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	blob := func(b []byte) string {
		sum := sha256.Sum256(b)
		s := hex.EncodeToString(sum[:])
		return filepath.Join(arch, "blobs", "sha256", s[:2], s)
	}
	verify := func(when string, want ...string) {
		t.Helper()
		sink, err := parquetdir.New(arch)
		if err != nil {
			t.Fatal(err)
		}
		defer sink.Close()
		for i, rd := range d.Runs {
			got, err := sink.VerifyRun(ctx, rd.Run.Origin)
			if err != nil || (want[i] == "") != (got == "") || !strings.Contains(got, want[i]) {
				t.Errorf("%s: run %d: VerifyRun = %q, %v; want %q", when, i, got, err, want[i])
			}
		}
	}
	verify("whole", "", "")
	body, err := os.ReadFile(blob(shared))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blob(shared)); err != nil {
		t.Fatal(err)
	}
	verify("shared body deleted", blob(shared)+" is missing", blob(shared)+" is missing")
	if err := os.WriteFile(blob(shared), body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(blob(own)); err != nil {
		t.Fatal(err)
	}
	verify("second run's own body deleted", "", blob(own)+" is missing")
}
