package transform

import (
	"reflect"
	"testing"

	"github.com/runferry/runferry/schema"
)

func TestChain(t *testing.T) {
	c := Chain{PrefixExperiments("wandb-"), DropMetrics{"system/*", "_*"}}
	if got := c.Experiment(schema.Experiment{Name: "vision"}).Name; got != "wandb-vision" {
		t.Errorf("prefix: %q", got)
	}
	page := []schema.Metric{{Key: "loss"}, {Key: "system/cpu"}, {Key: "_runtime"}, {Key: "system/gpu/0"}, {Key: "val/acc"}}
	got := c.Metrics(page)
	want := []schema.Metric{{Key: "loss"}, {Key: "system/gpu/0"}, {Key: "val/acc"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("drop: %+v", got)
	}
	if s := c.String(); s != "prefix-experiments=wandb-|drop-metrics=system/*,_*" {
		t.Errorf("String = %q", s)
	}
}
