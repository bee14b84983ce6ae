package check_test

import (
	"context"
	"iter"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// registrySource adds a model registry to a memory source.
type registrySource struct {
	sources.Source
	models []schema.RegisteredModel
}

func (s registrySource) RegisteredModels(context.Context) iter.Seq2[schema.RegisteredModel, error] {
	return func(yield func(schema.RegisteredModel, error) bool) {
		for _, m := range s.models {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// TestCheckMatchesModelsByOrigin: a destination holding two registered
// models of one name from two sources (an archive both were synced into)
// is compared with each source by the model copied from it; a model
// without a copy of the same origin is compared by name.
func TestCheckMatchesModelsByOrigin(t *testing.T) {
	model := func(server, desc string) schema.RegisteredModel {
		return schema.RegisteredModel{Origin: schema.Ref{System: "mlflow", ID: server + "/model/fraud"}, Name: "fraud", Description: desc,
			Versions: []schema.ModelVersion{{Version: 1, Stage: "None", Status: "READY", Source: "s3://b/" + server}}}
	}
	a, b := model("a:5000", "from a"), model("b:5000", "from b")
	empty := &dataset.Dataset{}
	dst := registrySource{memsrc.New(empty), []schema.RegisteredModel{a, b}}
	for _, src := range []schema.RegisteredModel{a, b} {
		res, err := check.Run(context.Background(), registrySource{memsrc.New(empty), []schema.RegisteredModel{src}}, dst, check.Options{})
		if err != nil || len(res.Differences) != 0 || res.Models != 1 {
			t.Fatalf("source %s: err %v, %d models, differences %v", src.Origin, err, res.Models, res.Differences)
		}
	}
	// The copy of a's model under another name is a's model renamed.
	renamed := a
	renamed.Name = "fraud-v2"
	res, err := check.Run(context.Background(), registrySource{memsrc.New(empty), []schema.RegisteredModel{a}},
		registrySource{memsrc.New(empty), []schema.RegisteredModel{renamed}}, check.Options{})
	if err != nil || len(res.Differences) != 1 || !strings.Contains(res.Differences[0].String(), "name: source fraud, destination fraud-v2") {
		t.Fatalf("renamed copy: err %v, differences %v", err, res.Differences)
	}
	// Another origin of the same name is compared by name: what differs shows.
	c := model("c:5000", "from c")
	res, err = check.Run(context.Background(), registrySource{memsrc.New(empty), []schema.RegisteredModel{c}}, dst, check.Options{})
	if err != nil || len(res.Differences) != 2 {
		t.Fatalf("source c: err %v, differences %v; want description and version 1 files", err, res.Differences)
	}
	if got := res.Differences[0].String(); !strings.Contains(got, "description: source from c, destination from a") {
		t.Fatalf("source c: %s", got)
	}
}
