package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	sink "github.com/runferry/runferry/sinks/mlflow"
	pqsink "github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/mlflow"
	pqsrc "github.com/runferry/runferry/sources/parquetdir"
)

// loaded is what testdata/load_file_store.py says it loaded (expected.json).
type loaded struct {
	Experiments []struct {
		ID, Name, Sample string
		Deleted          bool
	}
	Runs []struct {
		ID               string `json:"id"`
		OldID            string `json:"old_id"`
		Experiment, Name string
		User, Status     string
		Start            int64
		End              *int64
		Deleted          bool
		Params, Tags     map[string]string
		Inputs           []struct {
			Name       string            `json:"name"`
			Digest     string            `json:"digest"`
			SourceType string            `json:"source_type,omitempty"`
			Source     string            `json:"source,omitempty"`
			Tags       map[string]string `json:"tags,omitempty"`
		}
		Metrics   [][4]any // key, timestamp, repr(value), step
		SentLines int      `json:"sent_lines"`
		Models    int
		Files     []struct{ Path, Local string }
	}
}

// samplesDir returns ../shared/samples/mlflow-file (next to the repository),
// or skips the test when a clone has no such folder.
func samplesDir(t *testing.T) string {
	dir := filepath.Join(testenv.RepoRoot(t), "..", "shared", "samples", "mlflow-file")
	if _, err := os.Stat(dir); err != nil {
		testenv.Unavailable(t, "the real-world MLflow samples at "+dir+" (next to the repository, in ../shared/samples)", err.Error())
	}
	return dir
}

// fieldTags are the MLflow tags the source reads as run fields (Name, User,
// Notes, Parent, GitCommit, GitRemote, Program): they are not tags of the
// schema.Run.
var fieldTags = []string{mlflowapi.TagRunName, mlflowapi.TagUser, mlflowapi.TagNote, mlflowapi.TagParentRunID,
	mlflowapi.TagGitCommit, mlflowapi.TagGitRepo, mlflowapi.TagSourceName}

// want turns the loader's account into the dataset the MLflow source must
// read: every param, every tag but the field tags, dataset inputs (without
// schema and profile, which expected.json does not hold), every distinct metric point, status, times,
// parent links, deleted flags and artifact contents (from the sample files).
func (l *loaded) want(t *testing.T, url string) *dataset.Dataset {
	d := &dataset.Dataset{}
	// Native origins name the server: mlflow:HOST:PORT/ID.
	ref := func(id string) schema.Ref {
		return schema.Ref{System: "mlflow", ID: strings.TrimPrefix(url, "http://") + "/" + id}
	}
	for _, e := range l.Experiments {
		d.Experiments = append(d.Experiments, schema.Experiment{Origin: ref(e.ID), Name: e.Name, Deleted: e.Deleted})
	}
	ms := func(v int64) time.Time {
		if v == 0 {
			return time.Time{}
		}
		return time.UnixMilli(v).UTC()
	}
	for _, r := range l.Runs {
		run := schema.Run{Origin: ref(r.ID), Experiment: ref(r.Experiment), Name: r.Name, User: r.User,
			Status: schema.RunStatus(r.Status), Start: ms(r.Start), Deleted: r.Deleted,
			Notes: r.Tags[mlflowapi.TagNote], GitCommit: r.Tags[mlflowapi.TagGitCommit],
			GitRemote: r.Tags[mlflowapi.TagGitRepo], Program: r.Tags[mlflowapi.TagSourceName]}
		if r.Status == "SCHEDULED" {
			run.Status = schema.StatusRunning
		}
		if r.End != nil {
			run.End = ms(*r.End)
		}
		if p := r.Tags[mlflowapi.TagParentRunID]; p != "" {
			run.Parent = ref(p)
		}
		for k, v := range r.Params {
			run.Params = append(run.Params, schema.Param{Key: k, Value: v})
		}
		for k, v := range r.Tags {
			if !slices.Contains(fieldTags, k) {
				run.Tags = append(run.Tags, schema.Tag{Key: k, Value: v})
			}
		}
		for _, in := range r.Inputs {
			d := schema.DatasetInput{Name: in.Name, Digest: in.Digest, SourceType: in.SourceType, Source: in.Source}
			for k, v := range in.Tags {
				d.Tags = append(d.Tags, schema.Tag{Key: k, Value: v})
			}
			run.Inputs = append(run.Inputs, d)
		}
		run.Canonicalize()
		rd := &dataset.RunData{Run: run}
		for _, m := range r.Metrics {
			v, err := strconv.ParseFloat(m[2].(string), 64)
			if err != nil {
				t.Fatalf("expected.json: run %s: %v", r.ID, err)
			}
			rd.Metrics = append(rd.Metrics, schema.Metric{Key: m[0].(string), Time: int64(m[1].(float64)), Value: v, Step: int64(m[3].(float64))})
		}
		schema.SortMetrics(rd.Metrics)
		for _, f := range r.Files {
			b, err := os.ReadFile(f.Local)
			if err != nil {
				t.Fatal(err)
			}
			rd.Files = append(rd.Files, dataset.File{Path: f.Path, Content: b})
		}
		slices.SortFunc(rd.Files, func(a, b dataset.File) int { return strings.Compare(a.Path, b.Path) })
		d.Runs = append(d.Runs, rd)
	}
	return d
}

