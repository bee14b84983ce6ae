package main

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	mlflowsink "github.com/runferry/runferry/sinks/mlflow"
	parquetsink "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	mlflowsrc "github.com/runferry/runferry/sources/mlflow"
	parquetsrc "github.com/runferry/runferry/sources/parquetdir"
)

// fillServer creates the experiment PREFIX+NAME on an MLflow server, with
// finished runs logged through the REST API as MLflow's clients log them
// (a parent and a child when withChild). It returns the experiment's id.
func fillServer(t *testing.T, url, prefix, name string, runs []string, withChild bool) string {
	t.Helper()
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	expID, err := api.CreateExperiment(ctx, prefix+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	var first string
	for i, rn := range runs {
		start := int64(1_700_000_000_000 + i*1000)
		create := mlflowapi.CreateRun{ExperimentID: expID, RunName: rn, StartTime: start, UserID: "alice"}
		if withChild && i == 1 {
			create.Tags = []mlflowapi.Tag{{Key: mlflowapi.TagParentRunID, Value: first}}
		}
		r, err := api.CreateRun(ctx, create)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = r.Info.RunID
		}
		err = api.LogBatch(ctx, mlflowapi.LogBatch{RunID: r.Info.RunID,
			Metrics: []mlflowapi.Metric{{Key: "loss", Value: 1, Step: 0, Timestamp: start}, {Key: "loss", Value: 0.5, Step: 1, Timestamp: start + 1}},
			Params:  []mlflowapi.Param{{Key: "server", Value: name}}})
		if err != nil {
			t.Fatal(err)
		}
		end := start + 500
		if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: r.Info.RunID, Status: "FINISHED", EndTime: &end}); err != nil {
			t.Fatal(err)
		}
	}
	return expID
}

// alignExperimentIDs creates empty experiments named FILLER-N on the MLflow
// servers at urlA and urlB, on whichever has handed out the lower id, until
// both last handed out the same one: the next experiment each creates then
// gets the same id (a SQL-backed server counts ids up), unless another
// client creates one in between.
func alignExperimentIDs(t *testing.T, urlA, urlB, filler string) {
	t.Helper()
	ctx := context.Background()
	var apis [2]*mlflowapi.Client
	var last [2]int
	n := 0
	create := func(i int) {
		id, err := apis[i].CreateExperiment(ctx, fmt.Sprintf("%s%d", filler, n), nil)
		if err != nil {
			t.Fatal(err)
		}
		n++
		last[i] = mustAtoi(t, id)
	}
	for i, url := range []string{urlA, urlB} {
		api, err := mlflowapi.New(mlflowapi.Config{BaseURL: url})
		if err != nil {
			t.Fatal(err)
		}
		apis[i] = api
		create(i)
	}
	for last[0] != last[1] {
		if last[0] < last[1] {
			create(0)
		} else {
			create(1)
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("experiment id %q is not a number", s)
	}
	return n
}

// legacySource reads an MLflow server as runferry did before origins named
// the server: every native origin is its former origin mlflow:ID. It is how
// the test makes the copies an earlier version left behind. It does not
// implement sources.FormerOriginer: to the engine these are the origins.
type legacySource struct {
	src      *mlflowsrc.Source
	instance string
}

func newLegacySource(t *testing.T, url, prefix string) legacySource {
	src, err := mlflowsrc.New(mlflowsrc.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := mlflowconv.Instance(url)
	if err != nil {
		t.Fatal(err)
	}
	return legacySource{src, inst}
}

func (s legacySource) old(r schema.Ref) schema.Ref {
	if f := s.src.FormerOrigins(r); len(f) == 1 {
		return f[0]
	}
	return r
}

func (s legacySource) cur(r schema.Ref) schema.Ref {
	if r.System == "mlflow" && !strings.Contains(r.ID, "/") {
		return schema.Ref{System: "mlflow", ID: s.instance + "/" + r.ID}
	}
	return r
}

func (s legacySource) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		for e, err := range s.src.Experiments(ctx) {
			e.Origin = s.old(e.Origin)
			if !yield(e, err) {
				return
			}
		}
	}
}

