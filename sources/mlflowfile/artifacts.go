package mlflowfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowlocal"
)

// artifactResolver finds the local folder of an artifact root URI as a
// file store records it: file:///abs/path (with %-escapes such as %20),
// a bare path (MLflow 1.x), mlflow-artifacts:/PATH (below the server's
// --artifacts-destination), or a Windows path (C:\..., file:///C:/...).
// When the URI does not resolve (the store was moved or made on another
// machine) and fallback is on, the folder next to the store where MLflow
// puts artifacts by default is used (<run folder>/artifacts,
// <model folder>/artifacts).
type artifactResolver struct {
	root     string // the store, absolute
	dest     string // where mlflow-artifacts: URIs point; "" for <store>/../mlartifacts
	fallback bool
}

var windowsPath = regexp.MustCompile(`^/?[A-Za-z]:[\\/]`)

// local returns the local path a URI names on this machine, or false for
// a URI that names no local path (another scheme, another OS's path).
func (a artifactResolver) local(uri string) (string, bool) {
	switch {
	case uri == "":
		return "", false
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		rest := strings.TrimPrefix(uri, "mlflow-artifacts:")
		if h, ok := strings.CutPrefix(rest, "//"); ok {
			_, p, _ := strings.Cut(h, "/")
			rest = p
		}
		rest = strings.Trim(rest, "/")
		if p, err := url.PathUnescape(rest); err == nil {
			rest = p
		}
		dest := a.dest
		if dest == "" {
			dest = filepath.Join(filepath.Dir(a.root), "mlartifacts")
		}
		return filepath.Join(dest, filepath.FromSlash(rest)), true
	case strings.HasPrefix(uri, "file:"):
		u, err := url.Parse(uri)
		if err != nil {
			return "", false
		}
		p := u.Path
		if u.Opaque != "" {
			if p, err = url.PathUnescape(u.Opaque); err != nil {
				return "", false
			}
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", false // a UNC share
		}
		return a.localPath(p)
	case windowsPath.MatchString(uri):
		return a.localPath(uri)
	case strings.Contains(uri, "://"):
		return "", false // s3://, gs://, hdfs://, dbfs:/... are not read here
	}
	return a.localPath(uri)
}

func (a artifactResolver) localPath(p string) (string, bool) {
	if windowsPath.MatchString(p) {
		if runtime.GOOS != "windows" {
			return "", false
		}
		return filepath.FromSlash(strings.TrimPrefix(p, "/")), true
	}
	if !filepath.IsAbs(p) { // relative to where the client ran: mostly beside mlruns/
		return filepath.Join(filepath.Dir(a.root), filepath.FromSlash(p)), true
	}
	return filepath.FromSlash(p), true
}

// resolve returns the folder holding the files of artifact root uri, whose
// default place in the store is near; ok is false when neither exists.
func (a artifactResolver) resolve(uri, near string) (string, bool) {
	if p, ok := a.local(uri); ok && isDir(p) {
		return p, true
	}
	if a.fallback && near != "" && isDir(near) {
		return near, true
	}
	return "", false
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// nearOf returns the folder next to the store for an artifact root: the
// run's or the model's artifacts/ folder.
func (s *store) nearOf(uri string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.near[uri]
}

func (s *store) setNear(uri, dir string) {
	if uri == "" {
		return
	}
	s.mu.Lock()
	s.near[uri] = dir
	s.mu.Unlock()
}

// runArtifacts returns the folder of run id's files; ok is false when it
// is nowhere (recorded for Omitted).
func (s *store) runArtifacts(runID string) (string, bool, error) {
	rd, err := s.runDirOf(runID)
	if err != nil {
		return "", false, err
	}
	var m runMeta
	if err := readMeta(filepath.Join(rd.dir, metaFile), &m); err != nil {
		return "", false, damaged(err)
	}
	dir, ok := s.arts.resolve(m.ArtifactURI, filepath.Join(rd.dir, "artifacts"))
	if !ok {
		s.mu.Lock()
		s.unfounded[runID] = true
		s.mu.Unlock()
	}
	return dir, ok, nil
}

// ListArtifacts yields every file below dir of run runID's artifact root,
// recursively, sorted by path. A root that is nowhere has no files (as a
// server lists it); Omitted counts such runs.
func (s *store) ListArtifacts(ctx context.Context, runID, dir string) iter.Seq2[mlflowapi.FileInfo, error] {
	return func(yield func(mlflowapi.FileInfo, error) bool) {
		root, ok, err := s.runArtifacts(runID)
		if err != nil {
			yield(mlflowapi.FileInfo{}, err)
			return
		}
		if !ok {
			return
		}
		if dir != "" {
			if !mlflowlocal.ValidRel(dir) {
				yield(mlflowapi.FileInfo{}, fault.Permanent(fmt.Errorf("mlflow file store: bad artifact path %q", dir)))
				return
			}
		}
		walkFiles(ctx, root, dir, yield)
	}
}

// walkFiles yields the files below root/dir with paths relative to root
// (mlflowlocal.WalkFiles), then the error of a walk that failed.
func walkFiles(ctx context.Context, root, dir string, yield func(mlflowapi.FileInfo, error) bool) {
	if err := mlflowlocal.WalkFiles(ctx, root, dir, yield); err != nil {
		yield(mlflowapi.FileInfo{}, damaged(err))
	}
}

// OpenArtifact opens file rel below artifact root artifactURI (of run
// runID, or of a logged model or trace).
func (s *store) OpenArtifact(_ context.Context, runID, artifactURI, rel string) (io.ReadCloser, error) {
	if !mlflowlocal.ValidRel(rel) {
		return nil, fault.Permanent(fmt.Errorf("mlflow file store: bad artifact path %q", rel))
	}
	near := s.nearOf(artifactURI)
	if near == "" && runID != "" {
		if rd, err := s.runDirOf(runID); err == nil {
			near = filepath.Join(rd.dir, "artifacts")
		}
	}
	root, ok := s.arts.resolve(artifactURI, near)
	if !ok {
		return nil, notFound("artifact %s: root %s not found", rel, artifactURI)
	}
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("artifact %s not found in %s", rel, root)
	}
	if err != nil {
		return nil, damaged(err)
	}
	return f, nil
}

// ListProxied yields every file below the artifact root uri (a logged
// model's), recursively; a root that is nowhere is mlflowapi.ErrNotProxied,
// which the source reports as the model's files not found.
func (s *store) ListProxied(ctx context.Context, uri string) iter.Seq2[mlflowapi.FileInfo, error] {
	return func(yield func(mlflowapi.FileInfo, error) bool) {
		root, ok := s.arts.resolve(uri, s.nearOf(uri))
		if !ok {
			yield(mlflowapi.FileInfo{}, mlflowapi.ErrNotProxied)
			return
		}
		walkFiles(ctx, root, "", yield)
	}
}
