package wandbdir_test

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbdir"
)

// expectedArtifacts is expected.json of generate_artifacts.py.
type expectedArtifacts struct {
	Project   string `json:"project"`
	Run       string `json:"run"`
	Artifacts []struct {
		Name        string         `json:"name"`
		Type        string         `json:"type"`
		Digest      string         `json:"digest"`
		Aliases     []string       `json:"aliases"`
		Description string         `json:"description"`
		Metadata    map[string]any `json:"metadata"`
		Entries     []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			Digest string `json:"digest"`
			Ref    string `json:"ref"`
		} `json:"entries"`
		Missing []string `json:"missing"`
	} `json:"artifacts"`
	Sources           map[string]string `json:"sources"` // base64 content by source file
	RefusedUseOffline bool              `json:"use_artifact_refused_offline"`
}

func readExpectedArtifacts(t *testing.T, dir string) expectedArtifacts {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var exp expectedArtifacts
	if err := json.Unmarshal(b, &exp); err != nil {
		t.Fatal(err)
	}
	return exp
}

// TestArtifactsOfRealOfflineRun reads a run that logged six artifact
// versions with the real SDK: every manifest must be what the script
// logged, every entry's content must arrive under its version's folder
// (from the staged copy, or from the SDK's cache once the staged copy is
// gone), the entry whose content is nowhere must come with a problem
// naming where it was looked for, and manifest.json must hold the manifest.
func TestArtifactsOfRealOfflineRun(t *testing.T) {
	dir := testenv.WandbArtifactRun(t)
	exp := readExpectedArtifacts(t, dir)
	if !exp.RefusedUseOffline {
		t.Errorf("the SDK now accepts use_artifact offline: make the generator use it")
	}
	ctx := context.Background()
	src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(dir, "wandb"), ArtifactCache: filepath.Join(dir, "cache", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	run := onlyRun(t, src)

	// Manifests, as the script logged them.
	var want []schema.ArtifactManifest
	wantFiles := map[string][]byte{} // run file path → content
	contents := map[string][]byte{}
	for k, v := range exp.Sources {
		b, _ := base64.StdEncoding.DecodeString(v)
		contents[k] = b
	}
	byDigest := map[string][]byte{}
	for _, b := range contents {
		byDigest[b64md5(b)] = b
	}
	for _, a := range exp.Artifacts {
		m := schema.ArtifactManifest{Role: schema.ArtifactLogged, Name: a.Name, Type: a.Type, Digest: a.Digest,
			Aliases: a.Aliases, Description: a.Description}
		if a.Metadata != nil {
			m.Metadata, _ = json.Marshal(a.Metadata)
		}
		for _, e := range a.Entries {
			m.Entries = append(m.Entries, schema.ArtifactEntry{Path: e.Path, Size: e.Size, Digest: e.Digest, Ref: e.Ref})
			if e.Ref == "" && !slices.Contains(a.Missing, e.Path) {
				wantFiles[m.Folder()+"/"+e.Path] = byDigest[e.Digest]
			}
		}
		want = append(want, m)
	}
	var got []schema.ArtifactManifest
	for m, err := range src.Manifests(ctx, run.Origin) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	if len(got) != len(want) {
		t.Fatalf("%d manifests, want %d", len(got), len(want))
	}
	for i := range want {
		g := got[i]
		if g.ID == "" {
			t.Errorf("manifest %s: no client id", g.Name)
		}
		g.ID = ""
		if !jsonEqual(g.Metadata, want[i].Metadata) {
			t.Errorf("manifest %s: metadata %s, want %s", g.Name, g.Metadata, want[i].Metadata)
		}
		g.Metadata = want[i].Metadata
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("manifest %d\n got %+v\nwant %+v", i, g, want[i])
		}
	}

	// The missing entry is no damage of the run folder: it is a file with
	// a problem (below).
	for _, d := range run.Damage {
		if strings.HasPrefix(d, "artifact ") {
			t.Errorf("damage %q", d)
		}
	}
	// Files: entries with their content, one manifest.json per version, the
	// missing entry with a problem.
	files := map[string][]byte{}
	problems := map[string]string{}
	var paths []string
	for a, err := range src.Artifacts(ctx, run.Origin) {
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, a.Path)
		if !strings.HasPrefix(a.Path, schema.ArtifactFolder+"/") {
			continue
		}
		if a.Problem != "" {
			problems[a.Path] = a.Problem
			continue
		}
		files[a.Path] = readContent(t, a)
	}
	if !slices.IsSorted(paths) {
		t.Errorf("files not sorted by path: %q", paths)
	}
	for _, m := range want {
		mf := m.Folder() + "/" + schema.ManifestFile
		gm, err := schema.ParseManifest(files[mf])
		if err != nil {
			t.Errorf("%s: %v", mf, err)
			continue
		}
		gm.ID = ""
		if !jsonEqual(gm.Metadata, m.Metadata) {
			t.Errorf("%s: metadata %s", mf, gm.Metadata)
		}
		gm.Metadata = m.Metadata
		if !reflect.DeepEqual(gm, m) {
			t.Errorf("%s\n got %+v\nwant %+v", mf, gm, m)
		}
		delete(files, mf)
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("entry files %v, want %v", keys(files), keys(wantFiles))
	}
	lost := want[4]
	if p := lost.Folder() + "/lost.txt"; len(problems) != 1 || !strings.Contains(problems[p], "content not found") {
		t.Errorf("problems %q, want one for %s", problems, p)
	}

	// Without the SDK's cache, the entry only the cache holds is missing too.
	bare, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(dir, "wandb"), ArtifactCache: filepath.Join(dir, "no-cache")})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	run = onlyRun(t, bare)
	var missing []string
	for a, err := range bare.Artifacts(ctx, run.Origin) {
		if err != nil {
			t.Fatal(err)
		}
		if a.Problem != "" {
			missing = append(missing, a.Path+": "+a.Problem)
		}
	}
	if len(missing) != 2 || !strings.Contains(missing[0], "cached-data/") || !strings.Contains(missing[1], "lost-data/") ||
		!strings.Contains(missing[0], "content not found (staged copy ") || !strings.Contains(missing[0], "not in the W&B artifact cache; not among the run's files)") {
		t.Errorf("without the cache: problems %q, want cached-data and lost-data named", missing)
	}
	// The fingerprint reads no more than the run's header, not the log's
	// artifact records: it does not change when only the cache gains what
	// was missing (sync --force compares the files and copies them).
	fpBare, err := bare.Fingerprint(ctx, run)
	if err != nil || fpBare == "" {
		t.Fatalf("fingerprint: %q %v", fpBare, err)
	}
	fpCache, err := src.Fingerprint(ctx, run)
	if err != nil || fpCache != fpBare {
		t.Errorf("fingerprints with and without the cache: %q, %q (%v); want one", fpCache, fpBare, err)
	}
}

func onlyRun(t *testing.T, src *wandbdir.Source) schema.Run {
	t.Helper()
	ctx := context.Background()
	var runs []schema.Run
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, r)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1", len(runs))
	}
	return runs[0]
}

func readContent(t *testing.T, a schema.Artifact) []byte {
	t.Helper()
	rc, err := a.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != a.Size {
		t.Errorf("%s: %d bytes, size says %d", a.Path, len(b), a.Size)
	}
	return b
}

func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func b64md5(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}
