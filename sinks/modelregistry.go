package sinks

import (
	"context"

	"github.com/runferry/runferry/schema"
)

// RegistryWriter is a sink that holds a model registry. The engine calls it
// once per registered model, after the job's runs were committed.
type RegistryWriter interface {
	// PutRegisteredModel writes m and its versions, or brings up to date
	// what an earlier call wrote from the same model: versions written
	// earlier are found again (never created twice), descriptions, tags,
	// stages and aliases are set to m's. Each version points at the run the
	// sink holds from the version's Run origin (runs maps the origins the
	// engine knows to the sink's run ids; the sink looks up the others
	// itself); a version whose run the sink does not hold keeps its source
	// URI and is counted. It returns, by kind, what the sink did not hold
	// as given (the kinds of CoverageReporter).
	PutRegisteredModel(ctx context.Context, m schema.RegisteredModel, runs map[schema.Ref]string) (coverage map[string]int64, err error)
}
