package wandbcloud_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbcloud"
	"github.com/runferry/runferry/sources/wandbdir"
)

// readAll reads every file of run: content by path, and the Problem of
// those without content.
func readAll(t *testing.T, files func(func(schema.Artifact, error) bool)) (content, problems map[string]string, err error) {
	t.Helper()
	content, problems = map[string]string{}, map[string]string{}
	for a, err := range files {
		if err != nil {
			return nil, nil, err
		}
		if a.Open == nil {
			problems[a.Path] = a.Problem
			continue
		}
		rc, err := a.Open(context.Background())
		if err != nil {
			return nil, nil, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, nil, err
		}
		if a.Size >= 0 && int64(len(b)) != a.Size {
			t.Errorf("%s: %d bytes, listed %d", a.Path, len(b), a.Size)
		}
		content[a.Path] = string(b)
	}
	return content, problems, nil
}

// TestArtifacts: a run made by the real SDK that logs W&B Artifacts,
// served by the test server as W&B would hold it once synced, reads
// through the API as it reads from its folder: the same manifests but for
// what the server assigns (versions v0, v1, …, its own ids, and the alias
// latest on the newest version of a name only), the same files under the same version
// folders (named by digest) with the same bytes, downloaded and checked;
// the entry whose content was lost before upload is named, not copied. A
// second run that used two of the versions lists them with their entries,
// and each version's manifest is downloaded once for both runs. A file
// whose bytes do not match the manifest's MD5 is an error naming it.
func TestArtifacts(t *testing.T) {
	out := testenv.WandbArtifactRun(t)
	ctx := context.Background()
	folder, err := wandbdir.New(wandbdir.Config{Root: out, Entity: "art", ArtifactCache: filepath.Join(out, "cache", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	defer folder.Close()
	d, err := wandbtest.Load(ctx, folder, "art", "tester")
	if err != nil {
		t.Fatal(err)
	}
	p := d.Projects[0]
	if len(p.Runs) != 1 || len(p.Artifacts) != 6 {
		t.Fatalf("loaded %d runs, %d artifact versions", len(p.Runs), len(p.Artifacts))
	}
	prod := p.Runs[0]
	cons := &wandbtest.Run{ID: "artcons1", State: "finished", CreatedAt: prod.CreatedAt, HeartbeatAt: prod.HeartbeatAt,
		Used: []*wandbtest.Artifact{p.Artifacts[0], p.Artifacts[1]}}
	p.Runs = append(p.Runs, cons)
	srv := wandbtest.New(d, key)
	defer srv.Close()
	cloud, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "art", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ref := schema.Ref{System: wandbcloud.System, ID: "art/runferry-artifacts/artprod1"}
	consRef := schema.Ref{System: wandbcloud.System, ID: "art/runferry-artifacts/artcons1"}

	// Manifests: the folder's, with the server's versions and latest.
	var want, got []schema.ArtifactManifest
	for m, err := range folder.Manifests(ctx, ref) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, m)
	}
	count := map[string]int{}
	for i := range want {
		m := &want[i]
		m.Version = "v" + string(rune('0'+count[m.Name]))
		count[m.Name]++
		var al []string
		for _, a := range m.Aliases {
			if a != "latest" {
				al = append(al, a)
			}
		}
		m.Aliases = al
	}
	for i := range want {
		if want[i].Version == "v"+string(rune('0'+count[want[i].Name]-1)) {
			want[i].Aliases = append(want[i].Aliases, "latest")
			want[i].Canonicalize()
		}
	}
	for m, err := range cloud.Manifests(ctx, ref) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, m)
	}
	for i := range min(len(got), len(want)) { // the server's ids, not the SDK's client ids
		if got[i].ID == "" || got[i].ID == want[i].ID {
			t.Errorf("version %d: id %q, the folder's %q", i, got[i].ID, want[i].ID)
		}
		want[i].ID = got[i].ID
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("manifests\n got %+v\nwant %+v", got, want)
	}

	// Files: the artifact files are the folder's, path for path.
	wc, wp, err := readAll(t, folder.Artifacts(ctx, ref))
	if err != nil {
		t.Fatal(err)
	}
	gc, gp, err := readAll(t, cloud.Artifacts(ctx, ref))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, c := range wc {
		if !strings.HasPrefix(path, schema.ArtifactFolder+"/") || schema.IsManifestPath(path) {
			continue
		}
		n++
		if gc[path] != c {
			t.Errorf("%s: got %q, want %q", path, gc[path], c)
		}
	}
	if n < 5 {
		t.Errorf("only %d artifact files compared", n)
	}
	for path := range wp {
		if strings.HasSuffix(path, "/lost.txt") && !strings.Contains(gp[path], "content not stored on the server") {
			t.Errorf("%s: problem %q", path, gp[path])
		}
	}
	if len(gp) != 1 {
		t.Errorf("files with a problem: %v", gp)
	}

	// The consumer lists the two versions it used, with their entries,
	// and the manifests were downloaded once each.
	cc, _, err := readAll(t, cloud.Artifacts(ctx, consRef))
	if err != nil {
		t.Fatal(err)
	}
	used, err := schema.ParseUsed([]byte(cc[schema.UsedArtifactsFile]))
	if err != nil || len(used) != 2 || used[0].Role != schema.ArtifactUsed || !reflect.DeepEqual(used[0].Entries, got[0].Entries) || used[1].Name != got[1].Name {
		t.Errorf("used: %+v %v", used, err)
	}
	if n := cloud.ManifestFetches.Load(); n != 6 {
		t.Errorf("%d manifests downloaded, want 6 (one per version)", n)
	}
	if n := srv.ArtifactManifestDownloads(); n != 6 {
		t.Errorf("the server served %d manifests, want 6", n)
	}

	// A corrupted file is an error naming it.
	p.Artifacts[0].Entries[0].Content = []byte(strings.Repeat("x", len(p.Artifacts[0].Entries[0].Content)))
	fresh, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "art", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = readAll(t, fresh.Artifacts(ctx, ref))
	if err == nil || !strings.Contains(err.Error(), "artifact my-model:v0 file model.pt") || !strings.Contains(err.Error(), "MD5") {
		t.Errorf("corrupted file: %v", err)
	}
}

