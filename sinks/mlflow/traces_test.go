package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sinks/parquetdir"
	"github.com/runferry/runferry/sources"
	mlsrc "github.com/runferry/runferry/sources/mlflow"
	pqsrc "github.com/runferry/runferry/sources/parquetdir"
)

// traceDump is one trace as testdata/mlflow/dump_traces.py prints it: as
// MLflow's own Python client reads it, spans included.
type traceDump struct {
	TraceID     string            `json:"trace_id"`
	RequestTime int64             `json:"request_time"`
	Duration    int64             `json:"execution_duration"`
	State       string            `json:"state"`
	Request     *string           `json:"request_preview"`
	Response    *string           `json:"response_preview"`
	Tags        map[string]string `json:"tags"`
	Metadata    map[string]string `json:"metadata"`
	RunID       *string           `json:"run_id"`
	RunName     *string           `json:"run_name"`
	Spans       []json.RawMessage `json:"spans"`
}

// dumpTraces reads the traces of the experiments of the server at url whose
// names start with prefix, keyed by name without it (dump_traces.py, run in
// py).
func dumpTraces(t *testing.T, py *testenv.PyScripts, url, prefix string) map[string][]traceDump {
	t.Helper()
	var d map[string][]traceDump
	if err := json.Unmarshal(py.Run(t, mlflowScript(t, "dump_traces.py"), url, prefix), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// mlflowScript is the path of the script name of testdata/mlflow.
func mlflowScript(t *testing.T, name string) string {
	return filepath.Join(testenv.RepoRoot(t), "testdata", "mlflow", name)
}

// expectedTraces is what a copy of the traces src must look like in the
// MLflow server dst as MLflow's client reads it: every trace of src with
// its id, times, state, previews, metadata, tags and spans, linked to the
// destination's run of the same name, plus runferry's bookkeeping tags;
// the server's own storage tags (artifact location, spans location) are
// left out on both sides.
func expectedTraces(t *testing.T, srcURL string, src, dst map[string][]traceDump) map[string][]traceDump {
	t.Helper()
	inst, err := mlflowconv.Instance(srcURL)
	if err != nil {
		t.Fatal(err)
	}
	dstRunIDs := map[string]string{} // run name -> destination run id
	for _, ts := range dst {
		for _, x := range ts {
			if x.RunName != nil {
				dstRunIDs[*x.RunName] = *x.RunID
			}
		}
	}
	want := map[string][]traceDump{}
	for exp, ts := range src {
		for _, x := range ts {
			w := x
			w.Tags = map[string]string{"runferry.origin": "mlflow:" + inst + "/trace/" + x.TraceID, "mlflow.runferry.complete": "true"}
			for k, v := range x.Tags {
				w.Tags[k] = v
			}
			w.Metadata = map[string]string{}
			for k, v := range x.Metadata {
				w.Metadata[k] = v
			}
			if x.RunID != nil {
				w.Tags["runferry.source_run"] = "mlflow:" + inst + "/" + *x.RunID
				id, ok := dstRunIDs[*x.RunName]
				if !ok {
					t.Fatalf("the destination has no trace linked to a run named %s", *x.RunName)
				}
				w.RunID = &id
				w.Metadata["mlflow.sourceRun"] = id
			}
			want[exp] = append(want[exp], w)
		}
	}
	return withoutStorageTags(want)
}

func withoutStorageTags(d map[string][]traceDump) map[string][]traceDump {
	for _, ts := range d {
		for _, x := range ts {
			delete(x.Tags, mlflowapi.TraceTagArtifactLocation)
			delete(x.Tags, mlflowapi.TraceTagSpansLocation)
		}
	}
	return d
}

func sameTraces(t *testing.T, what string, want, got map[string][]traceDump) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		w, _ := json.MarshalIndent(want, "", "  ")
		g, _ := json.MarshalIndent(got, "", "  ")
		t.Fatalf("%s: the destination's traces differ\nwant %s\ngot  %s", what, w, g)
	}
}

