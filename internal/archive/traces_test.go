package archive_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
)

func sampleTrace(id string, at time.Time, tag string) schema.Trace {
	t := schema.Trace{Origin: schema.Ref{System: "mlflow", ID: "h:5000/trace/" + id}, ID: id,
		Experiment: schema.Ref{System: "mlflow", ID: "h:5000/1"}, Run: schema.Ref{System: "mlflow", ID: "h:5000/r1"},
		RequestTime: at, Duration: 1500 * time.Millisecond, State: "OK", RequestPreview: `{"q": 1}`,
		ResponsePreview: "2", ClientRequestID: "c-" + id, Tags: []schema.Tag{{Key: "color", Value: tag}, {Key: "mlflow.traceName", Value: "agent"}},
		Metadata:    []schema.Tag{{Key: "mlflow.user", Value: "ann"}},
		Spans:       json.RawMessage(`{"spans": [{"name": "agent", "start_time_unix_nano": 1796057670027918636, "attributes": {"x": "\"ü\""}}]}`),
		Assessments: 1}
	t.Canonicalize()
	return t
}

func readTraces(t *testing.T, dir, exp string) []schema.Trace {
	t.Helper()
	r, err := archive.OpenReader(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := r.Experiment(exp)
	if !ok {
		t.Fatalf("no experiment %s", exp)
	}
	got, err := r.Traces(e)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTracesRoundTrip: an experiment's traces are read back exactly (span
// document byte for byte); a second write merges by origin; the same
// traces again write nothing; a changed experiment row keeps its traces;
// archive check finds the archive intact.
func TestTracesRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	exp := schema.Experiment{Origin: schema.Ref{System: "mlflow", ID: "h:5000/1"}, Name: "e"}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	a, b := sampleTrace("tr-a", t0.Add(time.Second), "blue"), sampleTrace("tr-b", t0, "red")
	b.Run, b.Spans = schema.Ref{}, nil
	session := func(fn func(w *archive.Writer)) {
		w, err := archive.OpenWriter(dir)
		if err != nil {
			t.Fatal(err)
		}
		fn(w)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	put := func(w *archive.Writer, ts ...schema.Trace) {
		if err := w.PutTraces(exp.Origin.String(), ts); err != nil {
			t.Fatal(err)
		}
	}
	session(func(w *archive.Writer) {
		if err := w.PutExperiment(exp); err != nil {
			t.Fatal(err)
		}
		put(w, a)
	})
	if got := readTraces(t, dir, exp.Origin.String()); !reflect.DeepEqual(got, []schema.Trace{a}) {
		t.Fatalf("read back %+v\nwant %+v", got, a)
	}
	a.Tags[0].Value = "green"
	session(func(w *archive.Writer) { put(w, b, a) })
	want := []schema.Trace{b, a} // by request time
	if got := readTraces(t, dir, exp.Origin.String()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after a merge %+v\nwant %+v", got, want)
	}
	before := dataFiles(t, dir)
	session(func(w *archive.Writer) { put(w, a) })
	if after := dataFiles(t, dir); !reflect.DeepEqual(before, after) {
		t.Fatalf("the same traces again wrote files: %v -> %v", before, after)
	}
	exp.Description = "changed"
	session(func(w *archive.Writer) {
		if err := w.PutExperiment(exp); err != nil {
			t.Fatal(err)
		}
	})
	if got := readTraces(t, dir, exp.Origin.String()); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the experiment changed %+v\nwant %+v", got, want)
	}
	if rep, err := archive.Check(dir); err != nil || !rep.OK() {
		t.Fatalf("archive check: %v %+v", err, rep.Problems)
	}
}