// covers fails the test when the loaded samples no longer exercise what
// the samples README promises, so that a loader change cannot quietly make
// the comparison trivial.
func (l *loaded) covers(t *testing.T) {
	var deletedExp, running, failed, children, inputs, models, deletedRuns, files int
	var duplicated, sameStep bool
	for _, e := range l.Experiments {
		if e.Deleted {
			deletedExp++
		}
	}
	for _, r := range l.Runs {
		switch r.Status {
		case "RUNNING":
			running++
		case "FAILED":
			failed++
		}
		if r.Tags[mlflowapi.TagParentRunID] != "" {
			children++
		}
		if r.Deleted {
			deletedRuns++
		}
		inputs += len(r.Inputs)
		models += r.Models
		files += len(r.Files)
		duplicated = duplicated || r.SentLines > len(r.Metrics)
		atZero := 0
		for _, m := range r.Metrics {
			if m[3].(float64) == 0 {
				atZero++
			}
		}
		sameStep = sameStep || atZero >= 100
	}
	t.Logf("loaded %d experiments (%d deleted), %d runs: %d RUNNING, %d FAILED, %d deleted, %d children, %d dataset inputs, %d logged models, %d files",
		len(l.Experiments), deletedExp, len(l.Runs), running, failed, deletedRuns, children, inputs, models, files)
	if deletedExp < 5 || running < 2 || failed < 2 || children < 6 || inputs < 2 || models < 3 || files < 100 || !duplicated || !sameStep {
		t.Fatalf("the samples no longer exercise what README.md describes (duplicated lines %v, 100 points at step 0 %v)", duplicated, sameStep)
	}
}

