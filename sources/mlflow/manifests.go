package mlflow

import (
	"context"
	"iter"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.ManifestLister = (*Source)(nil)

// Manifests yields the W&B Artifacts versions a run logged and used, read
// from the manifest files runferry stored among its artifacts
// (wandb-artifacts/<name>/<version>/manifest.json and
// wandb-used-artifacts.json); a run without them has none.
func (s *Source) Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return sources.ManifestsFromFiles(ctx, s, run)
}
