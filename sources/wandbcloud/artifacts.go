package wandbcloud

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/schema"
)

// W&B Artifacts, read through the API.
//
// A run's versions are listed with outputArtifacts (logged) and
// inputArtifacts (used), in the request that lists its files; each version's manifest is downloaded from the
// signed URL of its currentManifest, once per job whatever the number of
// runs that logged or used it (Source.manifest). They map as the folder
// source maps a run's artifact records: a schema.ArtifactManifest per
// version (name, type, version vN, digest, aliases of its own collection,
// tags, description, metadata, id, entries), and the files of the
// versions the run logged among its files, under the version's Folder
// (named by digest, as the folder source names them), with manifest.json
// beside them; the versions it used in schema.UsedArtifactsFile (their
// files are carried by the run that logged them). An entry's content is
// downloaded when opened, from the signed URL the version's file listing
// gives (artifactMembership files, asked once per version as its files
// are listed, again when storage refuses an expired URL), its size and
// MD5 checked against the manifest as it is read; an entry the listing
// lacks comes with a Problem (content not stored on the server).

// cachedManifest is one version's manifest, fetched once.
type cachedManifest struct {
	once sync.Once
	m    wandbapi.Manifest
	err  error
}

// manifest returns the manifest of version a, downloading it the first
// time any run asks; a failed download is tried again by the next caller.
func (s *Source) manifest(ctx context.Context, a wandbapi.Artifact) (wandbapi.Manifest, error) {
	key := a.ID + "\x00" + a.Digest
	s.mu.Lock()
	if s.manifests == nil {
		s.manifests = map[string]*cachedManifest{}
	}
	c := s.manifests[key]
	if c == nil {
		c = &cachedManifest{}
		s.manifests[key] = c
	}
	s.mu.Unlock()
	c.once.Do(func() {
		if a.CurrentManifest == nil || a.CurrentManifest.File.DirectURL == "" {
			c.err = fault.Permanent(fmt.Errorf("wandb: artifact %s:%s has no manifest on the server", a.Sequence.Name, a.Version()))
			return
		}
		s.ManifestFetches.Add(1)
		c.m, c.err = s.api.FetchManifest(wandbapi.About(ctx, fmt.Sprintf("artifact %s:%s manifest", a.Sequence.Name, a.Version())), a.CurrentManifest.File.DirectURL)
		if errors.Is(c.err, wandbapi.ErrURLRefused) {
			c.err = fault.Retryable(fmt.Errorf("wandb: artifact %s:%s manifest: %w", a.Sequence.Name, a.Version(), c.err), 0)
		}
	})
	if c.err != nil {
		s.mu.Lock()
		if s.manifests[key] == c {
			delete(s.manifests, key)
		}
		s.mu.Unlock()
		return wandbapi.Manifest{}, c.err
	}
	return c.m, nil
}

// cloudVersion is one version of a run with its schema manifest.
type cloudVersion struct {
	api wandbapi.Artifact
	m   schema.ArtifactManifest
}

// versions reads the manifests of the run's logged and used versions. A
// manifest whose signed URL the storage refuses (expired since c was
// listed) is asked for again once with the run's contents listed anew
// (wandbapi.Client.Contents: fresh URLs; what its listing page carried is
// forgotten); refused again, it is a retryable error naming the version.
func (s *Source) versions(ctx context.Context, run schema.Ref, c wandbapi.RunContents) (logged, used []cloudVersion, err error) {
	logged, used, err = s.versionsOnce(ctx, run, c)
	if err == nil || !errors.Is(err, wandbapi.ErrURLRefused) {
		return logged, used, err
	}
	p, perr := s.split(run.ID, 2)
	if perr != nil {
		return nil, nil, perr
	}
	s.listedContents(run.ID, true)
	fresh, ferr := s.api.Contents(ctx, s.cfg.Entity, p[0], p[1])
	if ferr != nil {
		return nil, nil, fmt.Errorf("wandb: run %s files and artifacts: %w", run.ID, ferr)
	}
	return s.versionsOnce(ctx, run, fresh)
}

// versionsOnce is versions with the URLs of c alone.
func (s *Source) versionsOnce(ctx context.Context, run schema.Ref, c wandbapi.RunContents) (logged, used []cloudVersion, err error) {
	for _, side := range []struct {
		role schema.ArtifactRole
		l    []wandbapi.Artifact
		dst  *[]cloudVersion
	}{{schema.ArtifactLogged, c.Logged, &logged}, {schema.ArtifactUsed, c.Used, &used}} {
		for _, a := range side.l {
			man, err := s.manifest(ctx, a)
			if err != nil {
				return nil, nil, fmt.Errorf("wandb: run %s: %w", run.ID, err)
			}
			*side.dst = append(*side.dst, cloudVersion{api: a, m: toManifest(side.role, a, man)})
		}
	}
	return logged, used, nil
}

