package archive_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// TestReplaceFormerOrigin archives a run and its experiment under former
// origins, then writes them under new origins, the run replacing the one
// held under its former origin: before the writer publishes (journal
// only) and after, the archive holds the new run and experiment only, no
// file of the former ones is current, and `archive check` passes.
func TestReplaceFormerOrigin(t *testing.T) {
	dir := t.TempDir()
	base := dataset.Canonical()
	old := &dataset.Dataset{Experiments: base.Experiments[:1], Runs: base.Runs[:1]}
	old.Runs[0].Run.Experiment = old.Experiments[0].Origin
	old.Runs[0].Run.Parent = schema.Ref{}
	write(t, dir, old)

	re := func(r schema.Ref) schema.Ref { return schema.Ref{System: r.System, ID: "host-b/" + r.ID} }
	want := old.Clone()
	want.Experiments[0].Origin = re(want.Experiments[0].Origin)
	run := &want.Runs[0].Run
	run.Origin, run.Experiment = re(run.Origin), re(run.Experiment)

	w, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutExperiment(want.Experiments[0]); err != nil {
		t.Fatal(err)
	}
	if retired, err := w.RetireExperiment(old.Experiments[0].Origin.String()); err != nil || retired {
		t.Fatalf("RetireExperiment of an experiment a run is left in = %v, %v", retired, err)
	}
	rw := w.OpenRun(*run)
	rw.Replace([]string{old.Runs[0].Run.Origin.String()})
	if err := rw.WriteMetrics(want.Runs[0].Metrics); err != nil {
		t.Fatal(err)
	}
	if err := rw.Commit(); err != nil {
		t.Fatal(err)
	}
	if retired, err := w.RetireExperiment(old.Experiments[0].Origin.String()); err != nil || !retired {
		t.Fatalf("RetireExperiment of the emptied experiment = %v, %v", retired, err)
	}
	origins := func() (exps, runs []string) {
		st, err := archive.LoadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range st.Manifest.Experiments {
			exps = append(exps, e.Origin)
		}
		for _, r := range st.Manifest.Runs {
			runs = append(runs, r.Origin)
		}
		return exps, runs
	}
	wantExps, wantRuns := []string{want.Experiments[0].Origin.String()}, []string{run.Origin.String()}
	if exps, runs := origins(); !slices.Equal(exps, wantExps) || !slices.Equal(runs, wantRuns) {
		t.Errorf("before publishing: experiments %q runs %q, want %q %q", exps, runs, wantExps, wantRuns)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if exps, runs := origins(); !slices.Equal(exps, wantExps) || !slices.Equal(runs, wantRuns) {
		t.Errorf("after publishing: experiments %q runs %q, want %q %q", exps, runs, wantExps, wantRuns)
	}
	for _, f := range dataFiles(t, dir) {
		for _, o := range []schema.Ref{old.Experiments[0].Origin, old.Runs[0].Run.Origin} {
			if strings.Contains(f, archive.EntityKey(o.String())) {
				t.Errorf("file %s of the former %s is still current", f, o)
			}
		}
	}
	rep, err := archive.Check(dir)
	if err != nil || !rep.OK() {
		t.Fatalf("archive check: %v %+v", err, rep.Problems)
	}
	want.Runs[0].Logs, want.Runs[0].RichValues, want.Runs[0].Files = nil, nil, nil
	expectEqual(t, dir, want)
}
