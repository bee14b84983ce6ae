package check_test

import (
	"context"
	"encoding/json"
	"iter"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// withManifests is a memory source whose first run logged and used
// artifact versions.
type withManifests struct {
	*memsrc.Source
	run schema.Ref
	ms  []schema.ArtifactManifest
}

func (s withManifests) Manifests(_ context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return func(yield func(schema.ArtifactManifest, error) bool) {
		if run != s.run {
			return
		}
		for _, m := range s.ms {
			if !yield(m, nil) {
				return
			}
		}
	}
}

func manifests() []schema.ArtifactManifest {
	return []schema.ArtifactManifest{
		{Role: schema.ArtifactLogged, Name: "m", Type: "model", Digest: "d1", Aliases: []string{"latest"},
			Metadata: json.RawMessage(`{"k":1}`),
			Entries:  []schema.ArtifactEntry{{Path: "a.pt", Size: 3, Digest: "x=="}, {Path: "b.pt", Size: 4, Digest: "y=="}}},
		{Role: schema.ArtifactUsed, Name: "data", Type: "dataset", Version: "v3", ID: "QQ=="},
	}
}

// TestCheckComparesArtifactManifests: each single change of a version a
// run logged or used is a difference naming it; equal lists match.
func TestCheckComparesArtifactManifests(t *testing.T) {
	ctx := context.Background()
	base := dataset.Canonical()
	run := base.Runs[0].Run.Origin
	src := withManifests{memsrc.New(base), run, manifests()}
	res, err := check.Run(ctx, src, withManifests{memsrc.New(base.Clone()), run, manifests()}, check.Options{})
	if err != nil || len(res.Differences) != 0 {
		t.Fatalf("equal manifests: %v %v", err, res.Differences)
	}
	changes := []struct {
		name   string
		change func(ms []schema.ArtifactManifest) []schema.ArtifactManifest
		want   string
	}{
		{"alias", func(ms []schema.ArtifactManifest) []schema.ArtifactManifest {
			ms[0].Aliases = []string{"latest", "prod"}
			return ms
		}, "artifact logged m:d1 Aliases"},
		{"metadata", func(ms []schema.ArtifactManifest) []schema.ArtifactManifest {
			ms[0].Metadata = json.RawMessage(`{"k":2}`)
			return ms
		}, "artifact logged m:d1 Metadata"},
		{"entry digest", func(ms []schema.ArtifactManifest) []schema.ArtifactManifest {
			ms[0].Entries[1].Digest = "z=="
			return ms
		}, "artifact logged m:d1 entry b.pt"},
		{"entry missing", func(ms []schema.ArtifactManifest) []schema.ArtifactManifest {
			ms[0].Entries = ms[0].Entries[:1]
			return ms
		}, "artifact logged m:d1 entry b.pt missing"},
		{"used missing", func(ms []schema.ArtifactManifest) []schema.ArtifactManifest { return ms[:1] }, "artifact used data:v3 missing"},
		{"version extra", func(ms []schema.ArtifactManifest) []schema.ArtifactManifest {
			return append(ms, schema.ArtifactManifest{Role: schema.ArtifactLogged, Name: "m", Digest: "d2"})
		}, "artifact logged m:d2 unexpected"},
	}
	for _, c := range changes {
		dst := withManifests{memsrc.New(base.Clone()), run, c.change(manifests())}
		res, err := check.Run(ctx, src, dst, check.Options{})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(res.Differences) != 1 || !strings.Contains(res.Differences[0].String(), c.want) {
			t.Errorf("%s: differences %v, want one naming %q", c.name, res.Differences, c.want)
		}
	}
}
