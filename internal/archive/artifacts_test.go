package archive_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// TestArtifactManifestTables: the manifests among a run's files (logged
// versions, the used list) are indexed in artifact_versions and
// artifact_entries and read back as they were; a file at a manifest's
// path that is no manifest stays a file and makes no row; a run without
// manifests has no such tables.
func TestArtifactManifestTables(t *testing.T) {
	logged := schema.ArtifactManifest{Role: schema.ArtifactLogged, Name: "my-data", Type: "dataset", Digest: "a6f3",
		Aliases: []string{"latest", "prod"}, Description: "d", Metadata: json.RawMessage(`{"k":1}`), ID: "c1",
		Entries: []schema.ArtifactEntry{{Path: "a.txt", Size: 8, Digest: "t/DF=="}, {Path: "r.txt", Size: 3, Digest: "x==", Ref: "s3://b/r.txt"}}}
	used := []schema.ArtifactManifest{{Role: schema.ArtifactUsed, Name: "base", Type: "model", Version: "v3", ID: "QXJ"}}
	mb, err := schema.MarshalManifest(logged)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := schema.MarshalUsed(used)
	if err != nil {
		t.Fatal(err)
	}
	d := manyRuns(2)
	r := d.Runs[0]
	r.Files = []dataset.File{
		{Path: "wandb-artifacts/my-data/a6f3/a.txt", Content: []byte("hello a\n")},
		{Path: "wandb-artifacts/my-data/a6f3/manifest.json", Content: mb},
		{Path: "wandb-artifacts/other/v0/manifest.json", Content: []byte(`{"not": "ours"}`)},
		{Path: schema.UsedArtifactsFile, Content: ub},
	}
	dir := filepath.Join(t.TempDir(), "archive")
	write(t, dir, d)
	expectEqual(t, dir, d)

	src, err := srcparquetNew(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []schema.ArtifactManifest
	for m, err := range src.Manifests(context.Background(), r.Run.Origin) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	want := append([]schema.ArtifactManifest{logged}, used...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("manifests\n got %+v\nwant %+v", got, want)
	}
	for m, err := range src.Manifests(context.Background(), d.Runs[1].Run.Origin) {
		t.Errorf("run without manifests: %+v %v", m, err)
	}
	// A run archived before the tables existed: the manifests come from
	// its files, the same.
	rd, err := archive.OpenReader(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	old, ok := rd.Run(r.Run.Origin.String())
	if !ok {
		t.Fatal("run not in the archive")
	}
	old.Files = slices.DeleteFunc(slices.Clone(old.Files), func(f archive.FileEntry) bool {
		return f.Table == archive.TableArtifactVersions || f.Table == archive.TableArtifactEntries
	})
	if fromFiles, err := rd.ArtifactManifests(old); err != nil || !reflect.DeepEqual(fromFiles, want) {
		t.Errorf("manifests of a run without the tables: %v\n got %+v\nwant %+v", err, fromFiles, want)
	}

	tables := 0
	for _, f := range dataFiles(t, dir) {
		table, key := filepath.Dir(filepath.Dir(f)), filepath.Base(filepath.Dir(f))
		if table == archive.TableArtifactVersions || table == archive.TableArtifactEntries {
			tables++
			if key != archive.EntityKey(r.Run.Origin.String()) {
				t.Errorf("table file %s of a run without manifests", f)
			}
		}
	}
	if tables != 2 {
		t.Errorf("%d artifact table files, want 2", tables)
	}
}
