package transfer_test

import (
	"slices"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
)

func TestFilterMatchesWhatLsPrints(t *testing.T) {
	wb := schema.Experiment{Origin: schema.Ref{System: "wandb", ID: "acme/vision"}, Name: "acme/vision"}
	ml := schema.Experiment{Origin: schema.Ref{System: "mlflow", ID: "mlflow.acme.internal/7"}, Name: "team/vision"}
	run := schema.Run{Origin: schema.Ref{System: "wandb", ID: "acme/vision/abc123"}, Start: time.Unix(100, 0)}
	cases := []struct {
		f        transfer.Filter
		exp      schema.Experiment
		wantExp  bool
		wantRun  bool
		unpicked []string
	}{
		{transfer.Filter{Include: []string{"acme/vision"}}, wb, true, true, nil},
		{transfer.Filter{Include: []string{"vision"}}, wb, true, true, nil}, // W&B project alone
		{transfer.Filter{Include: []string{"vis*"}}, wb, true, true, nil},
		{transfer.Filter{Include: []string{"vision"}}, ml, false, true, []string{`--include "vision" matched no experiment`}},
		{transfer.Filter{Include: []string{"7"}}, ml, true, true, nil},                      // the server's experiment id
		{transfer.Filter{Include: []string{"mlflow.acme.internal/7"}}, ml, true, true, nil}, // origin id
		{transfer.Filter{Exclude: []string{"vision"}}, wb, false, true, nil},
		{transfer.Filter{Exclude: []string{"nope"}}, wb, true, true, []string{`--exclude "nope" matched no experiment`}},
		{transfer.Filter{RunIDs: []string{"wandb:acme/vision/abc123"}}, wb, true, true, nil}, // as ls prints it
		{transfer.Filter{RunIDs: []string{"acme/vision/abc123"}}, wb, true, true, nil},
		{transfer.Filter{RunIDs: []string{"abc123"}}, wb, true, true, nil},
		{transfer.Filter{RunIDs: []string{"abc12"}}, wb, true, false, []string{`--run "abc12" matched no run`}},
		{transfer.Filter{RunIDs: []string{"mlflow:acme/vision/abc123"}}, wb, true, false, []string{`--run "mlflow:acme/vision/abc123" matched no run`}},
		{transfer.Filter{Since: time.Unix(200, 0)}, wb, true, false, []string{"no run started within --since/--until"}},
	}
	for i, c := range cases {
		f := c.f.Track()
		if got := f.Experiment(c.exp); got != c.wantExp {
			t.Errorf("case %d: Experiment = %v, want %v", i, got, c.wantExp)
		}
		if got := f.Run(run); got != c.wantRun {
			t.Errorf("case %d: Run = %v, want %v", i, got, c.wantRun)
		}
		if got := f.Unmatched(); !slices.Equal(got, c.unpicked) {
			t.Errorf("case %d: Unmatched = %q, want %q", i, got, c.unpicked)
		}
	}
	if (transfer.Filter{Include: []string{"x"}}).Unmatched() != nil {
		t.Error("an untracked filter reports unmatched patterns")
	}
}
