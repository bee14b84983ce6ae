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

func TestParseAndFingerprint(t *testing.T) {
	c := Chain{PrefixExperiments("wb/"), DropMetrics{"system/*", "gpu.*"}}
	back, err := Parse(c.String())
	if err != nil || back.String() != c.String() {
		t.Fatalf("Parse(%q) = %v, %v", c.String(), back, err)
	}
	if _, err := Parse("rename=x"); err == nil {
		t.Error("an unknown step parsed")
	}
	if c, err := Parse(""); err != nil || c != nil {
		t.Errorf("Parse(\"\") = %v, %v", c, err)
	}
	fp := c.Fingerprint("abc")
	if fp != "abc +prefix-experiments=wb/|drop-metrics=system/*,gpu.*" || Recorded(fp) != c.String() {
		t.Errorf("Fingerprint = %q, Recorded = %q", fp, Recorded(fp))
	}
	// A second hop records its own transform only.
	if got := (Chain{}).Fingerprint(fp); got != "abc" {
		t.Errorf("empty chain over a recorded fingerprint = %q", got)
	}
	if got := c.Fingerprint(""); got != "" {
		t.Errorf("no source fingerprint = %q", got)
	}
}

func TestDropPersonal(t *testing.T) {
	c := Chain{DropMetrics{"x"}, DropPersonal{}}
	back, err := Parse(c.String())
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("Parse(%q) = %v, %v", c.String(), back, err)
	}
	if _, err := Parse("drop-personal=host"); err == nil {
		t.Error("drop-personal with another value parsed")
	}
	in := schema.Run{Name: "r", User: "alice", Host: "gpu-node-7.example.org",
		Tags: []schema.Tag{{Key: "wandb.email", Value: "alice@example.org"}, {Key: "wandb.os", Value: "Linux"}}}
	orig := in
	origTags := append([]schema.Tag(nil), in.Tags...)
	got, left := c.Run(in)
	want := schema.Run{Name: "r", User: "alice", Tags: []schema.Tag{{Key: "wandb.os", Value: "Linux"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Run = %+v, want %+v", got, want)
	}
	if !reflect.DeepEqual(left, []string{"host name", "e-mail address (tag wandb.email)"}) {
		t.Errorf("left out %q", left)
	}
	if !reflect.DeepEqual(orig.Tags, origTags) || orig.Host != "gpu-node-7.example.org" {
		t.Errorf("the input run was changed: %+v", orig)
	}
	if got, left := c.Run(want); !reflect.DeepEqual(got, want) || left != nil {
		t.Errorf("a run without personal data: %+v, %q", got, left)
	}
}