// contents lists the run's files and artifact versions: those its listing
// page carried in export form (take: forgotten after, see
// listedContents), else one request for a run without many (see
// wandbapi.Client.Contents). Contents alone do not fetch the page in
// export form (a history read does, see exportPage): a sync appending a
// run's tail, which reads its files but not its history exports, then
// asks the server for no parquetHistory.
func (s *Source) contents(ctx context.Context, run schema.Ref, take bool) (project string, c wandbapi.RunContents, err error) {
	p, err := s.split(run.ID, 2)
	if err != nil {
		return "", c, err
	}
	if c, ok := s.listedContents(run.ID, take); ok {
		return p[0], c, nil
	}
	c, err = s.api.Contents(ctx, s.cfg.Entity, p[0], p[1])
	if err != nil {
		return "", c, fmt.Errorf("wandb: run %s files and artifacts: %w", run.ID, err)
	}
	return p[0], c, nil
}

// toManifest maps an API version and its manifest.
func toManifest(role schema.ArtifactRole, a wandbapi.Artifact, man wandbapi.Manifest) schema.ArtifactManifest {
	m := schema.ArtifactManifest{Role: role, Name: a.Sequence.Name, Type: a.ArtifactType.Name, Version: a.Version(),
		Digest: a.Digest, Aliases: a.OwnAliases(), ID: a.ID}
	if a.Description != nil {
		m.Description = *a.Description
	}
	if a.Metadata != nil {
		m.Metadata = metadataJSON(*a.Metadata)
	}
	for _, t := range a.Tags {
		m.Tags = append(m.Tags, t.Name)
	}
	for _, p := range slices.Sorted(maps.Keys(man.Contents)) {
		e := man.Contents[p]
		m.Entries = append(m.Entries, schema.ArtifactEntry{Path: p, Size: e.Size, Digest: e.Digest, Ref: e.Ref})
	}
	m.Canonicalize()
	return m
}

// metadataJSON is the metadata string as a compact JSON object, or nil
// when empty; text that is not JSON is kept as a JSON string (as the
// folder source keeps it).
func metadataJSON(s string) json.RawMessage {
	if s == "" || s == "{}" || s == "null" {
		return nil
	}
	var c bytes.Buffer
	if json.Compact(&c, []byte(s)) == nil {
		return c.Bytes()
	}
	b, _ := json.Marshal(s)
	return b
}

// Manifests yields the versions the run logged, then those it used.
func (s *Source) Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return func(yield func(schema.ArtifactManifest, error) bool) {
		_, c, err := s.contents(ctx, run, false)
		if err != nil {
			yield(schema.ArtifactManifest{}, err)
			return
		}
		logged, used, err := s.versions(ctx, run, c)
		if err != nil {
			yield(schema.ArtifactManifest{}, err)
			return
		}
		for _, v := range append(logged, used...) {
			if !yield(v.m, nil) {
				return
			}
		}
	}
}

// artifactName is what W&B accepts as an artifact name; anything else could
// escape the version's folder.
var artifactName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// safeEntryPath is an entry's path inside the version's folder, or "" when
// the path could leave it.
func safeEntryPath(p string) string {
	clean := path.Clean(p)
	if p == "" || clean != p || path.IsAbs(clean) || clean == "." || clean == ".." || strings.HasPrefix(clean, "../") {
		return ""
	}
	return clean
}