func (s legacySource) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		for r, err := range s.src.Runs(ctx, s.cur(exp)) {
			r.Origin, r.Experiment, r.Parent = s.old(r.Origin), s.old(r.Experiment), s.old(r.Parent)
			if !yield(r, err) {
				return
			}
		}
	}
}

func (s legacySource) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return s.src.Metrics(ctx, s.cur(run))
}

func (s legacySource) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return s.src.Artifacts(ctx, s.cur(run))
}

func (s legacySource) Close() error { return s.src.Close() }

var _ sources.ArtifactLister = legacySource{}

// legacyCopy copies a server into dst as an earlier runferry would have.
func legacyCopy(t *testing.T, url, prefix string, dst sinks.Sink) {
	t.Helper()
	rep, err := transfer.Copy(context.Background(), newLegacySource(t, url, prefix), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed != 0 {
		t.Fatalf("legacy copy of %s: %v %+v", url, err, rep.Totals)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// readBack lists what a location holds: experiment name by origin, and the
// origins of its runs.
func readBack(t *testing.T, src sources.Source) (map[string]string, []string) {
	t.Helper()
	defer src.Close()
	d, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	exps := map[string]string{}
	for _, e := range d.Experiments {
		exps[e.Origin.String()] = e.Name
	}
	var runs []string
	for _, r := range d.Runs {
		runs = append(runs, r.Run.Origin.String())
	}
	slices.Sort(runs)
	return exps, runs
}

// TestTwoMLflowServersNeverMerge: two MLflow servers, each with an
// experiment of the same id but its own name and runs, copied into one
// Parquet archive and into one third MLflow server. Copies an earlier
// runferry made (origins mlflow:ID) merged the two experiments; a copy now
// recognises each of those runs under its former origin, writes it again
// under an origin naming its server, and leaves no duplicate: the
// experiments are apart, `check` passes against each server, and a re-run
// changes nothing.
func TestTwoMLflowServersNeverMerge(t *testing.T) {
	// Server a is the shared one (also the destination, under its own
	// prefix), b the shared other one; the test's experiments on both
	// carry a prefix of its own, which every location of the test reads
	// (registered models too: other tests' models stay out of its copies).
	// Empty filler experiments, under a prefix no location reads, bring
	// the two servers to the same next experiment id.
	shared := testenv.SharedMLflow(t)
	a, b := shared, testenv.SharedMLflowOther(t)
	port := testenv.FreePort(t)
	srcPrefix, prefix := fmt.Sprintf("o-%d/", port), fmt.Sprintf("origins-%d/", port)
	alignExperimentIDs(t, a.URL, b.URL, fmt.Sprintf("o-%d-filler/", port))
	expA := fillServer(t, a.URL, srcPrefix, "team-c", []string{"a-parent", "a-child", "a-third"}, true)
	expB := fillServer(t, b.URL, srcPrefix, "proj-vision", []string{"b-one", "b-two"}, false)
	if expA != expB {
		t.Fatalf("the servers gave the experiments ids %s and %s: the test needs one id", expA, expB)
	}
	dir := t.TempDir()
	archivePath := filepath.Join(dir, "archive")
	dest := shared.URL + "?experiment-prefix=" + prefix
	openDest := func() sources.Source {
		s, err := mlflowsrc.New(mlflowsrc.Config{API: mlflowapi.Config{BaseURL: shared.URL}, ExperimentPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	openArchive := func() sources.Source {
		s, err := parquetsrc.New(archivePath, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// The copies an earlier version made: one experiment mlflow:<id> in the
	// archive, named after whichever server was copied last.
	for _, url := range []string{a.URL, b.URL} {
		p, err := parquetsink.New(archivePath)
		if err != nil {
			t.Fatal(err)
		}
		legacyCopy(t, url, srcPrefix, p)
		m, err := mlflowsink.New(mlflowsink.Config{API: mlflowapi.Config{BaseURL: shared.URL}, ExperimentPrefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		legacyCopy(t, url, srcPrefix, m)
	}
	exps, runs := readBack(t, openArchive())
	if len(exps) != 1 || len(runs) != 5 {
		t.Fatalf("the legacy archive: experiments %v runs %v; want the merge an earlier version made", exps, runs)
	}

	instA, instB := strings.TrimPrefix(a.URL, "http://"), strings.TrimPrefix(b.URL, "http://")
	wantExps := map[string]string{"mlflow:" + instA + "/" + expA: "team-c", "mlflow:" + instB + "/" + expB: "proj-vision"}
	state := filepath.Join(dir, "ledger.db")
	for _, dst := range []string{"parquet:" + archivePath, "mlflow+" + dest} {
		for _, src := range []string{a.URL, b.URL} {
			loc := "mlflow+" + src + "?experiment-prefix=" + srcPrefix + "&registry-prefix=" + srcPrefix
			report := filepath.Join(dir, "report.json")
			code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, dst, "--state", state, "--report", report)
			if code != 0 {
				t.Fatalf("copy %s %s: exit %d\n%s%s", loc, dst, code, out, errOut)
			}
			raw, err := os.ReadFile(report)
			if err != nil {
				t.Fatal(err)
			}
			var rep transfer.Report
			if err := json.Unmarshal(raw, &rep); err != nil {
				t.Fatal(err)
			}
			for _, r := range rep.Runs {
				if r.Outcome != transfer.Committed || !strings.Contains(r.Reason, "former origin") {
					t.Errorf("copy %s %s: run %s %s (%s), want it found under its former origin and written again", loc, dst, r.Origin, r.Outcome, r.Reason)
				}
			}
		}
		for _, src := range []string{a.URL, b.URL} {
			loc := "mlflow+" + src + "?experiment-prefix=" + srcPrefix + "&registry-prefix=" + srcPrefix
			if code, out, errOut := runCLI(t, "check", loc, dst); code != 0 {
				t.Errorf("check %s %s: exit %d\n%s%s", loc, dst, code, out, errOut)
			}
			// A re-run finds everything in place.
			code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, dst, "--no-state")
			if code != 0 || !strings.Contains(out, "unchanged") || strings.Contains(out, "copied") && !strings.Contains(out, "copied 0 runs") {
				t.Errorf("re-run of %s into %s: exit %d\n%s%s", loc, dst, code, out, errOut)
			}
		}
	}

	var want []string
	for _, s := range []*testenv.MLflowServer{a, b} {
		_, r := readBack(t, func() sources.Source {
			src, err := mlflowsrc.New(mlflowsrc.Config{API: mlflowapi.Config{BaseURL: s.URL}, ExperimentPrefix: srcPrefix})
			if err != nil {
				t.Fatal(err)
			}
			return src
		}())
		want = append(want, r...)
	}
	slices.Sort(want)
	if len(want) != 5 {
		t.Fatalf("the servers hold runs %v", want)
	}
	for name, open := range map[string]func() sources.Source{"archive": openArchive, "MLflow destination": openDest} {
		exps, runs := readBack(t, open())
		if !slices.Equal(runs, want) {
			t.Errorf("%s holds runs %v, want %v (each once, under origins naming its server)", name, runs, want)
		}
		got, _ := json.Marshal(exps)
		if wantJSON, _ := json.Marshal(wantExps); string(got) != string(wantJSON) {
			t.Errorf("%s holds experiments %s, want %s", name, got, wantJSON)
		}
	}
	// The parent link names the parent by its new origin, in both.
	for name, open := range map[string]func() sources.Source{"archive": openArchive, "MLflow destination": openDest} {
		src := open()
		d, err := dataset.Read(context.Background(), src)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		var parent, child schema.Run
		for _, r := range d.Runs {
			switch r.Run.Name {
			case "a-parent":
				parent = r.Run
			case "a-child":
				child = r.Run
			}
		}
		if parent.Origin.IsZero() || child.Parent != parent.Origin {
			t.Errorf("%s: child's parent %s, parent %s", name, child.Parent, parent.Origin)
		}
	}
	if _, err := os.Stat(archivePath); err != nil {
		t.Fatal(err)
	}
}
