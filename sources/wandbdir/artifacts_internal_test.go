package wandbdir

import (
	"context"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// TestArtifactVersionsFromRecords covers what the SDK cannot write offline
// (use_artifact) and what it never writes (unsafe names and paths, a
// manifest kept in a separate file): used versions are listed with their
// version or alias, one per id; a version logged twice is one version with
// the aliases of both; unsafe entries are named, never carried.
func TestArtifactVersionsFromRecords(t *testing.T) {
	a := &runArtifacts{
		logged: []*wandbfile.Artifact{
			{Name: "m", Type: "model", Digest: "d1", Aliases: []string{"latest", "a"}, Metadata: `{"x": 1}`,
				Entries: []wandbfile.ArtifactEntry{{Path: "w.pt", Size: 3, Digest: "AAAAAAAAAAAAAAAAAAAAAA=="}, {Path: "../escape", Size: 1}}},
			{Name: "m", Type: "model", Digest: "d1", Aliases: []string{"latest", "b"}},
			{Name: "../evil", Type: "model", Digest: "d2"},
			{Name: "big", Type: "dataset", Digest: "d3", ManifestFile: "/tmp/m.jsonl.gz"},
		},
		used: []*wandbfile.UseArtifact{
			{ID: "QXJ0aWZhY3Q6MQ==", Type: "dataset", Name: "ent/proj/data:v3"},
			{ID: "QXJ0aWZhY3Q6Mg==", Type: "model", Name: "m:best"},
			{ID: "QXJ0aWZhY3Q6MQ==", Type: "dataset", Name: "ent/proj/data:v3"},
		},
	}
	logged, used := a.versions()
	if len(logged) != 3 {
		t.Fatalf("%d logged versions, want 3", len(logged))
	}
	m := logged[0].manifest
	if !reflect.DeepEqual(m.Aliases, []string{"a", "b", "latest"}) || string(m.Metadata) != `{"x":1}` || len(m.Entries) != 2 || m.Entries[0].Path != "../escape" {
		t.Errorf("merged version %+v", m)
	}
	wantUsed := []schema.ArtifactManifest{
		{Role: schema.ArtifactUsed, Name: "data", Type: "dataset", Version: "v3", ID: "QXJ0aWZhY3Q6MQ=="},
		{Role: schema.ArtifactUsed, Name: "m", Type: "model", Aliases: []string{"best"}, ID: "QXJ0aWZhY3Q6Mg=="},
	}
	if !reflect.DeepEqual(used, wantUsed) {
		t.Errorf("used\n got %+v\nwant %+v", used, wantUsed)
	}
	damage := artifactDamage(a)
	want := []string{`artifact m (d1) entry "../escape": unsafe path`,
		`artifact "../evil" (digest "d2"): name or digest unfit`, "artifact big: its manifest was kept in a separate file"}
	if len(damage) != len(want) {
		t.Fatalf("damage %q", damage)
	}
	for i := range want {
		if !strings.HasPrefix(damage[i], want[i]) {
			t.Errorf("damage %q, want it to start with %q", damage[i], want[i])
		}
	}
	files, err := artifactFiles(context.Background(), a, &finder{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.Path)
	}
	wantPaths := []string{"wandb-artifacts/big/d3/manifest.json", "wandb-artifacts/m/d1/manifest.json", "wandb-artifacts/m/d1/w.pt", schema.UsedArtifactsFile}
	if !reflect.DeepEqual(paths, wantPaths) {
		t.Errorf("files %q, want %q", paths, wantPaths)
	}
	if files[2].Problem == "" || files[2].Open != nil {
		t.Errorf("missing entry carried: %+v", files[2])
	}
	rc, _ := files[3].Open(context.Background())
	body, _ := io.ReadAll(rc)
	if got, err := schema.ParseUsed(body); err != nil || !reflect.DeepEqual(got, wantUsed) {
		t.Errorf("%s: %v\n got %+v\nwant %+v", schema.UsedArtifactsFile, err, got, wantUsed)
	}
}
