package mlflow_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
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
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const id = "outl0004"
	sinktest.GrowWandb(t, dir, id, 0, 5)
	logs, err := filepath.Glob(filepath.Join(dir, "wandb", "*run-*-"+id, "files", "output.log"))
	if err != nil || len(logs) != 1 {
		t.Fatalf("the SDK's output.log: %v %v", logs, err)
	}
	f, err := os.OpenFile(logs[0], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		fmt.Fprintf(f, "epoch %d: loss %.4f\n", i, 1/float64(i+1))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wantLog, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	own := []byte("the run's own file named output.1.log\n")
	if err := os.WriteFile(filepath.Join(filepath.Dir(logs[0]), "output.1.log"), own, 0o644); err != nil {
		t.Fatal(err)
	}

	restore := mlflow.SetLogSegmentBytes(1024)
	defer restore()
	dst, read, _ := pair(t, srv.URL)
	g := &sinktest.Growing{Dir: dir, Ledger: &sinktest.MemLedger{},
		Sink: func(*testing.T) (sinks.Sink, func() error) { return dst, nil },
		Read: func(*testing.T) sources.Source { return read() }}
	res := g.Sync(t)

	files, cov := runFiles(t, api, res.DestID)
	if len(cov.OutputSegments) < 3 {
		t.Fatalf("output.log held in %d segments, want 3 or more", len(cov.OutputSegments))
	}
	if files[mlflowconv.FilesDir+"output.1.log"] != string(own) {
		t.Errorf("the run's own output.1.log is not stored below %s: files %v", mlflowconv.FilesDir, keysOf(files))
	}
	src := read()
	defer src.Close()
	origin, _ := schema.ParseRef(res.Origin)
	got := map[string]string{}
	for a, err := range artifactsOf(t, src, origin) {
		if err != nil {
			t.Fatal(err)
		}
		if a.Path != "output.log" && a.Path != "output.1.log" {
			continue
		}
		if _, dup := got[a.Path]; dup {
			t.Errorf("%s listed twice", a.Path)
		}
		body, err := a.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(body)
		body.Close()
		if err != nil {
			t.Fatal(err)
		}
		got[a.Path] = string(b)
	}
	if got["output.log"] != string(wantLog) {
		t.Errorf("output.log read back: %d bytes, want the folder's %d", len(got["output.log"]), len(wantLog))
	}
	if got["output.1.log"] != string(own) {
		t.Errorf("output.1.log read back: %q, want the folder's own file %q", strings.TrimSpace(got["output.1.log"]), strings.TrimSpace(string(own)))
	}
}