// TestTracesCopied: traces made with MLflow's own tracing client (in a run
// and outside, a failed one, a tagged one, one in an experiment without
// runs) arrive in another MLflow server as MLflow's client reads them,
// spans byte for byte as JSON values, each linked to the destination's
// copy of its run; a second copy creates no duplicate; check compares the
// traces and sees a tag changed in the destination.
func TestTracesCopied(t *testing.T) {
	t.Parallel() // no package variable set; its own names on shared servers (docs/TESTING.md, tt14)
	srcSrv, dstSrv, p := testenv.SharedMLflow(t), testenv.SharedMLflowOther(t), tracesPrefix(t)
	py := testenv.StartPyScripts(t)
	py.Run(t, mlflowScript(t, "make_traces.py"), srcSrv.URL, p)
	srcDump := dumpTraces(t, py, srcSrv.URL, p)
	if len(srcDump["traces-src"]) != 3 || len(srcDump["traces-only"]) != 1 {
		t.Fatalf("make_traces.py made %+v", srcDump)
	}
	open := func() (sources.Source, sinks.Sink) {
		dst, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: dstSrv.URL}, ExperimentPrefix: p})
		if err != nil {
			t.Fatal(err)
		}
		return mustSource(t, srcSrv.URL, p), dst
	}
	src, dst := open()
	rep := copyTraces(t, src, dst)
	if rep.Traces == nil || rep.Traces.Copied != 4 || rep.Traces.Failed != 0 {
		t.Fatalf("report traces = %+v, want 4 copied", rep.Traces)
	}
	if len(rep.Coverage) != 0 {
		t.Errorf("report coverage %v, want none", rep.Coverage)
	}
	got := withoutStorageTags(dumpTraces(t, py, dstSrv.URL, p))
	want := expectedTraces(t, srcSrv.URL, srcDump, got)
	sameTraces(t, "first copy", want, got)
	checkTraces(t, srcSrv.URL, dstSrv.URL, p, nil)

	src, dst = open()
	rep = copyTraces(t, src, dst)
	if rep.Traces == nil || rep.Traces.Copied != 4 {
		t.Fatalf("second copy: report traces = %+v, want 4 found again", rep.Traces)
	}
	sameTraces(t, "second copy", want, withoutStorageTags(dumpTraces(t, py, dstSrv.URL, p)))

	// What a user changes in the destination, check sees; a copy puts it back.
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: dstSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	tagged := srcDump["traces-src"][2].TraceID
	for k, v := range map[string]string{"color": "red", "extra": "x"} {
		if err := api.SetTraceTag(context.Background(), tagged, k, v); err != nil {
			t.Fatal(err)
		}
	}
	inst, _ := mlflowconv.Instance(srcSrv.URL)
	checkTraces(t, srcSrv.URL, dstSrv.URL, p, []string{
		`mlflow:` + inst + `/trace/` + tagged + `: trace tags: source [{"Key":"color","Value":"blue"},{"Key":"mlflow.traceName","Value":"outside"}], destination [{"Key":"color","Value":"red"},{"Key":"extra","Value":"x"},{"Key":"mlflow.traceName","Value":"outside"}]`,
	})
	src, dst = open()
	copyTraces(t, src, dst)
	checkTraces(t, srcSrv.URL, dstSrv.URL, p, nil)
	sameTraces(t, "copy after a change", want, withoutStorageTags(dumpTraces(t, py, dstSrv.URL, p)))

	// A copy interrupted between a trace's creation and its spans (no
	// runferry.complete yet, no traces.json) is finished by the next copy.
	lost := srcDump["traces-src"][0].TraceID
	files, _ := filepath.Glob(filepath.Join(dstSrv.ArtifactDir, "*", "traces", lost, "artifacts", "traces.json"))
	if len(files) != 1 {
		t.Fatalf("span documents of %s in the destination: %v", lost, files)
	}
	if err := os.Remove(files[0]); err != nil {
		t.Fatal(err)
	}
	if err := api.DeleteTraceTag(context.Background(), lost, mlflow.TagTraceComplete); err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(context.Background(), mustSource(t, srcSrv.URL, p), mustSource(t, dstSrv.URL, p), check.Options{Filter: tracesFilter})
	if err != nil || len(res.Differences) != 1 || res.Differences[0].What != "trace spans" || res.Differences[0].Got != "" ||
		res.Differences[0].Run != "mlflow:"+inst+"/trace/"+lost {
		t.Fatalf("check with a trace's spans lost: %v, differences %v; want the spans of %s", err, res.Differences, lost)
	}
	src, dst = open()
	copyTraces(t, src, dst)
	sameTraces(t, "copy after an interrupted one", want, withoutStorageTags(dumpTraces(t, py, dstSrv.URL, p)))

	// Traces whose run the destination does not get (deleted in the
	// source, so not copied) lose the link to it, counted, and keep its
	// origin: check finds nothing missing.
	srcAPI, err := mlflowapi.New(mlflowapi.Config{BaseURL: srcSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if err := srcAPI.DeleteRun(context.Background(), *srcDump["traces-src"][0].RunID); err != nil {
		t.Fatal(err)
	}
	src, _ = open()
	again, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: dstSrv.URL}, ExperimentPrefix: p + "again/"})
	if err != nil {
		t.Fatal(err)
	}
	rep = copyTraces(t, src, again)
	if rep.Traces == nil || rep.Traces.Copied != 4 || rep.Coverage[mlflow.CoverageTraceRunLinks] != 2 {
		t.Fatalf("copy of traces whose run was deleted: traces %+v, coverage %v; want 4 copied, 2 links counted", rep.Traces, rep.Coverage)
	}
	for _, x := range dumpTraces(t, py, dstSrv.URL, p)["again/traces-src"] {
		if x.RunID != nil || x.Metadata["mlflow.sourceRun"] != "" || x.TraceID == srcDump["traces-src"][0].TraceID {
			t.Errorf("a trace copied beside its first copy links run %v (metadata %q) or reuses the taken id %s", x.RunID, x.Metadata["mlflow.sourceRun"], x.TraceID)
		}
	}
	src, _ = open()
	res, err = check.Run(context.Background(), src, mustSource(t, dstSrv.URL, p+"again/"), check.Options{Filter: tracesFilter})
	if err != nil || res.Traces != 4 || len(res.Differences) != 0 {
		t.Fatalf("check against the copy without runs: %v, %d traces, differences %v", err, res.Traces, res.Differences)
	}

	// A destination without traces counts them as not copied.
	src, _ = open()
	rep, err = transfer.Copy(context.Background(), src, memory.New(sinks.Limits{}), transfer.Options{Filter: tracesFilter})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Coverage[transfer.CoverageTracesNotCopied]; n != 4 || rep.Traces != nil {
		t.Errorf("copy to a sink without traces: coverage %v, traces %+v; want 4 counted as not copied", rep.Coverage, rep.Traces)
	}
}

