package mlflow_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestSyncAppendsToGrowingWandbRun: a W&B run synced into MLflow, then
// resumed by the real SDK to log more steps, then synced again: the second
// sync appends only the new points to the same MLflow run (no new run, no
// deleted copy), and check finds the MLflow run equal to the W&B run, each
// point once.
func TestSyncAppendsToGrowingWandbRun(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	const id = "grow0001"
	sinktest.GrowWandb(t, dir, id, 0, 40)
	l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "wandb:" + dir, Sink: srv.URL}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	dst, read, _ := pair(t, srv.URL)
	ctx := context.Background()
	g := &sinktest.Growing{Dir: dir, Ledger: l,
		Sink: func(*testing.T) (sinks.Sink, func() error) { return dst, nil },
		Read: func(*testing.T) sources.Source { return read() }}
	sync := func() transfer.RunResult { t.Helper(); return g.Sync(t) }
	first := sync()
	if first.Outcome != transfer.Committed || first.Appended || first.Points != 80 {
		t.Fatalf("first sync: %+v, want 80 points committed", first)
	}

	sinktest.GrowWandb(t, dir, id, 40, 65)
	second := sync()
	if second.Outcome != transfer.Committed || !second.Appended || second.Points != 50 || second.KeptPoints != 80 {
		t.Fatalf("second sync: %s, appended %v, %d points written, %d kept (%s); want 50 new points appended to 80",
			second.Outcome, second.Appended, second.Points, second.KeptPoints, second.Reason)
	}
	if second.DestID != first.DestID || second.DestID == "" {
		t.Fatalf("second sync wrote run %q, the first %q: the MLflow run id changed", second.DestID, first.DestID)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	run, err := api.GetRun(ctx, first.DestID)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for r, err := range api.SearchRuns(ctx, []string{run.Info.ExperimentID}, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r.Info.RunID+" "+r.Info.LifecycleStage)
	}
	if len(held) != 1 {
		t.Fatalf("the experiment holds %v, want only run %s (active): an append must not leave copies behind", held, first.DestID)
	}
	if v, _ := run.Tag(mlflowconv.TagComplete); v != "true" || run.Info.Status != "FINISHED" {
		t.Fatalf("appended run: status %s, runferry.complete %q", run.Info.Status, v)
	}

	// Nothing new: the run is not touched.
	if third := sync(); third.Outcome != transfer.Unchanged {
		t.Fatalf("third sync without change: %s (%s)", third.Outcome, third.Reason)
	}
}

// TestAppendRefusesNewSystemMetricPoints: new points of a system metric
// are not appended (their MLflow keys and the per-core CPU fold depend on
// the points held): the run is written anew, the report says why, and the
// server reads back as a fresh copy.
func TestAppendRefusesNewSystemMetricPoints(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	early, grown := sinktest.Grown()
	big := grown.Runs[0]
	big.Metrics = append(big.Metrics, schema.Metric{Key: "system/gpu.0.temp", Value: 80, Step: 2000, Time: big.Metrics[len(big.Metrics)-1].Time + 1000})
	dst, read, _ := pair(t, srv.URL)
	l := &sinktest.MemLedger{}
	ctx := context.Background()
	opt := transfer.Options{Ledger: l, Backoff: func(int) time.Duration { return time.Millisecond }}
	if _, err := transfer.Copy(ctx, memsrc.New(early), dst, opt); err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(ctx, memsrc.New(grown), dst, opt)
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("second copy: %v %+v", err, rep.Totals)
	}
	for _, r := range rep.Runs {
		if r.Origin == big.Run.Origin.String() && (r.Appended || !strings.Contains(r.Reason, `cannot append: system metric "system/gpu.0.temp"`)) {
			t.Fatalf("run %s: appended %v, reason %q; want written whole for its new system metric point", r.Origin, r.Appended, r.Reason)
		}
	}
	got, err := dataset.Read(ctx, read())
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(grown, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("read back differs from a fresh copy:\n%s", strings.Join(diff, "\n"))
	}
}
