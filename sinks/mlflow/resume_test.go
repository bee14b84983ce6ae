package mlflow_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestFirstCopyContinuedInPlace cuts a first copy of a run (metrics,
// system metrics folded, console output, files) short three times, at
// the fourth operation, half-way through its points and at its commit,
// each time continuing it with a fresh engine and no ledger: the run
// keeps the MLflow run id its first attempt created, the experiment holds
// no other run (none superseded, none deleted), and the read-back equals
// the source, every point once. When the source changed between the
// attempts in a way the copy cannot take (points rewritten), the copy is
// superseded at commit and the run written anew. The report says the run
// was continued in place and counts the points not sent again. Files the
// source deleted between the attempts (one under runferry/, stored below
// runferry/files/) are deleted from the continued copy and counted.
func TestFirstCopyContinuedInPlace(t *testing.T) {
	t.Parallel() // no package variable set; its own names on shared servers (docs/TESTING.md, tt14)
	t.Run("continued", func(t *testing.T) { testFirstCopyCut(t, cutContinued) })
	t.Run("source changed", func(t *testing.T) { testFirstCopyCut(t, cutSourceChanged) })
	t.Run("files deleted", func(t *testing.T) { testFirstCopyCut(t, cutFilesDeleted) })
}

// How the source changes between the attempts of testFirstCopyCut.
const (
	cutContinued     = iota // not at all
	cutSourceChanged        // points rewritten
	cutFilesDeleted         // two files deleted
)

func testFirstCopyCut(t *testing.T, mode int) {
	changed := mode == cutSourceChanged
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	_, want := withSystemMetrics()
	// What the attempts cut short copy.
	_, cutSrc := withSystemMetrics()
	if mode == cutFilesDeleted {
		files := &cutSrc.Runs[0].Files
		*files = append(*files, dataset.File{Path: "gone/old.txt", Content: []byte("deleted at the source")},
			dataset.File{Path: "runferry/gone.txt", Content: []byte("deleted too")})
		slices.SortFunc(*files, func(a, b dataset.File) int { return strings.Compare(a.Path, b.Path) })
	}
	opt := transfer.Options{Attempts: 1, Backoff: func(int) time.Duration { return time.Millisecond }}

	// How many operations a whole copy makes, on a prefix of its own.
	probeDst, _, _ := pair(t, srv.URL)
	probe := sinktest.NewFailAt(probeDst, 1<<30, nil)
	if rep, err := transfer.Copy(ctx, memsrc.New(cutSrc), probe, opt); err != nil || len(rep.Runs) != 1 || rep.Runs[0].Outcome != transfer.Committed {
		t.Fatalf("probe copy: %v %+v", err, rep)
	}
	total := probe.Ops()
	if total < 8 {
		t.Fatalf("a copy makes only %d operations: too few to cut it short half-way", total)
	}

	dst, read, prefix := pair(t, srv.URL)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// runs lists the runs of the prefix's experiments, and those deleted.
	runs := func() (held, deleted []string) {
		t.Helper()
		var ids []string
		for e, err := range api.SearchExperiments(ctx, "name LIKE '"+prefix+"%'", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, e.ExperimentID)
		}
		if len(ids) == 0 {
			return nil, nil
		}
		for x, err := range api.SearchRuns(ctx, ids, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, x.Info.RunID)
			if x.Info.LifecycleStage != mlflowapi.StageActive {
				deleted = append(deleted, x.Info.RunID)
			}
		}
		return held, deleted
	}
	runID := ""
	for _, at := range []int{4, total / 2, total} {
		failing := sinktest.NewFailAt(dst, at, fault.Permanent(errors.New("injected")))
		cut, err := transfer.Copy(ctx, memsrc.New(cutSrc), failing, opt)
		if err != nil || len(cut.Runs) != 1 || cut.Runs[0].Outcome != transfer.Failed || !strings.Contains(cut.Runs[0].Error, fmt.Sprintf("operation %d", at)) {
			t.Fatalf("the copy failing at operation %d: %v %+v", at, err, cut)
		}
		held, deleted := runs()
		if len(held) != 1 || len(deleted) != 0 || runID != "" && held[0] != runID {
			t.Fatalf("after the copy failing at operation %d the server holds %v (deleted %v); want the one run %q the first attempt created", at, held, deleted, runID)
		}
		runID = held[0]
	}
	src := want
	if changed {
		_, src = withSystemMetrics()
		for i, m := range src.Runs[0].Metrics {
			if m.Key == "loss" {
				src.Runs[0].Metrics[i].Value = m.Value + 1
			}
		}
		opt.Attempts = 2
	}
	rep, err := transfer.Copy(ctx, memsrc.New(src), dst, opt)
	if err != nil || len(rep.Runs) != 1 || rep.Runs[0].Outcome != transfer.Committed {
		t.Fatalf("the copy after the failures: %v %+v", err, rep)
	}
	r := rep.Runs[0]
	held, deleted := runs()
	if changed {
		if len(held) != 2 || len(deleted) != 1 || r.Attempts != 2 {
			t.Fatalf("source changed: the experiment holds %v (deleted %v) after %d attempts; want the copy cut short superseded at commit and the run written anew", held, deleted, r.Attempts)
		}
		expectSame(t, src, read())
		return
	}
	if len(held) != 1 || len(deleted) != 0 || r.DestID != runID {
		t.Fatalf("the server holds %v (deleted %v), the copy committed run %s; want only run %s, the copy cut short continued in place", held, deleted, r.DestID, runID)
	}
	given := int64(len(want.Runs[0].Metrics))
	if !r.Continued || r.Appended || r.KeptPoints <= 0 || r.Points+r.KeptPoints > given || rep.Totals.Continued != 1 ||
		!strings.Contains(r.Reason, fmt.Sprintf("continued in place (a first copy cut short: %d points it held not sent again)", r.KeptPoints)) {
		t.Errorf("the report of the continued copy: continued %v, appended %v, %d points, %d kept of %d given, totals.continued %d, reason %q; want it continued in place, the points held counted as kept, not as sent",
			r.Continued, r.Appended, r.Points, r.KeptPoints, given, rep.Totals.Continued, r.Reason)
	}
	wantDeleted := int64(0)
	if mode == cutFilesDeleted {
		wantDeleted = 2
	}
	if r.DeletedFiles != wantDeleted || rep.Totals.DeletedFiles != wantDeleted {
		t.Errorf("the continued copy deleted %d files (totals %d), want %d", r.DeletedFiles, rep.Totals.DeletedFiles, wantDeleted)
	}
	for f, err := range api.ListArtifacts(ctx, runID, "") {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f.Path, "gone") {
			t.Errorf("the continued copy still holds %s, deleted at the source", f.Path)
		}
	}
	d, err := dataset.Read(ctx, read())
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(want, d, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("read back differs from the source:\n%s", strings.Join(diff, "\n"))
	}
}

