package mlflow_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
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
// resumed by the real SDK to log more steps and system metrics, then
// synced again: the second sync appends only the new points, system
// metrics among them (under MLflow's names), to the same MLflow run (no
// new run, no deleted copy), and check finds the MLflow run equal to the
// W&B run, each point once.
func TestSyncAppendsToGrowingWandbRun(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	const id = "grow0001"
	sinktest.GrowWandb(t, dir, id, 0, 40, "1")
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
	// systemPoints counts the run's system metric points in the source.
	systemPoints := func() (n int64) {
		t.Helper()
		src := sinktest.OpenWandb(t, dir)
		defer src.Close()
		ds, err := dataset.Read(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ds.Runs[0].Metrics {
			if strings.HasPrefix(m.Key, mlflowconv.SystemPrefix) {
				n++
			}
		}
		return n
	}
	sys1 := systemPoints()
	first := sync()
	if first.Outcome != transfer.Committed || first.Appended || first.Points != 80+sys1 || sys1 == 0 {
		t.Fatalf("first sync: %+v, want 80 points and %d of system metrics committed", first, sys1)
	}

	sinktest.GrowWandb(t, dir, id, 40, 65, "1")
	sys2 := systemPoints() - sys1
	second := sync()
	if second.Outcome != transfer.Committed || !second.Appended || second.Points != 50+sys2 || second.KeptPoints != first.Points || sys2 == 0 {
		t.Fatalf("second sync: %s, appended %v, %d points written, %d kept (%s); want 50 new points and %d of system metrics appended to %d",
			second.Outcome, second.Appended, second.Points, second.KeptPoints, second.Reason, sys2, first.Points)
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

// withSystemMetrics returns early and grown (sinktest.Grown) with system
// metrics added to the run that grows: memory (renamed to MLflow's name),
// two per-core CPU series (folded into the CPU mean) for samples 0..4
// early and 0..9 grown, a third core appearing at sample 5, and, grown, a
// second memory series whose MLflow name is held by the first (so it gets
// a hashed name) and a point of the GPU temperature at step 2000.
func withSystemMetrics() (early, grown *dataset.Dataset) {
	early, grown = sinktest.Grown()
	// Only the run that grows: the others are covered by sinktest.
	early.Runs, grown.Runs = early.Runs[:1], grown.Runs[:1]
	add := func(rd *dataset.RunData, key string, from, to int64) {
		for s := from; s < to; s++ {
			rd.Metrics = append(rd.Metrics, schema.Metric{Key: key, Value: float64(s*7%13) + 0.25, Step: s, Time: 1_700_000_000_000 + s*2000})
		}
	}
	for _, d := range []struct {
		rd    *dataset.RunData
		upTo  int64
		grown bool
	}{{early.Runs[0], 5, false}, {grown.Runs[0], 10, true}} {
		add(d.rd, "system/memory_percent", 0, d.upTo)
		add(d.rd, "system/cpu.0.cpu_percent", 0, d.upTo)
		add(d.rd, "system/cpu.1.cpu_percent", 0, d.upTo)
		if d.grown {
			add(d.rd, "system/cpu.2.cpu_percent", 5, d.upTo)
			add(d.rd, "system/memory", 5, d.upTo)
			d.rd.Metrics = append(d.rd.Metrics, schema.Metric{Key: "system/gpu.0.temp", Value: 80, Step: 2000, Time: 1_700_000_100_000})
		}
	}
	// The console output did not change (see TestAppendsNewSystemMetricPoints).
	early.Runs[0].Logs = grown.Runs[0].Logs
	// Files: early held an older config.yaml and a file since deleted.
	early.Runs[0].Files = []dataset.File{
		{Path: "config.yaml", Content: []byte("lr: 0.01\n")},
		grown.Runs[0].Files[1], grown.Runs[0].Files[2],
		{Path: "gone/old.txt", Content: []byte("deleted at the source")},
	}
	return early, grown
}

// TestAppendsNewSystemMetricPoints: new points of system metrics are
// appended to the same MLflow run: renamed keys keep their names, a new
// key whose MLflow name is taken gets its own, and per-core CPU points of
// new samples extend the CPU mean and the folded points file; only the new
// points are written, and the server reads back as a fresh copy, each
// point once. Of the files, only the new and the changed one are sent,
// the two unchanged are kept, and the one gone from the source is deleted.
// A per-core point of a sample folded already is refused, and
// that run is written whole, saying why.
func TestAppendsNewSystemMetricPoints(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	early, grown := withSystemMetrics()
	big := grown.Runs[0].Run.Origin.String()
	grownPoints := int64(len(grown.Runs[0].Metrics) - len(early.Runs[0].Metrics))
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// lifecycle returns the run's status, whether it has an end time, and
	// its complete tag.
	lifecycle := func(id string) string {
		t.Helper()
		run, err := api.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := run.Tag(mlflowconv.TagComplete)
		return fmt.Sprintf("%s ended=%v complete=%q", run.Info.Status, run.Info.EndTime != nil && *run.Info.EndTime > 0, v)
	}
	copyTwice := func(early, grown *dataset.Dataset, between func(destID string)) (transfer.RunResult, func() sources.Source) {
		t.Helper()
		dst, read, _ := pair(t, srv.URL)
		opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Backoff: func(int) time.Duration { return time.Millisecond }}
		first, err := transfer.Copy(ctx, memsrc.New(early), dst, opt)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range first.Runs {
			// The source run is still running: its copy is whole, but not
			// marked complete as a run that ended is.
			if got, want := lifecycle(r.DestID), `RUNNING ended=false complete="running"`; r.Origin == big && got != want {
				t.Fatalf("run %s copied while running: %s, want %s", big, got, want)
			}
			if r.Origin == big && between != nil {
				between(r.DestID)
			}
		}
		rep, err := transfer.Copy(ctx, memsrc.New(grown), dst, opt)
		if err != nil || rep.Totals.Failed != 0 {
			t.Fatalf("second copy: %v %+v", err, rep.Totals)
		}
		for _, r := range rep.Runs {
			if r.Origin == big {
				return r, read
			}
		}
		t.Fatalf("no result for run %s", big)
		return transfer.RunResult{}, nil
	}
	expectFresh := func(want *dataset.Dataset, read func() sources.Source) {
		t.Helper()
		got, err := dataset.Read(ctx, read())
		if err != nil {
			t.Fatal(err)
		}
		if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
			t.Fatalf("read back differs from a fresh copy:\n%s", strings.Join(diff, "\n"))
		}
	}

	// output.log, which runferry derives from the console output (and the
	// source hides), is overwritten with a marker: an append that sent the
	// unchanged output again would replace it.
	const marker = "marker: not sent again\n"
	artifactURI := func(id string) string {
		run, err := api.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return run.Info.ArtifactURI
	}
	r, read := copyTwice(early, grown, func(id string) {
		if err := api.UploadBytes(ctx, artifactURI(id), "output.log", []byte(marker)); err != nil {
			t.Fatal(err)
		}
	})
	if !r.Appended || r.Points != grownPoints || strings.Contains(r.Reason, "cannot append") {
		t.Fatalf("run %s: appended %v, %d points written (%s); want %d new points appended", big, r.Appended, r.Points, r.Reason, grownPoints)
	}
	if r.Files != 2 || r.KeptFiles != 2 || r.DeletedFiles != 1 {
		t.Fatalf("run %s: %d files sent, %d kept, %d deleted; want 2 sent (new, changed), 2 kept, 1 deleted", big, r.Files, r.KeptFiles, r.DeletedFiles)
	}
	expectFresh(grown, read)
	body, err := api.OpenArtifact(ctx, r.DestID, artifactURI(r.DestID), "output.log")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(body)
	body.Close()
	if string(b) != marker {
		t.Fatalf("output.log after an append with unchanged console output: %q, want it left as it was (%q)", b, marker)
	}
	if got, want := lifecycle(r.DestID), `FINISHED ended=true complete="true"`; got != want {
		t.Fatalf("run %s appended to once it ended: %s, want %s", big, got, want)
	}
	var mean []string
	for page, err := range api.MetricHistory(ctx, r.DestID, mlflowconv.CPUMeanKey) {
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			mean = append(mean, fmt.Sprintf("%d:%g", m.Step, float64(m.Value)))
		}
	}
	slices.Sort(mean)
	var want []string
	for s := int64(0); s < 10; s++ {
		v, n := 0.0, 0.0
		for _, m := range grown.Runs[0].Metrics {
			if sm, ok := mlflowconv.SystemMetricKey(m.Key); ok && sm.Core && m.Step == s {
				v, n = v+m.Value, n+1
			}
		}
		want = append(want, fmt.Sprintf("%d:%g", s, v/n))
	}
	slices.Sort(want)
	if !slices.Equal(mean, want) {
		t.Fatalf("%s after the append: %v, want one mean per sample %v", mlflowconv.CPUMeanKey, mean, want)
	}

	// A core's point at a sample folded already: written whole.
	early2, grown2 := withSystemMetrics()
	grown2.Runs[0].Metrics = append(grown2.Runs[0].Metrics, schema.Metric{Key: "system/cpu.3.cpu_percent", Value: 50, Step: 4, Time: 1_700_000_008_000})
	r, read = copyTwice(early2, grown2, nil)
	if r.Appended || !strings.Contains(r.Reason, `cannot append: per-core CPU metric "system/cpu.3.cpu_percent": a new point at step 4`) {
		t.Fatalf("run %s: appended %v, reason %q; want written whole for its core point of a folded sample", big, r.Appended, r.Reason)
	}
	expectFresh(grown2, read)
}
