package sources_test

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// TestManifestsFromFiles: the manifests among a run's files are listed,
// logged before used; a file at a manifest's path that is no manifest is
// an error naming it.
func TestManifestsFromFiles(t *testing.T) {
	logged := schema.ArtifactManifest{Role: schema.ArtifactLogged, Name: "m", Type: "model", Digest: "d1",
		Aliases: []string{"latest"}, Entries: []schema.ArtifactEntry{{Path: "w.pt", Size: 2, Digest: "x=="}}}
	used := []schema.ArtifactManifest{{Role: schema.ArtifactUsed, Name: "data", Type: "dataset", Version: "v1"}}
	mb, _ := schema.MarshalManifest(logged)
	ub, _ := schema.MarshalUsed(used)
	d := dataset.Canonical()
	run := d.Runs[0]
	run.Files = append(run.Files, dataset.File{Path: schema.UsedArtifactsFile, Content: ub},
		dataset.File{Path: "wandb-artifacts/m/d1/manifest.json", Content: mb}, dataset.File{Path: "wandb-artifacts/m/d1/w.pt", Content: []byte("ab")})
	ctx := context.Background()
	var got []schema.ArtifactManifest
	for m, err := range sources.ManifestsFromFiles(ctx, memsrc.New(d), run.Run.Origin) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if want := append([]schema.ArtifactManifest{logged}, used...); !reflect.DeepEqual(got, want) {
		t.Errorf("\n got %+v\nwant %+v", got, want)
	}
	run.Files = append(run.Files, dataset.File{Path: "wandb-artifacts/x/v0/manifest.json", Content: []byte(`{"a":1}`)})
	var err error
	for _, e := range sources.ManifestsFromFiles(ctx, memsrc.New(d), run.Run.Origin) {
		err = e
	}
	if err == nil || !strings.Contains(err.Error(), "wandb-artifacts/x/v0/manifest.json") {
		t.Errorf("a file that is no manifest: %v", err)
	}
}
