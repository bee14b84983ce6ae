package mlflow_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/sinktest"
)

// TestSourceFileNamedAsASegment: a real W&B folder whose output.log is
// held in segments (1 KiB) and which has a file of its own named as a
// later segment, output.1.log. The copy stores that file below
// runferry/files/ (mlflowconv.StoredPath), so neither overwrites the
// other: the MLflow source reads back output.log byte for byte the
// folder's and output.1.log the folder's own file, and check (run by
// Sync) finds the run equal to the W&B run. Before StoredPath, the
// segment and the file were uploaded to the same path and one was lost.
func TestSourceFileNamedAsASegment(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	outputLog := sdkOutputLog(t, dir, "outl0004")
	wantLog := logGrower(t, outputLog, func(i int) string { return fmt.Sprintf("epoch %d: loss %.4f", i, 1/float64(i+1)) })(200)
	own := []byte("the run's own file named output.1.log\n")
	if err := os.WriteFile(filepath.Join(filepath.Dir(outputLog), "output.1.log"), own, 0o644); err != nil {
		t.Fatal(err)
	}

	restore := mlflow.SetLogSegmentBytes(1024)
	defer restore()
	dst, read, _ := pair(t, srv.URL)
	res := syncInto(dir, &sinktest.MemLedger{}, dst, read).Sync(t)

	files, cov := runFiles(t, api, res.DestID)
	if len(cov.OutputSegments) < 3 {
		t.Fatalf("output.log held in %d segments, want 3 or more", len(cov.OutputSegments))
	}
	if files[mlflowconv.FilesDir+"output.1.log"] != string(own) {
		t.Errorf("the run's own output.1.log is not stored below %s: files %v", mlflowconv.FilesDir, keysOf(files))
	}
	origin, _ := schema.ParseRef(res.Origin)
	got := readListed(t, read, origin, func(p string) bool { return p == "output.log" || p == "output.1.log" })
	if b := got["output.log"].body; string(b) != string(wantLog) {
		t.Errorf("output.log read back: %d bytes, want the folder's %d", len(b), len(wantLog))
	}
	if b := got["output.1.log"].body; string(b) != string(own) {
		t.Errorf("output.1.log read back: %q, want the folder's own file %q", strings.TrimSpace(string(b)), strings.TrimSpace(string(own)))
	}
}