// artifactFiles are the run files that carry the versions the run logged
// (and the list of those it used): each version's manifest.json and its
// stored entries, opened from their signed URLs.
func (s *Source) artifactFiles(ctx context.Context, run schema.Ref, project string, c wandbapi.RunContents) ([]schema.Artifact, error) {
	logged, used, err := s.versions(ctx, run, c)
	if err != nil {
		return nil, err
	}
	var out []schema.Artifact
	for _, v := range logged {
		m := v.m
		if !artifactName.MatchString(m.Name) || !artifactName.MatchString(m.Label()) {
			out = append(out, schema.Artifact{Path: schema.ArtifactFolder + "/" + hex.EncodeToString([]byte(m.Name+":"+m.Label())), Size: -1,
				Problem: fmt.Sprintf("artifact %q (%s): name or digest unfit for a folder name, neither its manifest nor its files were carried", m.Name, m.Label())})
			continue
		}
		body, err := schema.MarshalManifest(m)
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: artifact %s: %w", m.Name, err))
		}
		out = append(out, memoryFile(m.Folder()+"/"+schema.ManifestFile, body))
		urls := &versionURLs{s: s, project: project, v: v}
		if v.api.State == "" || v.api.State == "COMMITTED" {
			if err := urls.list(ctx); err != nil {
				return nil, fmt.Errorf("wandb: run %s: artifact %s:%s files: %w", run.ID, m.Name, m.Version, err)
			}
		}
		for _, e := range m.Entries {
			if e.Ref != "" {
				continue
			}
			fp := m.Folder() + "/" + e.Path
			if safeEntryPath(e.Path) == "" {
				out = append(out, schema.Artifact{Path: m.Folder() + "/" + strings.ReplaceAll(e.Path, "/", "_"), Size: -1,
					Problem: fmt.Sprintf("artifact %s (%s) entry %q: unsafe path, not carried", m.Name, m.Version, e.Path)})
				continue
			}
			art := schema.Artifact{Path: fp, Size: e.Size, Open: urls.opener(run, e)}
			switch {
			case v.api.State != "" && v.api.State != "COMMITTED":
				art = schema.Artifact{Path: fp, Size: -1, Problem: fmt.Sprintf("artifact %s:%s is %s on the server: its files are not stored", m.Name, m.Version, v.api.State)}
			case !urls.has(e.Path):
				art = schema.Artifact{Path: fp, Size: -1, Problem: fmt.Sprintf("artifact %s:%s: content not stored on the server (the version's files do not list it)", m.Name, m.Version)}
			}
			out = append(out, art)
		}
	}
	if len(used) > 0 {
		var ms []schema.ArtifactManifest
		for _, v := range used {
			ms = append(ms, v.m)
		}
		body, err := schema.MarshalUsed(ms)
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: used artifacts: %w", err))
		}
		out = append(out, memoryFile(schema.UsedArtifactsFile, body))
	}
	return out, nil
}

// versionURLs are the signed URLs of one version's stored files, listed
// when first needed and again when storage refuses one.
type versionURLs struct {
	s       *Source
	project string
	v       cloudVersion

	mu   sync.Mutex
	urls map[string]string // entry path → directUrl
}

// list asks the server for the version's files and their signed URLs.
func (u *versionURLs) list(ctx context.Context) error {
	urls := map[string]string{}
	for f, err := range u.s.api.ArtifactFiles(ctx, u.s.cfg.Entity, u.project, u.v.m.Name, u.v.m.Version) {
		if err != nil {
			return err
		}
		urls[f.Name] = f.DirectURL
	}
	u.mu.Lock()
	u.urls = urls
	u.mu.Unlock()
	return nil
}

// has reports whether the listing holds the entry p.
func (u *versionURLs) has(p string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.urls[p]
	return ok
}

// get returns the entry's URL, listed again first when fresh.
func (u *versionURLs) get(ctx context.Context, p string, fresh bool) (string, error) {
	if fresh {
		if err := u.list(ctx); err != nil {
			return "", err
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	url, ok := u.urls[p]
	if !ok {
		return "", fault.Permanent(fmt.Errorf("not stored on the server (the version's files do not list it)"))
	}
	return url, nil
}

// opener downloads an entry, checking its size and MD5 as it is read.
func (u *versionURLs) opener(run schema.Ref, e schema.ArtifactEntry) func(context.Context) (io.ReadCloser, error) {
	name := fmt.Sprintf("%s: artifact %s:%s file %s", run.ID, u.v.m.Name, u.v.m.Version, e.Path)
	return func(ctx context.Context) (io.ReadCloser, error) {
		ctx = wandbapi.About(ctx, "run "+name)
		url, err := u.get(ctx, e.Path, false)
		var rc io.ReadCloser
		if err == nil {
			rc, err = u.s.api.Open(ctx, url)
			if errors.Is(err, wandbapi.ErrURLRefused) {
				if url, err = u.get(ctx, e.Path, true); err == nil {
					rc, err = u.s.api.Open(ctx, url)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("wandb: run %s: %w", name, err)
		}
		u.s.ArtifactFileFetches.Add(1)
		return &checkedBody{rc: rc, h: md5.New(), want: e.Size, md5: e.Digest, name: name}, nil
	}
}

// memoryFile is a run file held in memory.
func memoryFile(p string, body []byte) schema.Artifact {
	sum := sha256.Sum256(body)
	return schema.Artifact{Path: p, Size: int64(len(body)), Digest: "sha256:" + hex.EncodeToString(sum[:]),
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }}
}