// expiringURLs serves the W&B artifact run made by the real SDK
// (testenv.WandbArtifactRun) through the W&B API test server, whose first
// answer to the GraphQL query named by query hands out signed URLs that
// have already expired; every other answer's URLs are good. It returns the
// run's folder, a cloud source of the server, and the count of queries
// answered so far. Both are closed with the test.
func expiringURLs(t *testing.T, query string) (*wandbdir.Source, *wandbcloud.Source, *atomic.Int64) {
	t.Helper()
	out := testenv.WandbArtifactRun(t)
	folder, err := wandbdir.New(wandbdir.Config{Root: out, Entity: "art", ArtifactCache: filepath.Join(out, "cache", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { folder.Close() })
	d, err := wandbtest.Load(context.Background(), folder, "art", "tester")
	if err != nil {
		t.Fatal(err)
	}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	listings := new(atomic.Int64)
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/graphql" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if bytes.Contains(b, []byte(query)) && listings.Add(1) == 1 {
				srv.SetURLTTL(-time.Second)
			} else {
				srv.SetURLTTL(0)
			}
		}
		return false
	})
	cloud, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "art", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return folder, cloud, listings
}

// TestArtifactFileURLsExpire: the signed URLs of the first listing of an
// artifact version's files have expired by the time they are fetched: the
// version's files are listed again for fresh URLs, and every file arrives
// with the folder's bytes.
func TestArtifactFileURLsExpire(t *testing.T) {
	ctx := context.Background()
	folder, cloud, listings := expiringURLs(t, "query ArtifactFiles")
	ref := schema.Ref{System: wandbcloud.System, ID: "art/runferry-artifacts/artprod1"}
	wc, _, err := readAll(t, folder.Artifacts(ctx, ref))
	if err != nil {
		t.Fatal(err)
	}
	gc, _, err := readAll(t, cloud.Artifacts(ctx, ref))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, c := range wc {
		if !strings.HasPrefix(path, schema.ArtifactFolder+"/") || schema.IsManifestPath(path) {
			continue
		}
		n++
		if gc[path] != c {
			t.Errorf("%s: got %q, want %q", path, gc[path], c)
		}
	}
	if n < 5 || listings.Load() < 2 {
		t.Errorf("%d artifact files compared, the versions' files listed %d times (want the expired listing asked again)", n, listings.Load())
	}
}

// TestArtifactManifestURLsExpire: artifact manifests whose first signed
// URLs expired (those the run's first contents listing handed out) are
// asked for again with the run's contents listed anew, and the versions
// read are the folder's; without that, Manifests fails with a refused URL.
func TestArtifactManifestURLsExpire(t *testing.T) {
	ctx := context.Background()
	folder, cloud, listings := expiringURLs(t, "query RunContents")
	ref := schema.Ref{System: wandbcloud.System, ID: "art/runferry-artifacts/artprod1"}
	var want, got []string
	for m, err := range folder.Manifests(ctx, ref) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s %s:%s %d entries", m.Role, m.Name, m.Label(), len(m.Entries)))
	}
	for m, err := range cloud.Manifests(ctx, ref) {
		if err != nil {
			t.Fatalf("manifests: %v (contents listed %d times)", err, listings.Load())
		}
		got = append(got, fmt.Sprintf("%s %s:%s %d entries", m.Role, m.Name, m.Label(), len(m.Entries)))
	}
	if len(want) == 0 || fmt.Sprint(got) != fmt.Sprint(want) || listings.Load() != 2 {
		t.Errorf("versions %q, want %q; contents listed %d times, want 2 (the expired listing asked again once)", got, want, listings.Load())
	}
}
