package dataset

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/runferry/runferry/schema"
)

// Canonical returns the fixture every conformance suite round-trips: two
// experiments and five runs that between them hold every feature of the
// schema and the awkward cases (NaN and ±Inf, unicode keys, several points
// at one step, a run larger than any sink's batch limit, an empty run, a
// nested run, damage notes, rich values, logs and files, an empty file).
// Each call returns a fresh copy.
func Canonical() *Dataset {
	t0 := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	expA := schema.Ref{System: "memory", ID: "exp-vision"}
	expB := schema.Ref{System: "memory", ID: "exp-ünïcode"}
	d := &Dataset{Experiments: []schema.Experiment{
		{Origin: expA, Name: "vision", Description: "image models",
			Tags: []schema.Tag{{Key: "team", Value: "perception"}}, CreatedAt: t0.Add(-time.Hour)},
		{Origin: expB, Name: "日本語 experiment / ünïcode", CreatedAt: t0.Add(-2 * time.Hour)},
	}}

	big := &RunData{Run: schema.Run{
		Origin: schema.Ref{System: "memory", ID: "run-big"}, Experiment: expA,
		Name: "resnet-50 sweep", User: "alice", Status: schema.StatusFinished,
		Start: t0, End: t0.Add(90*time.Minute + 123*time.Millisecond),
		Params: []schema.Param{{Key: "lr", Value: "0.001"}, {Key: "optimizer", Value: "adam"}},
		Tags:   []schema.Tag{{Key: "mlflow.source.type", Value: "LOCAL"}, {Key: "stage", Value: "dev"}},
		Labels: []string{"baseline", "gpu"}, Notes: "first try\nwith two lines",
		Group: "sweep-1", JobType: "train", Host: "node-7", Program: "train.py",
		GitCommit: "0123456789abcdef0123456789abcdef01234567", GitRemote: "https://example.com/repo.git",
		Config:  json.RawMessage(`{"batch":64,"model":{"depth":50,"name":"resnet"},"lrs":[0.1,0.01]}`),
		Summary: json.RawMessage(`{"loss":0.25,"acc":"NaN"}`),
	}}
	for step := int64(0); step < 2500; step++ {
		big.Metrics = append(big.Metrics, schema.Metric{Key: "loss", Value: 1 / float64(step+1), Step: step, Time: ms(time.Duration(step) * time.Second)})
		if step%10 == 0 {
			big.Metrics = append(big.Metrics, schema.Metric{Key: "val/acc", Value: float64(step) / 2500, Step: step, Time: ms(time.Duration(step) * time.Second)})
		}
	}
	big.Metrics = append(big.Metrics,
		schema.Metric{Key: "system/gpu.0.temp", Value: 71.5, Step: 0, Time: ms(time.Second)},
		schema.Metric{Key: "system/gpu.0.temp", Value: 73, Step: 0, Time: ms(2 * time.Second)},
		schema.Metric{Key: "system/gpu.0.temp", Value: 73, Step: 0, Time: ms(3 * time.Second)})
	big.RichValues = []schema.RichValue{
		{Key: "examples", Step: 10, Time: ms(10 * time.Second), Type: "image-file",
			JSON: `{"_type":"image-file","path":"media/images/examples_10_abc.png","size":68}`, Files: []string{"media/images/examples_10_abc.png"}},
		{Key: "phase", Step: 11, Time: ms(11 * time.Second), Type: "string", JSON: `"warmup"`},
	}
	big.Logs = []schema.LogLine{
		{Time: ms(0), Stream: schema.Stdout, Line: "epoch 1"},
		{Time: ms(time.Second), Stream: schema.Stderr, Line: "warning: slow  data loader\t(tab)"},
		{Time: ms(2 * time.Second), Stream: schema.Stdout, Line: "한국어 출력 ✓"},
		{Time: ms(3 * time.Second), Stream: schema.Stdout, Line: ""},
	}
	png := make([]byte, 68)
	for i := range png {
		png[i] = byte(i * 7)
	}
	big.Files = []File{
		{Path: "config.yaml", Content: []byte("lr: 0.001\n")},
		{Path: "empty.txt", Content: []byte{}},
		{Path: "media/images/examples_10_abc.png", Content: png},
		{Path: "model/weights.bin", Content: []byte(strings.Repeat("w", 70_000))},
	}

	special := &RunData{Run: schema.Run{
		Origin: schema.Ref{System: "memory", ID: "run-special"}, Experiment: expA,
		Name: "special values", Status: schema.StatusFailed, Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour),
		Params: []schema.Param{{Key: "long", Value: strings.Repeat("x", 600)}, {Key: "Ω/ключ", Value: "värde"}},
		Parent: big.Run.Origin,
		Damage: []string{"run-special.wandb: truncated record at offset 1234"},
	}}
	special.Metrics = []schema.Metric{
		{Key: "inf", Value: math.Inf(1), Step: 0, Time: ms(time.Hour)},
		{Key: "inf", Value: math.Inf(-1), Step: 1, Time: ms(time.Hour + time.Second)},
		{Key: "nan", Value: math.NaN(), Step: -5, Time: ms(time.Hour)},
		{Key: "neg-zero", Value: math.Copysign(0, -1), Step: 3, Time: 0},
		{Key: "tiny", Value: math.SmallestNonzeroFloat64, Step: math.MaxInt64, Time: ms(time.Hour)},
		{Key: "精度/val", Value: 0.5, Step: 0, Time: ms(time.Hour)},
		{Key: "精度/val", Value: 0.75, Step: 0, Time: ms(time.Hour)},
	}

	empty := &RunData{Run: schema.Run{
		Origin: schema.Ref{System: "memory", ID: "run-empty"}, Experiment: expA,
		Name: "", Status: schema.StatusKilled, Start: t0.Add(3 * time.Hour), End: t0.Add(3 * time.Hour),
	}}
	running := &RunData{Run: schema.Run{
		Origin: schema.Ref{System: "memory", ID: "run-running"}, Experiment: expB,
		Name: "still going", Status: schema.StatusRunning, Start: t0.Add(4 * time.Hour),
	}}
	for i := range 30 {
		running.Metrics = append(running.Metrics, schema.Metric{Key: fmt.Sprintf("k%02d", i%3), Value: float64(i), Step: int64(i / 3), Time: ms(4*time.Hour + time.Duration(i)*time.Millisecond)})
	}
	deleted := &RunData{Run: schema.Run{
		Origin: schema.Ref{System: "memory", ID: "run-deleted"}, Experiment: expB,
		Name: "deleted one", Status: schema.StatusFinished, Start: t0.Add(5 * time.Hour), End: t0.Add(6 * time.Hour),
		Deleted: true, Tags: []schema.Tag{{Key: "note", Value: "tab\there"}},
	}, Metrics: []schema.Metric{{Key: "x", Value: 1, Step: 0, Time: ms(5 * time.Hour)}}}

	d.Runs = []*RunData{big, special, empty, running, deleted}
	return d
}