// TestFileStoreSamples loads the real-world MLflow file stores of
// ../shared/samples/mlflow-file into a real server with MLflow's own client
// (testdata/load_file_store.py), then
//   - reads them with the MLflow source and compares everything with what
//     the loader says it wrote;
//   - copies them to a Parquet archive and from there into a second, fresh
//     server: check finds no difference between the first server and the
//     archive, nor between the two servers.
func TestFileStoreSamples(t *testing.T) {
	samples := samplesDir(t)
	if testing.Short() {
		t.Skip("loads 58 real-world runs into MLflow and copies them twice (about a minute)")
	}
	t.Parallel()
	entries, err := os.ReadDir(samples)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() {
			dirs = append(dirs, filepath.Join(samples, e.Name()))
		}
	}
	ctx := context.Background()
	srv := testenv.SharedMLflow(t)
	prefix := fmt.Sprintf("samples-%d/", testenv.FreePort(t))
	expected := filepath.Join(t.TempDir(), "expected.json")
	start := time.Now()
	cmd := exec.Command(testenv.Python(t), append([]string{"testdata/load_file_store.py", srv.URL, prefix, expected}, dirs...)...)
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI=", "MLFLOW_ENABLE_TELEMETRY=false", "DO_NOT_TRACK=true")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load_file_store.py: %v\n%s", err, tail(string(out), 30))
	}
	t.Logf("loader: %s", time.Since(start).Round(time.Millisecond))
	raw, err := os.ReadFile(expected)
	if err != nil {
		t.Fatal(err)
	}
	var l loaded
	if err := json.Unmarshal(raw, &l); err != nil {
		t.Fatal(err)
	}
	l.covers(t)
	want := l.want(t, srv.URL)

	// (a) The source reads back exactly what MLflow's client wrote.
	first := func() *mlflow.Source { return open(t, srv.URL, prefix, true) }
	got, err := dataset.Read(ctx, first())
	if err != nil {
		t.Fatal(err)
	}
	for i := range got.Experiments {
		got.Experiments[i].CreatedAt = time.Time{}
	}
	withoutSchemaProfile(got)
	withoutModelMeta(t, &l, got)
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("the MLflow source differs from what the loader wrote (%s vs %s):\n%s", want.Describe(), got.Describe(), strings.Join(diff, "\n"))
	}

	// (b) MLflow -> Parquet -> a second MLflow server.
	dir := filepath.Join(t.TempDir(), "archive")
	pq, err := pqsink.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := transfer.Copy(ctx, first(), pq, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != len(l.Runs) {
		t.Fatalf("MLflow to Parquet: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	if err := pq.Close(); err != nil {
		t.Fatal(err)
	}
	arch := func() *pqsrc.Source {
		s, err := pqsrc.New(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	res, err := check.Run(ctx, first(), arch(), check.Options{})
	if err != nil || len(res.Differences) > 0 || res.Runs != len(l.Runs) {
		t.Fatalf("check first server vs Parquet: %v, %d runs, %v", err, res.Runs, res.Differences)
	}
	second := testenv.StartMLflow(t)
	dst, err := sink.New(sink.Config{API: mlflowapi.Config{BaseURL: second.URL}, MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = transfer.Copy(ctx, arch(), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != len(l.Runs) {
		t.Fatalf("Parquet to the second server: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	res, err = check.Run(ctx, first(), open(t, second.URL, "", true), check.Options{})
	if err != nil || len(res.Differences) > 0 || res.Runs != len(l.Runs) {
		t.Fatalf("check first server vs second server: %v, %d runs, %v", err, res.Runs, res.Differences)
	}
	// And the second server, read whole, is what the loader wrote (origins
	// and experiments kept through the Parquet archive).
	got, err = dataset.Read(ctx, open(t, second.URL, "", true))
	if err != nil {
		t.Fatal(err)
	}
	got.Experiments = slices.DeleteFunc(got.Experiments, func(e schema.Experiment) bool { return e.Name == "Default" })
	for i := range got.Experiments {
		got.Experiments[i].CreatedAt = time.Time{}
	}
	withoutSchemaProfile(got)
	withoutModelMeta(t, &l, got)
	// Every experiment arrives, the samples' empty ones too (two empty
	// "Default"s, one empty deleted experiment).
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("the second server differs from what the loader wrote:\n%s", strings.Join(diff, "\n"))
	}
	t.Logf("check: %d runs, %d points, no difference; total %s", res.Runs, res.Points, time.Since(start).Round(time.Millisecond))
}

// withoutSchemaProfile clears the dataset inputs' schema and profile,
// which expected.json does not record (they are compared between servers
// by check).
func withoutSchemaProfile(d *dataset.Dataset) {
	for _, r := range d.Runs {
		for i := range r.Run.Inputs {
			r.Run.Inputs[i].Schema, r.Run.Inputs[i].Profile = "", ""
		}
	}
}

// withoutModelMeta removes the logged_model.json files the source adds for
// each MLflow 3 logged model (expected.json counts the models but does not
// hold their metadata), after checking there is one per counted model.
func withoutModelMeta(t *testing.T, l *loaded, d *dataset.Dataset) {
	t.Helper()
	want, got := 0, 0
	for _, r := range l.Runs {
		want += r.Models
	}
	for _, r := range d.Runs {
		r.Files = slices.DeleteFunc(r.Files, func(f dataset.File) bool {
			meta := strings.HasPrefix(f.Path, mlflowapi.LoggedModelsDir) && strings.HasSuffix(f.Path, "/"+mlflowapi.LoggedModelMeta)
			if meta {
				got++
			}
			return meta
		})
	}
	if got != want {
		t.Fatalf("the source lists %d logged models' metadata, the samples hold %d logged models", got, want)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
