package wandbdir

import (
	"encoding/json"
	"maps"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/sourcetest"
)

// legacyWant is what the hand-written pre-0.10 folder in testdata/legacy
// holds, value for value. Its only user name is wandb-metadata.json's
// "username", the machine's login name: a tag, not the run's user.
func legacyWant(t *testing.T) *dataset.Dataset {
	const runDir = "testdata/legacy/wandb/run-20200102_030405-old0run1"
	exp := local(t, "testdata/legacy/wandb", "legacy")
	start := time.Date(2020, 1, 2, 3, 4, 5, 123000000, time.UTC)
	_, perr := wandbfile.ParseValueJSON("not json at all")
	r := schema.Run{
		Origin: local(t, "testdata/legacy/wandb", "legacy/old0run1"), Experiment: exp,
		Name: "old0run1", Status: schema.StatusFinished,
		Start: start, End: time.UnixMilli(1577934280500).UTC(),
		Tags: []schema.Tag{
			{Key: "wandb.args", Value: `["--lr","0.01"]`}, {Key: "wandb.cpu_count", Value: "8"},
			{Key: "wandb.exit_code", Value: "0"},
			{Key: "wandb.os", Value: "Linux-4.15.0"}, {Key: "wandb.project", Value: "legacy"},
			{Key: "wandb.python", Value: "3.7.4"}, {Key: "wandb.root", Value: "/home/someone/project"},
			{Key: "wandb.run_id", Value: "old0run1"}, {Key: "wandb.sdk_version", Value: "0.9.7"},
			{Key: "wandb.state", Value: "finished"}, {Key: "wandb.username", Value: "someone"},
		},
		Host: "old-box", Program: "train.py", GitCommit: "abc123def456", GitRemote: "https://example.com/repo.git",
		Config:  json.RawMessage(`{"layers":[64,32],"lr":0.01,"optimizer":{"momentum":"NaN","name":"sgd"}}`),
		Summary: json.RawMessage(`{"_runtime":4,"_step":3,"acc":0.25,"best":"Infinity","loss":0.75}`),
		Damage:  []string{"wandb/run-20200102_030405-old0run1/wandb-history.jsonl: line 4: " + perr.Error()},
	}
	m := func(key string, v float64, step, ms int64) schema.Metric {
		return schema.Metric{Key: key, Value: v, Step: step, Time: ms}
	}
	rd := &dataset.RunData{Run: r,
		Metrics: []schema.Metric{
			m("acc", 0.25, 0, 1577934246500), m("loss", 1.5, 0, 1577934246500),
			m("loss", math.NaN(), 1, 1577934247250), m("nested/a", 1, 1, 1577934247250), m("nested/b/c", 2.5, 1, 1577934247250),
			m("flag", 1, 3, 1577934249001), m("loss", 0.75, 3, 1577934249001),
			m("system/cpu", 12.5, 0, 1577934250000), m("system/gpu.0.temp", 40, 0, 1577934250000),
			m("system/cpu", 15, 1, 1577934280500),
		},
		RichValues: []schema.RichValue{
			{Key: "examples", Step: 2, Time: 1577934248000, Type: "image-file",
				JSON:  `{"_type":"image-file","height":2,"path":"media/images/examples_2_abc.png","width":2}`,
				Files: []string{"media/images/examples_2_abc.png"}},
			{Key: "phase", Step: 2, Time: 1577934248000, Type: "string", JSON: `"warmup"`},
		},
		Logs: []schema.LogLine{
			{Stream: schema.Stdout, Line: "epoch 1"}, {Stream: schema.Stdout, Line: "progress 100%"},
			{Stream: schema.Stdout, Line: "öäü done"},
		},
	}
	for _, p := range []string{"config.yaml", "media/images/examples_2_abc.png", "output.log", "wandb-events.jsonl",
		"wandb-history.jsonl", "wandb-metadata.json", "wandb-summary.json"} {
		b, err := os.ReadFile(filepath.Join(runDir, p))
		if err != nil {
			t.Fatal(err)
		}
		rd.Files = append(rd.Files, dataset.File{Path: p, Content: b})
	}
	return &dataset.Dataset{
		Experiments: []schema.Experiment{{Origin: exp, Name: "legacy", CreatedAt: start,
			Tags: []schema.Tag{{Key: "wandb.project", Value: "legacy"}}}},
		Runs: []*dataset.RunData{rd},
	}
}