// tracesPrefix is the experiment prefix of a traces test on the shared
// servers: its own, so that tests sharing them keep apart.
func tracesPrefix(t *testing.T) string {
	return fmt.Sprintf("%s-%d/", t.Name(), testenv.FreePort(t))
}

// tracesFilter selects the experiments make_traces.py writes. The traces
// tests copy and check with it so that their registry is limited to models
// with versions from those experiments' runs (none): the source server is
// shared, and its registry holds the models of other tests.
var tracesFilter = transfer.Filter{Include: []string{"traces-src", "traces-only"}}

// copyTraces is copyJob with tracesFilter.
func copyTraces(t *testing.T, src sources.Source, dst sinks.Sink) *transfer.Report {
	t.Helper()
	return copyJobWith(t, src, dst, transfer.Options{Concurrency: 2, Filter: tracesFilter})
}

// mustSource reads the experiments of the MLflow server at url whose names
// start with prefix.
func mustSource(t *testing.T, url, prefix string) *mlsrc.Source {
	t.Helper()
	s, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkTraces runs check (with tracesFilter) from the experiments under
// prefix of the MLflow server src to those of dst and compares its
// differences with want.
func checkTraces(t *testing.T, src, dst, prefix string, want []string) {
	t.Helper()
	res, err := check.Run(context.Background(), mustSource(t, src, prefix), mustSource(t, dst, prefix), check.Options{Filter: tracesFilter})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Differences {
		got = append(got, d.String())
	}
	if res.Traces != 4 || !reflect.DeepEqual(got, want) {
		t.Fatalf("check: %d traces compared, differences\n%s\nwant 4 traces and\n%s", res.Traces, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestTracesThroughArchive: traces copied from an MLflow server into a
// Parquet archive are in its traces table as DuckDB reads it (one row per
// trace, the span document as given), check finds the archive equal to
// the server, and a restore into another server gives MLflow's client the
// source's traces, linked to the restored runs; a second restore creates
// nothing.
func TestTracesThroughArchive(t *testing.T) {
	t.Parallel() // no package variable set; its own names on shared servers (docs/TESTING.md, tt14)
	srcSrv, dstSrv, p := testenv.SharedMLflow(t), testenv.SharedMLflowOther(t), tracesPrefix(t)
	py := testenv.StartPyScripts(t)
	made := py.Run(t, mlflowScript(t, "make_traces.py"), srcSrv.URL, p)
	srcDump := dumpTraces(t, py, srcSrv.URL, p)
	dir := filepath.Join(t.TempDir(), "archive")
	open := func() *mlsrc.Source { return mustSource(t, srcSrv.URL, p) }
	pq, err := parquetdir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep := copyTraces(t, open(), pq)
	if err := pq.Close(); err != nil {
		t.Fatal(err)
	}
	if rep.Traces == nil || rep.Traces.Copied != 4 || len(rep.Coverage) != 0 {
		t.Fatalf("copy into the archive: traces %+v, coverage %v; want 4 copied", rep.Traces, rep.Coverage)
	}

	// DuckDB reads the traces table: each source trace once, its run's
	// origin, and spans equal to what MLflow's client reads.
	inst, err := mlflowconv.Instance(srcSrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var ids struct {
		Run    string   `json:"run"`
		Traces []string `json:"traces"`
	}
	lines := strings.Split(strings.TrimSpace(string(made)), "\n") // MLflow prints links before the JSON
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ids); err != nil {
		t.Fatal(err)
	}
	script := `
import duckdb, json, sys
rows = duckdb.sql("SELECT trace, trace_id, run, state, spans FROM read_parquet('" + sys.argv[1] + "/traces/*/*.parquet') ORDER BY trace").fetchall()
print(json.dumps([{"trace": r[0], "trace_id": r[1], "run": r[2], "state": r[3], "spans": json.loads(r[4])["spans"]} for r in rows], sort_keys=True))
`
	out, err := exec.Command(testenv.Python(t), "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("duckdb: %v", err)
	}
	type row struct {
		Trace   string            `json:"trace"`
		TraceID string            `json:"trace_id"`
		Run     string            `json:"run"`
		State   string            `json:"state"`
		Spans   []json.RawMessage `json:"spans"`
	}
	var got []row
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	var want []row
	for _, ts := range srcDump {
		for _, x := range ts {
			r := row{Trace: "mlflow:" + inst + "/trace/" + x.TraceID, TraceID: x.TraceID, State: x.State, Spans: x.Spans}
			if x.RunID != nil {
				r.Run = "mlflow:" + inst + "/" + ids.Run
			}
			want = append(want, r)
		}
	}
	slices.SortFunc(want, func(a, b row) int { return strings.Compare(a.Trace, b.Trace) })
	if !reflect.DeepEqual(normJSON(t, want), normJSON(t, got)) {
		t.Fatalf("the traces table as DuckDB reads it\n got %s\nwant %s", normJSON(t, got), normJSON(t, want))
	}

	pqs, err := pqsrc.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(context.Background(), open(), pqs, check.Options{Filter: tracesFilter})
	if err != nil || res.Traces != 4 || len(res.Differences) != 0 {
		t.Fatalf("check server against archive: %v, %d traces, differences %v", err, res.Traces, res.Differences)
	}

	restore := func() *transfer.Report {
		src, err := pqsrc.New(dir, 0)
		if err != nil {
			t.Fatal(err)
		}
		dst, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: dstSrv.URL}, ExperimentPrefix: p})
		if err != nil {
			t.Fatal(err)
		}
		return copyTraces(t, src, dst)
	}
	if rep := restore(); rep.Traces == nil || rep.Traces.Copied != 4 || len(rep.Coverage) != 0 {
		t.Fatalf("restore: traces %+v, coverage %v", rep.Traces, rep.Coverage)
	}
	restored := withoutStorageTags(dumpTraces(t, py, dstSrv.URL, p))
	sameTraces(t, "restore", expectedTraces(t, srcSrv.URL, srcDump, restored), restored)
	restore()
	sameTraces(t, "second restore", expectedTraces(t, srcSrv.URL, srcDump, restored), withoutStorageTags(dumpTraces(t, py, dstSrv.URL, p)))
	checkTraces(t, srcSrv.URL, dstSrv.URL, p, nil)

	// A damaged traces file is a difference naming it, never read as data.
	files, _ := filepath.Glob(filepath.Join(dir, "traces", "*", "*.parquet"))
	if len(files) != 2 {
		t.Fatalf("traces files %v, want one per experiment with traces", files)
	}
	body, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	body[len(body)/2] ^= 0x20
	if err := os.WriteFile(files[0], body, 0o644); err != nil {
		t.Fatal(err)
	}
	pqs, err = pqsrc.New(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err = check.Run(context.Background(), open(), pqs, check.Options{Filter: tracesFilter})
	if err != nil {
		t.Fatal(err)
	}
	unreadable := 0
	for _, d := range res.Differences {
		if d.What == "destination: traces unreadable" && strings.Contains(d.Got, files[0]) {
			unreadable++
		}
	}
	if unreadable != 1 {
		t.Fatalf("check with a damaged traces file: differences %v; want one naming %s", res.Differences, files[0])
	}
}

// normJSON encodes v with its JSON values re-encoded in one form.
func normJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	if err := d.Decode(&x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}
