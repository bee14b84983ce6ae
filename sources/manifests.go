package sources

import (
	"context"
	"fmt"
	"io"
	"iter"

	"github.com/runferry/runferry/schema"
)

// maxManifestBytes bounds what ManifestsFromFiles reads of one manifest.
const maxManifestBytes = 256 << 20

// ManifestsFromFiles lists, for a source that holds runs written by
// runferry, the artifact versions a run logged and used from the manifest
// files among its files (schema.IsManifestPath, schema.UsedArtifactsFile):
// logged versions in path order, then used ones. A file at such a path
// that is not a runferry manifest, or that cannot be read, is an error
// naming it: the run's manifests cannot be told.
func ManifestsFromFiles(ctx context.Context, al ArtifactLister, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return func(yield func(schema.ArtifactManifest, error) bool) {
		var logged, used []schema.ArtifactManifest
		for a, err := range al.Artifacts(ctx, run) {
			if err != nil {
				yield(schema.ArtifactManifest{}, err)
				return
			}
			isUsed := a.Path == schema.UsedArtifactsFile
			if !isUsed && !schema.IsManifestPath(a.Path) {
				continue
			}
			if a.Open == nil {
				yield(schema.ArtifactManifest{}, fmt.Errorf("artifact manifest %s: %s", a.Path, a.Problem))
				return
			}
			body, err := readAllFrom(ctx, a)
			if err != nil {
				yield(schema.ArtifactManifest{}, fmt.Errorf("artifact manifest %s: %w", a.Path, err))
				return
			}
			if isUsed {
				ms, err := schema.ParseUsed(body)
				if err != nil {
					yield(schema.ArtifactManifest{}, fmt.Errorf("%s: %w", a.Path, err))
					return
				}
				used = append(used, ms...)
				continue
			}
			m, err := schema.ParseManifest(body)
			if err != nil {
				yield(schema.ArtifactManifest{}, fmt.Errorf("%s: %w", a.Path, err))
				return
			}
			logged = append(logged, m)
		}
		for _, m := range append(logged, used...) {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func readAllFrom(ctx context.Context, a schema.Artifact) ([]byte, error) {
	rc, err := a.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxManifestBytes))
}
