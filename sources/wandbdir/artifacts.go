package wandbdir

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// runArtifacts is what a run's logs say about W&B Artifacts: the
// ArtifactRecords (offline log_artifact) and UseArtifactRecords, in log
// order.
type runArtifacts struct {
	logged []*wandbfile.Artifact
	used   []*wandbfile.UseArtifact
}

// record keeps rec if it is about artifacts.
func (a *runArtifacts) record(rec *wandbfile.Record) {
	switch {
	case rec.Artifact != nil:
		a.logged = append(a.logged, rec.Artifact)
	case rec.UseArtifact != nil:
		a.used = append(a.used, rec.UseArtifact)
	}
}

// artifactRecords returns the run's artifact records: those its metadata
// pass (readRun) kept, else those read now from its logs.
func (ri *runInfo) artifactRecords(ctx context.Context) (*runArtifacts, error) {
	ri.mu.Lock()
	a := ri.artifacts
	ri.mu.Unlock()
	if a != nil {
		return a, nil
	}
	a = &runArtifacts{}
	_, err := walk(ctx, ri, handler{record: func(_ *segment, rec *wandbfile.Record) error { a.record(rec); return nil }})
	if err != nil {
		return nil, err
	}
	ri.setArtifacts(a)
	return a, nil
}

// setArtifacts keeps a for later calls.
func (ri *runInfo) setArtifacts(a *runArtifacts) {
	ri.mu.Lock()
	ri.artifacts = a
	ri.mu.Unlock()
}

// loggedVersion is one artifact version a run logged, with where its entries'
// content was staged.
type loggedVersion struct {
	manifest schema.ArtifactManifest
	local    []string // per entry (in manifest order): the SDK's staged copy, or ""
	problem  string   // why none of its entries can be carried, or ""
	noFolder bool     // the name or label cannot name a folder: nothing is carried
}

// artifactName is what W&B accepts as an artifact name; anything else could
// escape the version's folder.
var artifactName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// versions turns the records into manifests: logged versions first (one per
// name and digest, aliases merged, in the order first logged), then used
// ones (one per id or name).
func (a *runArtifacts) versions() (logged []loggedVersion, used []schema.ArtifactManifest) {
	seen := map[string]int{}
	for _, rec := range a.logged {
		key := rec.Name + "\x00" + rec.Digest
		if i, ok := seen[key]; ok {
			m := &logged[i].manifest
			m.Aliases = append(m.Aliases, rec.Aliases...)
			m.Canonicalize()
			continue
		}
		seen[key] = len(logged)
		m := schema.ArtifactManifest{Role: schema.ArtifactLogged, Name: rec.Name, Type: rec.Type,
			Digest: rec.Digest, Aliases: slices.Clone(rec.Aliases), Tags: slices.Clone(rec.Tags),
			Description: rec.Description, ID: rec.ClientID, Metadata: metadataJSON(rec.Metadata)}
		v := loggedVersion{}
		// Canonical order first, so that local lines up with the entries.
		entries := slices.Clone(rec.Entries)
		slices.SortStableFunc(entries, func(x, y wandbfile.ArtifactEntry) int { return strings.Compare(x.Path, y.Path) })
		for _, e := range entries {
			m.Entries = append(m.Entries, schema.ArtifactEntry{Path: e.Path, Size: e.Size, Digest: e.Digest, Ref: e.Ref})
			v.local = append(v.local, e.LocalPath)
		}
		m.Canonicalize()
		v.manifest = m
		switch {
		case !artifactName.MatchString(rec.Name) || !artifactName.MatchString(m.Label()):
			v.noFolder = true
			v.problem = fmt.Sprintf("artifact %q (digest %q): name or digest unfit for a folder name, neither its manifest nor its files were carried", rec.Name, rec.Digest)
		case rec.ManifestFile != "":
			v.problem = fmt.Sprintf("artifact %s: its manifest was kept in a separate file on the machine that wrote the run (%s), not in the log: entries not carried", rec.Name, rec.ManifestFile)
		}
		logged = append(logged, v)
	}
	usedSeen := map[string]bool{}
	for _, rec := range a.used {
		m := schema.ArtifactManifest{Role: schema.ArtifactUsed, Type: rec.Type, ID: rec.ID}
		m.Name, m.Version, m.Aliases = splitUsedName(rec.Name)
		key := cmp.Or(rec.ID, rec.Name)
		if usedSeen[key] {
			continue
		}
		usedSeen[key] = true
		m.Canonicalize()
		used = append(used, m)
	}
	return logged, used
}

