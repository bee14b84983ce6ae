package archive_test

import (
	"encoding/json"
	"time"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// v2Dataset is the data of testdata/archive/v2, an archive of format
// version 2 written by runferry before the model registry (commit 74aa9cc
// of main, by TestGenerateV2 in a copy of that tree holding this file).
// Kept apart from the canonical dataset so the archive stays its copy.
func v2Dataset() *dataset.Dataset {
	t0 := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	ms := func(d time.Duration) int64 { return t0.Add(d).UnixMilli() }
	exp := schema.Ref{System: "mlflow", ID: "old.example:5000/7"}
	d := &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "legacy", Description: "before format 3",
		Tags: []schema.Tag{{Key: "team", Value: "risk"}}, CreatedAt: t0.Add(-time.Hour)}}}
	for i, id := range []string{"r1", "r2"} {
		r := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "mlflow", ID: "old.example:5000/" + id}, Experiment: exp,
			Name: "train-" + id, User: "alice", Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Duration(i+1) * time.Minute),
			Params:  []schema.Param{{Key: "lr", Value: "0.1"}},
			Tags:    []schema.Tag{{Key: "stage", Value: "dev"}},
			Summary: json.RawMessage(`{"auc":0.9}`),
			Inputs: []schema.DatasetInput{{Name: "digits", Digest: "4b8f", SourceType: "s3", Source: `{"uri":"s3://b/d"}`,
				Tags: []schema.Tag{{Key: "mlflow.data.context", Value: "training"}}}}}}
		for s := int64(0); s < 5; s++ {
			r.Metrics = append(r.Metrics, schema.Metric{Key: "auc", Step: s, Time: ms(time.Duration(s) * time.Second), Value: float64(s) / 10})
		}
		r.Logs = []schema.LogLine{{Time: ms(0), Stream: schema.Stdout, Line: "epoch 1 ✓"}}
		r.Files = []dataset.File{{Path: "model/MLmodel", Content: []byte("artifact_path: model\nrun: " + id + "\n")}}
		d.Runs = append(d.Runs, r)
	}
	return d
}