// TestBareFirstCopyContinued: a run cut short right after MLflow created
// it, before its run.json was uploaded (made here by hand, as OpenRun
// creates it), is continued under its run id when it was created for
// the same run; the read-back equals the source.
func TestBareFirstCopyContinued(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	_, want := withSystemMetrics()
	opt := transfer.Options{Attempts: 1, Backoff: func(int) time.Duration { return time.Millisecond }}
	dst, read, prefix := pair(t, srv.URL)
	// The operation after the experiments' is OpenRun: the experiments
	// are made, no run.
	failing := sinktest.NewFailAt(dst, len(want.Experiments)+1, fault.Permanent(errors.New("injected")))
	if cut, err := transfer.Copy(ctx, memsrc.New(want), failing, opt); err != nil || len(cut.Runs) != 1 || cut.Runs[0].Outcome != transfer.Failed {
		t.Fatalf("the copy failing at OpenRun: %v %+v", err, cut)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	r := want.Runs[0].Run
	var expName string
	for _, e := range want.Experiments {
		if e.Origin == r.Experiment {
			expName = prefix + e.Name
		}
	}
	var expID string
	var names []string
	for e, err := range api.SearchExperiments(ctx, "name LIKE '"+prefix+"%'", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Name)
		if strings.HasPrefix(e.Name, expName) {
			expID = e.ExperimentID
		}
	}
	if expID == "" {
		t.Fatalf("no experiment %q among %v", expName, names)
	}
	origin := r.Origin.String()
	bare, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, UserID: r.User, RunName: r.Name, StartTime: r.Start.UnixMilli(),
		Tags: []mlflowapi.Tag{
			{Key: mlflowconv.TagOrigin, Value: origin},
			{Key: mlflowconv.TagOriginKey, Value: mlflowconv.OriginKey(origin)},
			{Key: mlflowconv.TagSidecar, Value: mlflowconv.SidecarPath},
		}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(ctx, memsrc.New(want), dst, opt)
	if err != nil || len(rep.Runs) != 1 || rep.Runs[0].Outcome != transfer.Committed {
		t.Fatalf("the copy after the failure: %v %+v", err, rep)
	}
	if rep.Runs[0].DestID != bare.Info.RunID {
		t.Fatalf("the copy committed run %s, want the bare run %s continued", rep.Runs[0].DestID, bare.Info.RunID)
	}
	n := 0
	for x, err := range api.SearchRuns(ctx, []string{expID}, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if x.Info.LifecycleStage != mlflowapi.StageActive {
			t.Errorf("run %s is deleted", x.Info.RunID)
		}
	}
	if n != 1 {
		t.Fatalf("the experiment holds %d runs, want 1", n)
	}
	expectSame(t, want, read())
}