// splitUsedName splits a used artifact's "[entity/project/]name:v3" or
// "name:alias" into its name and version, or alias.
func splitUsedName(s string) (name, version string, aliases []string) {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	name, tail, ok := strings.Cut(s, ":")
	if !ok {
		return name, "", nil
	}
	if len(tail) > 1 && tail[0] == 'v' && strings.Trim(tail[1:], "0123456789") == "" {
		return name, tail, nil
	}
	return name, "", []string{tail}
}

// metadataJSON is the metadata string as a JSON object, or nil when empty;
// text that is not JSON is kept as a JSON string.
func metadataJSON(s string) json.RawMessage {
	if s == "" || s == "{}" || s == "null" {
		return nil
	}
	if json.Valid([]byte(s)) {
		var c bytes.Buffer
		if json.Compact(&c, []byte(s)) == nil {
			return c.Bytes()
		}
	}
	b, _ := json.Marshal(s)
	return b
}

// entryPath is an entry's path inside the version's folder, or "" when the
// path could leave it.
func entryPath(p string) string {
	clean := path.Clean(p)
	if p == "" || clean == "." || clean != p || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return ""
	}
	return clean
}

// cachePath is where W&B's artifact cache keeps content of the base64 MD5
// digest (obj/md5/<hex[:2]>/<hex[2:]>), or "" when digest is not one.
func cachePath(cacheDir, digest string) string {
	raw, err := base64.StdEncoding.DecodeString(digest)
	if cacheDir == "" || err != nil || len(raw) != md5.Size {
		return ""
	}
	h := hex.EncodeToString(raw)
	return filepath.Join(cacheDir, "obj", "md5", h[:2], h[2:])
}

// entryFile is an entry's content found on disk, or why there is none.
type entryFile struct {
	abs     string // the file, or ""
	problem string
}

// finder looks for the content of artifact entries whose staged copy is
// gone: in W&B's artifact cache, and among the run's own files (a
// wandb.Table logged by a run is also an artifact whose entry is the
// table file under files/media/).
type finder struct {
	cacheDir string
	files    []fileEntry       // the run's readable files
	md5s     map[string]string // abs path → base64 MD5, computed on demand
}

// newFinder returns a finder for ri's entries.
func newFinder(ri *runInfo, cacheDir string) (*finder, error) {
	files, err := listFiles(ri, false)
	if err != nil {
		return nil, err
	}
	f := &finder{cacheDir: cacheDir, md5s: map[string]string{}}
	for _, fe := range files {
		if fe.problem == "" && !fe.folder {
			f.files = append(f.files, fe)
		}
	}
	return f, nil
}

// inRunFiles returns a run file with the entry's size and MD5, or "".
func (f *finder) inRunFiles(e schema.ArtifactEntry) string {
	for _, fe := range f.files {
		if fe.size != e.Size {
			continue
		}
		sum, ok := f.md5s[fe.abs]
		if !ok {
			sum = md5File(fe.abs)
			f.md5s[fe.abs] = sum
		}
		if sum != "" && sum == e.Digest {
			return fe.abs
		}
	}
	return ""
}

