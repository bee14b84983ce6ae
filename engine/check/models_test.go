package check_test

import (
	"context"
	"slices"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestCheckNamesLoggedModelFields: a logged model's metadata file that
// differs is reported field by field (name, state, a param, a changed, a
// missing and an unexpected tag, a metric), not as one opaque file.
func TestCheckNamesLoggedModelFields(t *testing.T) {
	const meta = "mlflow-logged-models/m-1/logged_model.json"
	with := func(body string) *dataset.Dataset {
		d := dataset.Canonical()
		d.Runs[0].Files = append(d.Runs[0].Files, dataset.File{Path: meta, Content: []byte(body)})
		return d
	}
	want := with(`{"info": {"model_id": "m-1", "name": "reg", "status": "LOGGED_MODEL_READY",
		"tags": [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]},
		"data": {"params": [{"key": "lr", "value": "0.1"}], "metrics": [{"key": "r2", "value": 1, "timestamp": 5, "step": 0}]}}`)
	got := with(`{"info": {"model_id": "m-1", "name": "other", "status": "LOGGED_MODEL_UPLOAD_FAILED",
		"tags": [{"key": "a", "value": "9"}, {"key": "c", "value": "3"}]},
		"data": {"params": [{"key": "lr", "value": "0.2"}], "metrics": [{"key": "r2", "value": 0.5, "timestamp": 5, "step": 0}]}}`)
	ctx := context.Background()
	if res, err := check.Run(ctx, memsrc.New(want), memsrc.New(want.Clone()), check.Options{}); err != nil || len(res.Differences) != 0 {
		t.Fatalf("equal models: %v %v", err, res.Differences)
	}
	res, err := check.Run(ctx, memsrc.New(want), memsrc.New(got), check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var whats []string
	for _, d := range res.Differences {
		whats = append(whats, d.What)
	}
	wantWhats := []string{"logged model m-1 name", "logged model m-1 state", "logged model m-1 tag a",
		"logged model m-1 tag b missing", "logged model m-1 tag c unexpected", "logged model m-1 param lr",
		"logged model m-1 metric r2@0"}
	if !slices.Equal(whats, wantWhats) {
		t.Errorf("differences %q\nwant %q", whats, wantWhats)
	}
}
