package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
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

// TestAppendKilledThenContinued: the runferry binary is SIGKILLed in the
// middle of an append (after the second batch of new points reached the
// server, by a proxy in front of it); the next sync continues the append
// in the same MLflow run, from the ledger's cursors and the points the
// server holds: no run is deleted or superseded, no point is doubled
// (check), and the report says the run was appended to with the points
// of the first sync kept.
func TestAppendKilledThenContinued(t *testing.T) {
	t.Parallel() // no package variable set; its own names on shared servers (docs/TESTING.md, tt14)
	srv := testenv.SharedMLflow(t)
	bin := buildCLI(t)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var armed, batches atomic.Int32
	var victim atomic.Pointer[os.Process]
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		metrics := false
		if strings.HasSuffix(r.URL.Path, "/runs/log-batch") && armed.Load() == 1 {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			metrics = bytes.Contains(body, []byte(`"metrics":[{`))
		}
		r.Host = target.Host // MLflow refuses other hosts
		rp.ServeHTTP(w, r)
		if metrics && batches.Add(1) == 2 {
			if p := victim.Load(); p != nil {
				p.Kill()
			}
		}
	}))
	defer proxy.Close()

	dir := t.TempDir()
	const id = "grow0003"
	sinktest.GrowWandb(t, dir, id, 0, 40)
	prefix := fmt.Sprintf("kill-append-%d/", testenv.FreePort(t))
	src := "wandb:" + filepath.Join(dir, "wandb") + "?crashed-after=1ns"
	dst := "mlflow+" + proxy.URL + "?experiment-prefix=" + prefix
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	report := filepath.Join(t.TempDir(), "report.json")
	sync := func() error {
		cmd := exec.Command(bin, "sync", src, dst, "--state", ledger, "-q", "--report", report)
		cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		victim.Store(cmd.Process)
		err := cmd.Wait()
		victim.Store(nil)
		if err != nil {
			t.Logf("sync: %v\n%s", err, tail(out.String(), 20))
		}
		return err
	}
	if err := sync(); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs := func() []mlflowapi.Run {
		t.Helper()
		var ids []string
		for e, err := range api.SearchExperiments(ctx, "name LIKE '"+prefix+"%'", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ExperimentID)
		}
		if len(ids) != 1 {
			t.Fatalf("%d experiments named %s...", len(ids), prefix)
		}
		var out []mlflowapi.Run
		for r, err := range api.SearchRuns(ctx, ids, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		return out
	}
	first := runs()
	if len(first) != 1 {
		t.Fatalf("after the first sync the experiment holds %d runs", len(first))
	}
	runID := first[0].Info.RunID

	sinktest.GrowWandb(t, dir, id, 40, 3000)
	armed.Store(1)
	if err := sync(); err == nil {
		t.Fatal("the sync was not killed during the append")
	}
	armed.Store(0)
	cut := runs()
	if len(cut) != 1 || cut[0].Info.RunID != runID {
		t.Fatalf("after the kill the experiment holds %d runs", len(cut))
	}
	if _, complete := cut[0].Tag(mlflowconv.TagComplete); complete {
		t.Fatal("the run cut short during its append is marked complete")
	}
	var loss int
	for page, err := range api.MetricHistory(ctx, runID, "loss") {
		if err != nil {
			t.Fatal(err)
		}
		loss += len(page)
	}
	if loss <= 40 || loss >= 3000 {
		t.Fatalf("the killed append left %d points of loss; want some new points written, not all", loss)
	}

	if err := sync(); err != nil {
		t.Fatalf("sync after the kill: %v", err)
	}
	var rep struct {
		Runs []struct {
			DestID     string `json:"dest_id"`
			Outcome    string `json:"outcome"`
			Reason     string `json:"reason"`
			Appended   bool   `json:"appended"`
			KeptPoints int64  `json:"kept_points"`
		} `json:"runs"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 || !rep.Runs[0].Appended || rep.Runs[0].DestID != runID || rep.Runs[0].KeptPoints != 80 {
		t.Fatalf("report of the sync after the kill: %+v; want run %s appended to, 80 points kept", rep.Runs, runID)
	}
	final := runs()
	if len(final) != 1 || final[0].Info.LifecycleStage != mlflowapi.StageActive {
		t.Fatalf("after the kill and the next sync the experiment holds %d runs (%+v); want the one run, active, no superseded copy", len(final), final)
	}
	if v, _ := final[0].Tag(mlflowconv.TagComplete); v != "true" {
		t.Fatalf("complete tag %q after the continued append", v)
	}
	out, err := exec.Command(bin, "check", src, "mlflow+"+srv.URL+"?experiment-prefix="+prefix).CombinedOutput()
	if err != nil {
		t.Fatalf("runferry check after the continued append: %v\n%s", err, out)
	}
}

// TestAppendWithoutLedger: without a ledger (--no-state), a grown run is
// appended to from the cursors the MLflow copy keeps in its coverage
// file, checked against its mark: the same run id, only the new points
// written, and the server reads back as a fresh copy. When the copy's
// mark does not match the cursors kept, the run is written whole and the
// reason says why.
func TestAppendWithoutLedger(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	opt := transfer.Options{Backoff: func(int) time.Duration { return time.Millisecond }}
	for _, tamper := range []bool{false, true} {
		early, grown := withSystemMetrics()
		dst, read, _ := pair(t, srv.URL)
		first, err := transfer.Copy(ctx, memsrc.New(early), dst, opt)
		if err != nil || len(first.Runs) != 1 {
			t.Fatalf("first copy: %v %+v", err, first)
		}
		if tamper {
			if err := api.SetTag(ctx, first.Runs[0].DestID, mlflowconv.TagMark, "m1:tampered"); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := transfer.Copy(ctx, memsrc.New(grown), dst, opt)
		if err != nil || rep.Totals.Failed != 0 || len(rep.Runs) != 1 {
			t.Fatalf("second copy: %v %+v", err, rep)
		}
		r := rep.Runs[0]
		n := int64(len(grown.Runs[0].Metrics) - len(early.Runs[0].Metrics))
		switch {
		case !tamper && (!r.Appended || r.DestID != first.Runs[0].DestID || r.Points != n || r.KeptPoints != int64(len(early.Runs[0].Metrics))):
			t.Fatalf("without a ledger: appended %v to %s (first %s), %d points written, %d kept (%s); want %d appended to %d",
				r.Appended, r.DestID, first.Runs[0].DestID, r.Points, r.KeptPoints, r.Reason, n, len(early.Runs[0].Metrics))
		case tamper && (r.Appended || !strings.Contains(r.Reason, "written whole: the cursors the destination keeps do not match its copy's mark")):
			t.Fatalf("copy with another mark: appended %v (%s); want written whole, saying why", r.Appended, r.Reason)
		}
		got, err := dataset.Read(ctx, read())
		if err != nil {
			t.Fatal(err)
		}
		if diff := dataset.Diff(grown, got, dataset.DiffOptions{}); diff != nil {
			t.Fatalf("read back differs from a fresh copy (tamper %v):\n%s", tamper, strings.Join(diff, "\n"))
		}
	}
}

// TestFailedAppendContinuedInPlace: an append that fails after its first
// batch of new points (the job gives up: the ledger records the run failed
// and drops its cursors) is continued in the same MLflow run by the next
// job, from the cursors the copy keeps: no superseded copy, no point
// doubled. When the source changed beyond the copy's cursors in between
// (the points the failed append wrote are no longer the source's), the run
// is written whole instead, saying why. Without a ledger (the append
// planned from the cursors the copy keeps, as is its continuation, which
// finds the copy incomplete) the same holds.
func TestFailedAppendContinuedInPlace(t *testing.T) {
	t.Run("continued", func(t *testing.T) { testFailedAppend(t, false, true) })
	t.Run("source changed", func(t *testing.T) { testFailedAppend(t, true, true) })
	t.Run("continued without a ledger", func(t *testing.T) { testFailedAppend(t, false, false) })
}

func testFailedAppend(t *testing.T, changed, ledger bool) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	early, grown := withSystemMetrics()
	_, later := withSystemMetrics()
	if changed {
		for i, m := range later.Runs[0].Metrics {
			if m.Key == "loss" && m.Step >= 1500 {
				later.Runs[0].Metrics[i].Value = m.Value + 1
			}
		}
	}
	dst, read, _ := pair(t, srv.URL)
	l := &sinktest.MemLedger{}
	opt := transfer.Options{Ledger: l, Attempts: 1, Backoff: func(int) time.Duration { return time.Millisecond }}
	first, err := transfer.Copy(ctx, memsrc.New(early), dst, opt)
	if err != nil || len(first.Runs) != 1 {
		t.Fatalf("first copy: %v %+v", err, first)
	}
	if !ledger {
		opt.Ledger = nil
	}
	// The fifth operation is the second WriteMetrics (FailAt counts
	// PutExperiment, AppendRun and the writer's calls): the first 1000 new
	// points reach the server, then the append fails.
	failing := sinktest.NewFailAt(dst, 5, fault.Permanent(errors.New("injected")))
	cut, err := transfer.Copy(ctx, memsrc.New(grown), failing, opt)
	if err != nil || len(cut.Runs) != 1 || cut.Runs[0].Outcome != transfer.Failed || !strings.Contains(cut.Runs[0].Error, "operation 5") {
		t.Fatalf("the failing copy: %v %+v", err, cut)
	}
	rep, err := transfer.Copy(ctx, memsrc.New(later), dst, opt)
	if err != nil || len(rep.Runs) != 1 {
		t.Fatalf("copy after the failure: %v %+v", err, rep)
	}
	r := rep.Runs[0]
	if changed {
		if r.Outcome != transfer.Committed || r.Appended || !strings.Contains(r.Reason, "the append cut short wrote") {
			t.Fatalf("copy after the failure, source changed: %s, appended %v: %s; want written whole, saying why", r.Outcome, r.Appended, r.Reason)
		}
		expectSame(t, later, read())
		return
	}
	if r.Outcome != transfer.Committed || !r.Appended || r.DestID != first.Runs[0].DestID || !strings.Contains(r.Reason, "continuing the append") {
		t.Fatalf("copy after the failure: %s, appended %v to %s (first %s): %s; want the append continued in place",
			r.Outcome, r.Appended, r.DestID, first.Runs[0].DestID, r.Reason)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	run, err := api.GetRun(ctx, r.DestID)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for x, err := range api.SearchRuns(ctx, []string{run.Info.ExperimentID}, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, x.Info.RunID+" "+x.Info.LifecycleStage)
	}
	if len(held) != 1 {
		t.Fatalf("the experiment holds %v, want only run %s: no superseded copy", held, r.DestID)
	}
	got, err := dataset.Read(ctx, read())
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(later, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("read back differs from a fresh copy:\n%s", strings.Join(diff, "\n"))
	}
}