// TestLegacyFolder reads a pre-0.10 run folder (no .wandb file) and
// compares everything read with what the folder holds.
func TestLegacyFolder(t *testing.T) {
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source {
			src, err := New(Config{Root: "testdata/legacy"})
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		OpenOther: func(t *testing.T) sources.Source { return sourceAt(t, copyTree(t, "testdata/legacy")) },
		Want:      legacyWant(t),
	})
}

// TestLineSplitter feeds console chunks the way output_raw records cut
// them: lines across records, a UTF-8 character split in two, carriage
// returns of progress bars, "\r\n" split across records.
func TestLineSplitter(t *testing.T) {
	type chunk struct {
		text string
		t    int64
	}
	tests := []struct {
		name   string
		chunks []chunk
		want   []schema.LogLine
	}{
		{"whole lines", []chunk{{"a\nb\n", 1}}, []schema.LogLine{{Time: 1, Line: "a"}, {Time: 1, Line: "b"}}},
		{"line across records", []chunk{{"hel", 1}, {"lo", 2}, {"\n", 3}}, []schema.LogLine{{Time: 1, Line: "hello"}}},
		{"split UTF-8", []chunk{{"한\xea", 1}, {"\xb5\xad\n", 2}}, []schema.LogLine{{Time: 1, Line: "한국"}}},
		{"progress bar", []chunk{{"10%\r", 1}, {"50%\r", 2}, {"100%\n", 3}}, []schema.LogLine{{Time: 1, Line: "100%"}}},
		{"CRLF split", []chunk{{"done\r", 1}, {"\nnext\r\n", 2}}, []schema.LogLine{{Time: 1, Line: "done"}, {Time: 2, Line: "next"}}},
		{"unfinished line flushed", []chunk{{"a\npartial", 1}}, []schema.LogLine{{Time: 1, Line: "a"}, {Time: 1, Line: "partial"}}},
		{"empty lines kept", []chunk{{"\n\n", 5}}, []schema.LogLine{{Time: 5}, {Time: 5}}},
		{"invalid UTF-8 at the end", []chunk{{"x\xff\n", 1}}, []schema.LogLine{{Time: 1, Line: "x\uFFFD"}}},
	}
	for _, tt := range tests {
		var got []schema.LogLine
		sp := &lineSplitter{out: func(l schema.LogLine) { got = append(got, l) }}
		for _, c := range tt.chunks {
			sp.write(c.text, c.t)
		}
		sp.flush()
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

// TestStepper checks step assignment: missing steps follow the previous
// one, steps going backwards are dropped and counted.
func TestStepper(t *testing.T) {
	var s stepper
	var got []int64
	for _, r := range []wandbfile.RowValues{{Step: 5, HasStep: true}, {}, {Step: 3, HasStep: true}, {Step: 6, HasStep: true}, {Step: 9, HasStep: true}} {
		if step, ok := s.next(&r); ok {
			got = append(got, step)
		} else {
			got = append(got, -1)
		}
	}
	if want := []int64{5, 6, -1, 6, 9}; !reflect.DeepEqual(got, want) || s.dropped != 1 {
		t.Fatalf("steps %v dropped %d, want %v and 1", got, s.dropped, want)
	}
}

// TestConfigYAMLShapes reads both config.yaml shapes W&B writes.
func TestConfigYAMLShapes(t *testing.T) {
	legacy := "wandb_version: 1\n\n_wandb:\n  desc: null\n  value:\n    cli_version: 0.12.15\nlr:\n  desc: null\n  value: 0.1\nnested:\n  desc: null\n  value:\n    a: [1, 2]\n    1: x\n"
	core := "_wandb:\n    value:\n        cli_version: 0.21.0\nlr:\n    value: 0.1\nnested:\n    value:\n        a:\n        - 1\n        - 2\n        1: x\n"
	for name, text := range map[string]string{"legacy": legacy, "core": core} {
		cfg, internal, err := parseConfigYAML([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := wandbfile.ValueToJSON(cfg), `{"lr":0.1,"nested":{"1":"x","a":[1,2]}}`; got != want {
			t.Errorf("%s: config %s, want %s", name, got, want)
		}
		if m, _ := internal.(map[string]any); m["cli_version"] == nil {
			t.Errorf("%s: _wandb block lost: %v", name, internal)
		}
	}
	if _, _, err := parseConfigYAML([]byte("- a list\n")); err == nil {
		t.Error("a YAML list was accepted as config")
	}
}

// TestMissingPath checks the fatal error for a path that does not exist.
func TestMissingPath(t *testing.T) {
	_, err := New(Config{Root: "testdata/no-such-folder"})
	if err == nil || !strings.Contains(err.Error(), "testdata/no-such-folder does not exist") {
		t.Fatalf("error %v, want one naming the missing path", err)
	}
}

func FuzzConfigYAML(f *testing.F) {
	f.Add([]byte("wandb_version: 1\nlr:\n  desc: null\n  value: 0.1\n"))
	f.Add([]byte("a:\n    value: {b: [1, .nan, .inf]}\n"))
	f.Add([]byte("? [complex, key]\n: 1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, _, err := parseConfigYAML(b)
		if err == nil {
			var v any
			if jerr := json.Unmarshal([]byte(wandbfile.ValueToJSON(cfg)), &v); jerr != nil {
				t.Fatalf("config renders as invalid JSON: %v", jerr)
			}
		}
	})
}

func FuzzSummaryJSON(f *testing.F) {
	f.Add([]byte(`{"loss": NaN, "x": {"_type": "table-file", "path": "media/t.json"}, "big": 1e999}`))
	f.Add([]byte(`{"_wandb": {"runtime": 26}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseSummaryJSON(b)
		if err == nil {
			var v map[string]any
			if jerr := json.Unmarshal([]byte(wandbfile.ValueToJSON(m)), &v); jerr != nil {
				t.Fatalf("summary renders as invalid JSON: %v", jerr)
			}
		}
	})
}

func FuzzMetadataJSON(f *testing.F) {
	f.Add([]byte(`{"startedAt": "2022-04-29T20:19:36.187067", "git": {"remote": "r", "commit": "c"}, "args": ["a"], "gpu_count": 1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseMetadata(b)
	})
}

func FuzzJSONLines(f *testing.F) {
	f.Add([]byte("{\"loss\": 1, \"_step\": 0}\n{\"a\": {\"_type\": \"histogram\", \"bins\": [1,2]}, \"_step\": 1}\nnot json\n"))
	f.Add([]byte("{\"system.cpu\": 1.5, \"_timestamp\": 1e9}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := scanJSONLines(strings.NewReader(string(b)), func(_ int, obj map[string]any, err error) error {
			if err == nil {
				wandbfile.ConvertValues(objectItems(obj), nil)
				eventsToStats(obj)
			}
			return nil
		})
		if err != nil && err != errLineTooLong {
			t.Fatal(err)
		}
	})
}

func FuzzLineSplitter(f *testing.F) {
	f.Add("a\r\nb\rc\n", "\xea\xb5\xad\r")
	f.Fuzz(func(t *testing.T, a, b string) {
		var lines []schema.LogLine
		sp := &lineSplitter{out: func(l schema.LogLine) { lines = append(lines, l) }}
		sp.write(a, 1)
		sp.write(b, 2)
		sp.flush()
		for _, l := range lines {
			if strings.ContainsAny(l.Line, "\n\r") {
				t.Fatalf("line %q holds a line break", l.Line)
			}
		}
	})
}

// TestLegacyStateAndProject reads pre-0.10 run folders of two projects side
// by side: each run lands in the experiment its wandb-metadata.json names
// (not the folder's), with the state and exit code recorded there; a run
// whose state stayed "running" is judged by its silence: live while its
// files and its heartbeatAt are both recent, crashed when either is old (a
// folder copied without its times has new files and an old heartbeat).
func TestLegacyStateAndProject(t *testing.T) {
	const fixture = "testdata/legacy/wandb/run-20200102_030405-old0run1"
	root := t.TempDir()
	old := time.Now().Add(-time.Hour)
	runs := []struct {
		id, project, state string
		exit               any  // nil: no exitcode recorded
		fresh              bool // files written now (else an hour ago)
		beating            bool // heartbeatAt now (else in 2020)
		status             schema.RunStatus
		wantState, code    string
	}{
		{"alpha001", "alpha", "finished", 0, false, false, schema.StatusFinished, "finished", "0"},
		{"beta0001", "beta", "failed", 1, false, false, schema.StatusFailed, "failed", "1"},
		{"beta0002", "beta", "killed", 255, false, false, schema.StatusKilled, "killed", "255"},
		{"beta0003", "beta", "running", nil, false, false, schema.StatusFailed, "crashed", ""},
		{"beta0004", "beta", "running", nil, true, true, schema.StatusRunning, "running", ""},
		{"beta0005", "beta", "running", nil, true, false, schema.StatusFailed, "crashed", ""},
		{"beta0006", "beta", "running", nil, false, true, schema.StatusFailed, "crashed", ""},
	}
	for _, r := range runs {
		dir := filepath.Join(root, "wandb", "run-20200102_030405-"+r.id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"wandb-history.jsonl", "wandb-events.jsonl", "wandb-summary.json", "config.yaml", "output.log"} {
			b, err := os.ReadFile(filepath.Join(fixture, name))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		md := map[string]any{"startedAt": "2020-01-02T03:04:05", "heartbeatAt": "2020-01-02T03:05:00",
			"project": r.project, "state": r.state, "name": "name-" + r.id}
		if r.beating {
			md["heartbeatAt"] = time.Now().UTC().Format("2006-01-02T15:04:05.000000")
		}
		if r.exit != nil {
			md["exitcode"] = r.exit
		}
		b, _ := json.Marshal(md)
		if err := os.WriteFile(filepath.Join(dir, "wandb-metadata.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		if !r.fresh {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if err := os.Chtimes(filepath.Join(dir, e.Name()), old, old); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	src, err := New(Config{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.Read(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	var exps []string
	for _, e := range d.Experiments {
		exps = append(exps, e.Name)
		if e.Origin != local(t, filepath.Join(root, "wandb"), e.Name) {
			t.Errorf("experiment %s has the origin %s", e.Name, e.Origin)
		}
	}
	if want := []string{"alpha", "beta"}; !reflect.DeepEqual(exps, want) {
		t.Errorf("experiments %q, want %q", exps, want)
	}
	got := map[string]schema.Run{}
	for _, rd := range d.Runs {
		got[strings.TrimPrefix(rd.Run.Origin.ID, local(t, filepath.Join(root, "wandb"), "").ID)] = rd.Run
	}
	tagOf := func(r schema.Run, k string) string {
		for _, tg := range r.Tags {
			if tg.Key == k {
				return tg.Value
			}
		}
		return ""
	}
	for _, w := range runs {
		r, ok := got[w.project+"/"+w.id]
		if !ok {
			t.Errorf("run %s/%s not read (got %v)", w.project, w.id, slices.Collect(maps.Keys(got)))
			continue
		}
		if r.Experiment != local(t, filepath.Join(root, "wandb"), w.project) || r.Status != w.status || tagOf(r, "wandb.state") != w.wantState ||
			tagOf(r, "wandb.exit_code") != w.code || r.Name != "name-"+w.id {
			t.Errorf("%s: experiment %s status %s state %q exit code %q name %q; want %s %s %q %q name-%s", w.id,
				r.Experiment.ID, r.Status, tagOf(r, "wandb.state"), tagOf(r, "wandb.exit_code"), r.Name,
				w.project, w.status, w.wantState, w.code, w.id)
		}
	}
}
