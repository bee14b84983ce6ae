package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestManifestRoundTrip(t *testing.T) {
	m := ArtifactManifest{Role: ArtifactLogged, Name: "my-data", Type: "dataset", Digest: "a6f3",
		Aliases: []string{"prod", "latest", "prod"}, Metadata: json.RawMessage(`{"k": [1, 2]}`),
		Entries: []ArtifactEntry{{Path: "sub/b.bin", Size: 256, Digest: "x=="}, {Path: "a.txt", Size: 8, Digest: "y==", Ref: "s3://b/a"}}}
	b, err := MarshalManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"format": "runferry.artifact-manifest/1"`) {
		t.Errorf("no format in %s", b)
	}
	got, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	want := m
	want.Aliases = []string{"latest", "prod"}
	want.Metadata = json.RawMessage(`{"k":[1,2]}`)
	want.Entries = []ArtifactEntry{m.Entries[1], m.Entries[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, want)
	}
	if f := m.Folder(); f != "wandb-artifacts/my-data/a6f3" {
		t.Errorf("folder %q", f)
	}
	m.Version = "v2" // numbered by the server: a logged version is still named by its digest
	if f := m.Folder(); f != "wandb-artifacts/my-data/a6f3" {
		t.Errorf("folder %q", f)
	}
	if f := m.Label(); f != "a6f3" {
		t.Errorf("label %q", f)
	}
	m.Role, m.Digest = ArtifactUsed, "" // a used version is named by its version
	if f := m.Label(); f != "v2" {
		t.Errorf("used label %q", f)
	}
	if _, err := ParseManifest([]byte(`{"format":"other","name":"x"}`)); err == nil {
		t.Error("a manifest of another format was accepted")
	}
}