// md5File is the base64 MD5 of a file's content, or "" if unreadable.
func md5File(path string) string {
	fh, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer fh.Close()
	h := md5.New()
	if _, err := io.Copy(h, fh); err != nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// locate finds an entry's content: its staged copy (local), else the copy
// in W&B's artifact cache, either only if its size matches, else a run
// file of the same size and MD5. A reference entry has no content to
// carry (problem and abs both "").
func (f *finder) locate(e schema.ArtifactEntry, local string) entryFile {
	if e.Ref != "" {
		return entryFile{}
	}
	// The notes name the staged copy (the run's log records it) but not
	// the cache path, which depends on the option given: the same run read
	// with another cache option must give the same notes where the
	// outcome is the same.
	var tried []string
	for i, p := range []string{local, cachePath(f.cacheDir, e.Digest)} {
		if p == "" {
			continue
		}
		where := "staged copy " + p
		if i == 1 {
			where = "W&B artifact cache"
		}
		st, err := os.Stat(p)
		switch {
		case err != nil && os.IsNotExist(err) && i == 1:
			tried = append(tried, "not in the "+where)
		case err != nil:
			tried = append(tried, fmt.Sprintf("%s: %v", where, cause(err)))
		case !st.Mode().IsRegular():
			tried = append(tried, where+": not a regular file")
		case st.Size() != e.Size:
			tried = append(tried, fmt.Sprintf("%s: %d bytes, the manifest says %d", where, st.Size(), e.Size))
		default:
			return entryFile{abs: p}
		}
	}
	if p := f.inRunFiles(e); p != "" {
		return entryFile{abs: p}
	}
	tried = append(tried, "not among the run's files")
	return entryFile{problem: "content not found (" + strings.Join(tried, "; ") + ")"}
}

// artifactDamage names, for the run's Damage, what the run's log says
// about artifacts that cannot be carried at all: a name or digest unfit
// for a folder, a manifest kept outside the log, an entry path that would
// leave the version's folder. Entries whose content is not found are not
// damage of the run folder (the SDK staged that content elsewhere on the
// machine that wrote the run): they are files with a Problem
// (artifactFiles), named in the report as files not copied.
func artifactDamage(a *runArtifacts) []string {
	logged, _ := a.versions()
	var notes []string
	for _, v := range logged {
		m := v.manifest
		if v.problem != "" {
			notes = append(notes, v.problem)
			continue
		}
		for _, e := range m.Entries {
			if entryPath(e.Path) == "" {
				notes = append(notes, fmt.Sprintf("artifact %s (%s) entry %q: unsafe path, not carried", m.Name, m.Label(), e.Path))
			}
		}
	}
	return notes
}

// artifactFiles returns the run files that carry the logged versions: each
// entry's content as <folder>/<entry path> (with a Problem when it cannot
// be found, or when what was found does not match the manifest's MD5),
// and <folder>/manifest.json, plus schema.UsedArtifactsFile for the
// versions it used. Reference entries are only in the manifest.
// The result is sorted by path.
func artifactFiles(ctx context.Context, a *runArtifacts, find *finder) ([]schema.Artifact, error) {
	logged, _ := a.versions()
	var out []schema.Artifact
	for _, v := range logged {
		m := v.manifest
		if v.noFolder {
			continue
		}
		folder := m.Folder()
		body, err := schema.MarshalManifest(m)
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: artifact %s: %w", m.Name, err))
		}
		out = append(out, memoryFile(folder+"/"+schema.ManifestFile, body))
		if v.problem != "" {
			continue
		}
		for i, e := range m.Entries {
			p := entryPath(e.Path)
			if p == "" || e.Ref != "" {
				continue
			}
			f := find.locate(e, v.local[i])
			art := schema.Artifact{Path: folder + "/" + p, Size: -1, Problem: f.problem}
			if f.abs != "" {
				var err error
				if art, err = entryArtifact(ctx, art.Path, f.abs, e); err != nil {
					return nil, err
				}
			}
			out = append(out, art)
		}
	}
	if _, used := a.versions(); len(used) > 0 {
		body, err := schema.MarshalUsed(used)
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: used artifacts: %w", err))
		}
		out = append(out, memoryFile(schema.UsedArtifactsFile, body))
	}
	slices.SortFunc(out, func(x, y schema.Artifact) int { return strings.Compare(x.Path, y.Path) })
	return out, nil
}

// entryArtifact hashes the content at abs and returns it as the run file
// p, with a Problem when its MD5 is not the entry's digest.
func entryArtifact(ctx context.Context, p, abs string, e schema.ArtifactEntry) (schema.Artifact, error) {
	art := schema.Artifact{Path: p, Size: -1}
	f, err := os.Open(abs)
	if err != nil {
		art.Problem = fmt.Sprintf("unreadable (%v)", cause(err))
		return art, nil
	}
	defer f.Close()
	sum, md := sha256.New(), md5.New()
	n, err := io.Copy(io.MultiWriter(sum, md), ctxReader{ctx, f})
	if err != nil {
		if ctx.Err() != nil {
			return art, ctx.Err()
		}
		art.Problem = fmt.Sprintf("unreadable (%v)", err)
		return art, nil
	}
	if got := base64.StdEncoding.EncodeToString(md.Sum(nil)); got != e.Digest {
		art.Problem = fmt.Sprintf("content found has MD5 %s, the manifest says %s", got, e.Digest)
		return art, nil
	}
	art.Size, art.Digest = n, "sha256:"+hex.EncodeToString(sum.Sum(nil))
	art.Open = func(context.Context) (io.ReadCloser, error) {
		rc, err := os.Open(abs)
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: %w", err))
		}
		return rc, nil
	}
	return art, nil
}

// memoryFile is a run file held in memory.
func memoryFile(p string, body []byte) schema.Artifact {
	sum := sha256.Sum256(body)
	return schema.Artifact{Path: p, Size: int64(len(body)), Digest: "sha256:" + hex.EncodeToString(sum[:]),
		Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }}
}

// defaultArtifactCache is where the wandb SDK keeps its artifact cache:
// $WANDB_CACHE_DIR/artifacts, else <user cache dir>/wandb/artifacts.
func defaultArtifactCache() string {
	if d := os.Getenv("WANDB_CACHE_DIR"); d != "" {
		return filepath.Join(d, "artifacts")
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "wandb", "artifacts")
	}
	return ""
}
