package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	sink "github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
	"github.com/runferry/runferry/sources/mlflow"
	"github.com/runferry/runferry/sources/sourcetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var canonical struct {
	once   sync.Once
	prefix string
	err    error
}

// canonicalPrefix writes the canonical dataset into the shared server once,
// through the MLflow sink, and returns its experiment prefix.
func canonicalPrefix(t *testing.T, url string) string {
	canonical.once.Do(func() {
		canonical.prefix = fmt.Sprintf("src-%d/", testenv.FreePort(t))
		dst, err := sink.New(sink.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: canonical.prefix})
		if err != nil {
			canonical.err = err
			return
		}
		rep, err := transfer.Copy(context.Background(), memsrc.New(dataset.Canonical()), dst, transfer.Options{})
		if err == nil && rep.Totals.Failed > 0 {
			err = fmt.Errorf("copy failed: %+v", rep.Runs)
		}
		canonical.err = err
	})
	if canonical.err != nil {
		t.Fatal(canonical.err)
	}
	return canonical.prefix
}

func open(t *testing.T, url, prefix string, deleted bool) *mlflow.Source {
	src, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: url}, ExperimentPrefix: prefix, Deleted: deleted})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestConformance(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix := canonicalPrefix(t, srv.URL)
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source { return open(t, srv.URL, prefix, true) },
		Want: dataset.Canonical(),
		Skip: map[string]string{"OriginsNameTheInstance": "the canonical runs were written by runferry and keep the origins they were copied from on any server; TestNativeConformance covers runs MLflow's own client logged"},
	})
}

// nativePrefix logs runs with MLflow's own client (testdata/native.py: an
// experiment with a parent and a child run) under a fresh prefix, and
// returns the prefix and the ids native.py printed.
// nativeIDs is what testdata/native.py made.
type nativeIDs struct {
	Experiment, Parent, Child string
	Inputs                    []struct {
		Name, Digest, Schema, Profile, Source string
		SourceType                            string `json:"source_type"`
		Tags                                  map[string]string
	}
}

func nativePrefix(t *testing.T, url string) (string, nativeIDs) {
	prefix := fmt.Sprintf("native-%d/", testenv.FreePort(t))
	out, err := exec.Command(testenv.Python(t), "testdata/native.py", url, prefix+"exp").Output()
	if err != nil {
		t.Fatalf("native.py: %v", err)
	}
	var ids nativeIDs
	if err := json.Unmarshal(out[strings.LastIndexByte(strings.TrimSpace(string(out)), '\n')+1:], &ids); err != nil {
		t.Fatalf("native.py printed %q: %v", out, err)
	}
	return prefix, ids
}

// TestNativeConformance runs the suite over runs MLflow's client logged,
// with the same server reached under another name (localhost for
// 127.0.0.1) as the other instance: their origins, and the parent links,
// must name the server they were read from.
func TestNativeConformance(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix, _ := nativePrefix(t, srv.URL)
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source { return open(t, srv.URL, prefix, true) },
		OpenOther: func(t *testing.T) sources.Source {
			return open(t, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), prefix, true)
		},
	})
}

// TestFormerOrigins: a native origin's former origin is the bare id that
// runferry used before origins named the server; a copied origin has none.
func TestFormerOrigins(t *testing.T) {
	src := open(t, "http://Example.COM:80/mlflow/", "", false)
	for _, tt := range []struct {
		ref  schema.Ref
		want []schema.Ref
	}{
		{schema.Ref{System: "mlflow", ID: "example.com/mlflow/3"}, []schema.Ref{{System: "mlflow", ID: "3"}}},
		{schema.Ref{System: "mlflow", ID: "example.com/mlflow/0a1b2c"}, []schema.Ref{{System: "mlflow", ID: "0a1b2c"}}},
		{schema.Ref{System: "mlflow", ID: "other:5000/3"}, nil},
		{schema.Ref{System: "mlflow", ID: "3"}, nil},
		{schema.Ref{System: "wandb", ID: "example.com/mlflow/3"}, nil},
	} {
		if got := src.FormerOrigins(tt.ref); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("FormerOrigins(%s) = %v, want %v", tt.ref, got, tt.want)
		}
	}
}

// TestDeletedLeftOut reads the canonical copy without the deleted option:
// the deleted run is not there, everything else is.
func TestDeletedLeftOut(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	got, err := dataset.Read(context.Background(), open(t, srv.URL, canonicalPrefix(t, srv.URL), false))
	if err != nil {
		t.Fatal(err)
	}
	want := dataset.Canonical()
	want.Runs = want.Runs[:4]
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatal(strings.Join(diff, "\n"))
	}
}

