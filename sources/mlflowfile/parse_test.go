package mlflowfile

import (
	"math"
	"strings"
	"testing"
)

func TestParseMetricLine(t *testing.T) {
	for _, tt := range []struct {
		line  string
		model bool
		want  metricLine
		err   string
	}{
		{line: "1656994881395 0.5", want: metricLine{Time: 1656994881395, Value: 0.5}},                // MLflow's first versions
		{line: "1656994881395 1e-05 7", want: metricLine{Time: 1656994881395, Value: 1e-05, Step: 7}}, // the usual
		{line: "1 -inf -2", want: metricLine{Time: 1, Value: math.Inf(-1), Step: -2}},
		// a point logged against a dataset: the step is the third field
		// (MLflow's own reader takes 0 there)
		{line: "5 0.25 3 eval 1a2b3c", want: metricLine{Time: 5, Value: 0.25, Step: 3, DatasetName: "eval", DatasetDigest: "1a2b3c"}},
		{line: "5 0.25 3 eval set 1a2b3c", want: metricLine{Time: 5, Value: 0.25, Step: 3, DatasetName: "eval set", DatasetDigest: "1a2b3c"}},
		{line: "9 0.1 0 370084186acf42c1ba19ea7f3f2ff468", model: true, want: metricLine{Time: 9, Value: 0.1, RunID: "370084186acf42c1ba19ea7f3f2ff468"}},
		{line: "9 0.1 2 r1 ds d1", model: true, want: metricLine{Time: 9, Value: 0.1, Step: 2, RunID: "r1", DatasetName: "ds", DatasetDigest: "d1"}},
		{line: "1 2 3 4", err: "4 fields, want 2, 3 or 5"},
		{line: "1", err: "1 fields"},
		{line: "1 2 3", model: true, err: "3 fields, want 4 or 6"},
		{line: "x 0.5 1", err: `timestamp "x"`},
		{line: "1 zero 1", err: `value "zero"`},
		{line: "1 0.5 1.5", err: `step "1.5"`},
	} {
		got, err := parseMetricLine([]byte(tt.line), tt.model)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.line, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %+v, %v; want %+v", tt.line, got, err, tt.want)
		}
	}
	got, err := parseMetricLine([]byte("1 nan 0"), false)
	if err != nil || !math.IsNaN(got.Value) {
		t.Errorf("nan: %+v, %v", got, err)
	}
}

func TestReadMetaDamage(t *testing.T) {
	var m runMeta
	err := decodeMeta("mlruns/0/abc/meta.yaml", []byte("run_id: abc\nstatus: 3\nstart_time: [1\n"), &m)
	if err == nil || !strings.Contains(err.Error(), "mlruns/0/abc/meta.yaml") || !strings.Contains(err.Error(), "line") {
		t.Errorf("damaged meta.yaml: %v; want the file and the line", err)
	}
	if err := decodeMeta("m", []byte("  \n"), &m); err != errNoMeta {
		t.Errorf("empty meta.yaml: %v, want errNoMeta", err)
	}
	var e experimentMeta
	if err := decodeMeta("m", []byte("experiment_id: 3\nname: x\ncreation_time: null\n"), &e); err != nil || e.ExperimentID != "3" || e.CreationTime != nil {
		t.Errorf("1.x integer id: %+v, %v", e, err)
	}
	if err := decodeMeta("m", []byte("experiment_id: [3]\n"), &e); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("a sequence id: %v", err)
	}
}

// FuzzMetricLine: any bytes parse or fail without panic, and what parses
// has its step only from a third field.
func FuzzMetricLine(f *testing.F) {
	for _, s := range []string{"1 0.5", "1 0.5 2", "1 nan 2 d x", "1 1 1 r", "1 1 1 r d x", "", "1 2 3 4 5 6 7"} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, line []byte, model bool) {
		m, err := parseMetricLine(line, model)
		if err == nil && len(strings.Fields(string(line))) < 3 && m.Step != 0 {
			t.Fatalf("%q: step %d from fewer than 3 fields", line, m.Step)
		}
	})
}

// FuzzMeta: any bytes decode into every meta.yaml shape or fail with an
// error naming the file, never panic.
func FuzzMeta(f *testing.F) {
	for _, s := range []string{
		"artifact_location: file:///x\nexperiment_id: '1'\nlifecycle_stage: active\nname: a\n",
		"run_id: abc\nexperiment_id: 0\nstatus: 3\nstart_time: 1\nend_time: null\ntags: []\n",
		"source_type: DATASET\nsource_id: abc\ntags:\n  mlflow.data.context: eval\n",
		"model_id: m-1\nstatus: 2\nmodel_type: null\n", "name: m\nversion: 1\ncurrent_stage: None\n",
		"trace_id: tr-1\nrequest_time: '2026-01-01T00:00:00Z'\nexecution_duration_ms: 5\n", "{", "- a\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, v := range []any{&experimentMeta{}, &runMeta{}, &datasetMeta{}, &linkMeta{}, &modelMeta{},
			&registeredModelMeta{}, &modelVersionMeta{}, &traceMeta{}} {
			if err := decodeMeta("some/meta.yaml", b, v); err != nil && err != errNoMeta && !strings.Contains(err.Error(), "some/meta.yaml") {
				t.Fatalf("error without the file: %v", err)
			}
		}
		var m runMeta
		if decodeMeta("m", b, &m) == nil {
			_, _ = runStatus(m.Status)
		}
	})
}

func TestInspect(t *testing.T) {
	var out strings.Builder
	n, err := Inspect(&out, strings.NewReader("1 0.5 0\n\n2 nan 1 ds dg\n3 oops 2\n4 inf\n"), "mlruns/0/abc/metrics/loss")
	want := `{"line":1,"timestamp":1,"value":0.5,"step":0}
{"line":3,"timestamp":2,"value":"NaN","step":1,"dataset_name":"ds","dataset_digest":"dg"}
{"line":4,"damage":"value \"oops\": not a number"}
{"line":5,"timestamp":4,"value":"Infinity","step":0}
`
	if err != nil || n != 1 || out.String() != want {
		t.Errorf("Inspect: %d damaged, %v\n%s\nwant\n%s", n, err, out.String(), want)
	}
	out.Reset()
	if n, err := Inspect(&out, strings.NewReader("1 0.5 0 run1\n"), "mlruns/0/models/m-1/metrics/mse"); err != nil || n != 0 ||
		!strings.Contains(out.String(), `"run_id":"run1"`) {
		t.Errorf("a logged model's metric file: %d, %v, %s", n, err, out.String())
	}
	if !IsMetricFile("mlruns/0/abc/metrics/train/loss") || IsMetricFile("wandb/run-1/run-1.wandb") {
		t.Errorf("IsMetricFile")
	}
}
