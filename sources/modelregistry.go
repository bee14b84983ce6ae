package sources

import (
	"context"
	"iter"

	"github.com/runferry/runferry/schema"
)

// RegistryReader is a source that holds a model registry (MLflow's
// registered models). The registry belongs to no run: the engine copies it
// after the runs, so that a sink can point each version at the run it wrote
// from the version's source run.
type RegistryReader interface {
	// RegisteredModels yields every registered model with its versions,
	// canonicalised, ordered by name. A version's Run is the origin under
	// which Runs yields (or would yield) its source run.
	RegisteredModels(ctx context.Context) iter.Seq2[schema.RegisteredModel, error]
}
