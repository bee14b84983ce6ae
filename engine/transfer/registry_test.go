package transfer_test

import (
	"context"
	"errors"
	"iter"
	"reflect"
	"sync"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// registrySource is the canonical dataset with a model registry: "vision-model"
// has versions from runs of the experiment "vision", "unicode-model" one
// from a run of the other experiment.
type registrySource struct {
	*memsrc.Source
}

func (registrySource) RegisteredModels(ctx context.Context) iter.Seq2[schema.RegisteredModel, error] {
	return func(yield func(schema.RegisteredModel, error) bool) {
		for _, m := range []schema.RegisteredModel{
			{Origin: schema.Ref{System: "memory", ID: "model/unicode-model"}, Name: "unicode-model",
				Versions: []schema.ModelVersion{{Version: 1, Run: schema.Ref{System: "memory", ID: "run-running"}, RunPath: "model"}}},
			{Origin: schema.Ref{System: "memory", ID: "model/vision-model"}, Name: "vision-model",
				Aliases: []schema.ModelAlias{{Alias: "champion", Version: 2}},
				Versions: []schema.ModelVersion{{Version: 1, Run: schema.Ref{System: "memory", ID: "run-big"}, RunPath: "model"},
					{Version: 2, Run: schema.Ref{System: "memory", ID: "run-special"}, RunPath: "model"}}},
		} {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// registrySink is a memory sink that records the models it is given and
// the run ids the engine passed with them.
type registrySink struct {
	sinks.Sink
	mu     sync.Mutex
	models []string
	runs   map[schema.Ref]string
}

func (s *registrySink) PutRegisteredModel(_ context.Context, m schema.RegisteredModel, runs map[schema.Ref]string) (map[string]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = append(s.models, m.Name)
	s.runs = runs
	return map[string]int64{"test kind": 1}, nil
}

var _ sinks.RegistryWriter = (*registrySink)(nil)

// TestRegistryAfterRuns: the engine hands a registry sink every model
// after the runs, with the destination ids of the runs it committed; with
// a filter, only the models with a version from a selected run; in a dry
// run, none (but counts them); and a sink without a registry gets the
// models and versions counted as not copied.
func TestRegistryAfterRuns(t *testing.T) {
	ctx := context.Background()
	d := dataset.Canonical()
	src := registrySource{memsrc.New(d)}

	dst := &registrySink{Sink: memsink.New(sinks.Limits{})}
	rep, err := transfer.Copy(ctx, src, dst, fast(transfer.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dst.models, []string{"unicode-model", "vision-model"}) {
		t.Errorf("models written %v", dst.models)
	}
	if got := *rep.Registry; got != (transfer.RegistryResult{Models: 2, Versions: 3}) {
		t.Errorf("report registry %+v", got)
	}
	if rep.Coverage["test kind"] != 2 {
		t.Errorf("the sink's registry coverage is not summed: %v", rep.Coverage)
	}
	ids := map[schema.Ref]string{} // the destination ids the report names (the memory sink names none)
	for _, r := range rep.Runs {
		if ref, _ := schema.ParseRef(r.Origin); r.DestID != "" {
			ids[ref] = r.DestID
		}
	}
	if !reflect.DeepEqual(dst.runs, ids) {
		t.Errorf("the registry was given run ids %v, the report names %v", dst.runs, ids)
	}

	dst = &registrySink{Sink: memsink.New(sinks.Limits{})}
	rep, err = transfer.Copy(ctx, src, dst, fast(transfer.Options{Filter: transfer.Filter{Include: []string{"vision"}}}))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dst.models, []string{"vision-model"}) || *rep.Registry != (transfer.RegistryResult{Models: 1, Versions: 2}) {
		t.Errorf("filtered: models written %v, report %+v", dst.models, rep.Registry)
	}

	dst = &registrySink{Sink: memsink.New(sinks.Limits{})}
	rep, err = transfer.Copy(ctx, src, dst, fast(transfer.Options{DryRun: true}))
	if err != nil {
		t.Fatal(err)
	}
	if len(dst.models) != 0 || *rep.Registry != (transfer.RegistryResult{Models: 2, Versions: 3}) {
		t.Errorf("dry run: models written %v, report %+v", dst.models, rep.Registry)
	}

	rep, err = transfer.Copy(ctx, src, memsink.New(sinks.Limits{}), fast(transfer.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{transfer.CoverageModelsNotCopied: 2, transfer.CoverageVersionsNotCopied: 3}
	for k, n := range want {
		if rep.Coverage[k] != n {
			t.Errorf("no registry in the sink: coverage %v, want %v", rep.Coverage, want)
		}
	}
	if rep.Registry != nil || len(rep.Problems) > 0 {
		t.Errorf("no registry in the sink: report registry %+v, problems %v", rep.Registry, rep.Problems)
	}

	// A model whose version's run failed waits for the re-run.
	dst = &registrySink{Sink: sinktest.NewFailAt(memsink.New(sinks.Limits{}), 3, fault.Permanent(errors.New("injected")))}
	rep, err = transfer.Copy(ctx, src, dst, fast(transfer.Options{Concurrency: 1, Attempts: 1}))
	if err != nil {
		t.Fatal(err)
	}
	failed := map[schema.Ref]bool{}
	for _, r := range rep.Runs {
		ref, _ := schema.ParseRef(r.Origin)
		failed[ref] = r.Outcome == transfer.Failed
	}
	var held []string
	for m := range src.RegisteredModels(ctx) {
		for _, v := range m.Versions {
			if failed[v.Run] {
				held = append(held, m.Name)
				break
			}
		}
	}
	if len(held) == 0 || len(held)+len(dst.models) != 2 || rep.Registry.Failed != len(held) || len(rep.Problems) != len(held) {
		t.Errorf("a run failed: models held back %v, written %v, report %+v, problems %v", held, dst.models, rep.Registry, rep.Problems)
	}
}