// TestNativeRuns reads runs logged by MLflow's own Python client.
func TestNativeRuns(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix, ids := nativePrefix(t, srv.URL)
	src := open(t, srv.URL, prefix, false)
	got, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	// Native origins name the server: mlflow:HOST:PORT/ID.
	ref := func(id string) schema.Ref {
		return schema.Ref{System: "mlflow", ID: strings.TrimPrefix(srv.URL, "http://") + "/" + id}
	}
	wantExp := []schema.Experiment{{Origin: ref(ids.Experiment), Name: "exp",
		Tags: []schema.Tag{{Key: "team", Value: "native"}}}}
	got.Experiments[0].CreatedAt = wantExp[0].CreatedAt
	if !reflect.DeepEqual(got.Experiments, wantExp) {
		t.Errorf("experiments:\n got %+v\nwant %+v", got.Experiments, wantExp)
	}
	if len(got.Runs) != 2 {
		t.Fatalf("want 2 runs, got %d", len(got.Runs))
	}
	parent, child := got.Run(ref(ids.Parent)), got.Run(ref(ids.Child))
	if parent == nil || child == nil {
		t.Fatalf("runs not found by origin: %+v", got.Describe())
	}
	p := parent.Run
	if p.Name != "parent" || p.Status != schema.StatusFinished || p.Notes != "a note" || p.User == "" || p.Start.IsZero() || p.End.Before(p.Start) {
		t.Errorf("parent run fields: %+v", p)
	}
	wantParams := []schema.Param{{Key: "layers", Value: "3"}, {Key: "lr", Value: "0.1"}}
	if !reflect.DeepEqual(p.Params, wantParams) {
		t.Errorf("params %+v, want %+v", p.Params, wantParams)
	}
	tags := map[string]string{}
	for _, tg := range p.Tags {
		tags[tg.Key] = tg.Value
	}
	for _, k := range []string{"mlflow.runName", "mlflow.user", "mlflow.note.content", "mlflow.source.name"} {
		if _, ok := tags[k]; ok {
			t.Errorf("tag %s should be a run field, not a tag", k)
		}
	}
	if _, asTag := tags["mlflow.inputs.datasets"]; tags["stage"] != "test" || asTag {
		t.Errorf("tags %v", tags)
	}
	// Dataset inputs are inputs, exactly as MLflow's client reads them.
	var wantInputs []schema.DatasetInput
	for _, in := range ids.Inputs {
		d := schema.DatasetInput{Name: in.Name, Digest: in.Digest, SourceType: in.SourceType, Source: in.Source, Schema: in.Schema, Profile: in.Profile}
		for k, v := range in.Tags {
			d.Tags = append(d.Tags, schema.Tag{Key: k, Value: v})
		}
		wantInputs = append(wantInputs, d)
	}
	if len(wantInputs) != 1 || wantInputs[0].Name != "digits" || wantInputs[0].Schema == "" || wantInputs[0].Profile == "" ||
		fmt.Sprint(wantInputs[0].Tags) != "[{mlflow.data.context training}]" {
		t.Fatalf("native.py logged unexpected inputs %+v", wantInputs)
	}
	if !reflect.DeepEqual(p.Inputs, wantInputs) {
		t.Errorf("dataset inputs\n got %+v\nwant %+v", p.Inputs, wantInputs)
	}
	base := int64(1_700_000_000_000)
	wantLoss := []schema.Metric{
		{Key: "loss", Value: 1, Step: 0, Time: base},
		{Key: "loss", Value: 0.5, Step: 1, Time: base + 1},
		{Key: "loss", Value: 0.5, Step: 2, Time: 1_699_999_999_000},
		{Key: "loss", Value: 1.0 / 3, Step: 2, Time: base + 2},
		{Key: "loss", Value: 0.25, Step: 3, Time: base + 3},
		{Key: "loss", Value: 0.2, Step: 4, Time: base + 4},
	}
	if !reflect.DeepEqual(parent.Metrics, wantLoss) {
		t.Errorf("metrics\n got %+v\nwant %+v", parent.Metrics, wantLoss)
	}
	if len(parent.Files) != 1 || parent.Files[0].Path != "docs/notes.txt" || string(parent.Files[0].Content) != "hello\n" {
		t.Errorf("files %+v", parent.Files)
	}
	if child.Run.Parent != p.Origin || child.Run.Name != "child" ||
		!reflect.DeepEqual(child.Metrics, []schema.Metric{{Key: "acc", Value: 0.9, Step: 1, Time: base + 100}}) {
		t.Errorf("child %+v metrics %+v", child.Run, child.Metrics)
	}
}
