package mlflowsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowlocal"
)

// artifactDir returns the local folder of an artifact URI, or why it has
// none here: an absolute path, a file: URI, or mlflow-artifacts:/... below
// the artifacts option (the server's --artifacts-destination).
func (s *store) artifactDir(uri string) (dir, why string) {
	switch {
	case uri == "":
		return "", "no artifact location"
	case strings.HasPrefix(uri, "/"):
		return filepath.FromSlash(uri), ""
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		if s.artifacts == "" {
			return "", "mlflow-artifacts: locations, and no ?artifacts=FOLDER given (the server's --artifacts-destination)"
		}
		u, err := url.Parse(uri)
		if err != nil {
			return "", "bad artifact location"
		}
		dir := filepath.Join(s.artifacts, filepath.FromSlash(path.Clean("/"+u.Path)))
		if rel, err := filepath.Rel(s.artifacts, dir); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", "mlflow-artifacts: locations outside the artifacts folder"
		}
		return dir, ""
	case strings.HasPrefix(uri, "file:"):
		u, err := url.Parse(uri)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			return "", "file: locations on another host"
		}
		p := u.Path
		if u.Opaque != "" {
			p = u.Opaque
		}
		if len(p) > 2 && p[0] == '/' && p[2] == ':' { // file:///C:/...
			return "", "Windows paths"
		}
		return filepath.FromSlash(p), ""
	}
	if i := strings.Index(uri, ":"); i > 1 && !strings.ContainsAny(uri[:i], "/\\") {
		return "", uri[:i] + ": locations (only local folders are read directly)"
	}
	return "", "relative artifact locations (relative to where the server ran)"
}

// unread records that the files at key (a run id, or a logged model's
// location) were not read here, and why (Omitted counts them).
func (s *store) unread(key, why string) {
	s.mu.Lock()
	s.noDir[key] = why
	s.mu.Unlock()
}

// unreadWhy returns why the files of run id were not read, or "".
func (s *store) unreadWhy(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.noDir[id]
}

// runArtifactURI returns the artifact_uri of run id.
func (s *store) runArtifactURI(ctx context.Context, id string) (string, error) {
	s.mu.Lock()
	uri, ok := s.uris[id]
	s.mu.Unlock()
	if ok {
		return uri, nil
	}
	var v sql.NullString
	err := s.st.DB.QueryRowContext(ctx, s.q("SELECT artifact_uri FROM runs WHERE run_uuid = ?"), id).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("run %s not found", id)
	}
	if err != nil {
		return "", dbErr(ctx, "run "+id, err)
	}
	return v.String, nil
}

// ListArtifacts yields every file below dir of run runID's artifact
// location, recursively, with paths relative to it. A location that is no
// folder here yields none (recorded with the reason, for Omitted); a
// folder that does not exist holds no files (MLflow makes it with the
// first file, and its server lists none either).
func (s *store) ListArtifacts(ctx context.Context, runID, dir string) iter.Seq2[mlflowapi.FileInfo, error] {
	return func(yield func(mlflowapi.FileInfo, error) bool) {
		uri, err := s.runArtifactURI(ctx, runID)
		if err != nil {
			yield(mlflowapi.FileInfo{}, err)
			return
		}
		root, why := s.artifactDir(uri)
		if why != "" {
			s.unread(runID, why)
			return
		}
		if dir != "" && !mlflowlocal.ValidRel(dir) {
			yield(mlflowapi.FileInfo{}, fault.Permanent(fmt.Errorf("mlflow store: bad artifact path %q", dir)))
			return
		}
		if err := mlflowlocal.WalkFiles(ctx, root, dir, yield); err != nil {
			yield(mlflowapi.FileInfo{}, fault.Permanent(fmt.Errorf("mlflow run %s: listing its files in %s: %w", runID, root, err)))
		}
	}
}

// OpenArtifact opens file rel below artifact location artifactURI (of run
// runID, or of a logged model or trace). A location that is no folder here
// is "not found" (as a server without access to it answers), recorded for
// run runID with the reason.
func (s *store) OpenArtifact(_ context.Context, runID, artifactURI, rel string) (io.ReadCloser, error) {
	if !mlflowlocal.ValidRel(rel) {
		return nil, fault.Permanent(fmt.Errorf("mlflow store: bad artifact path %q", rel))
	}
	root, why := s.artifactDir(artifactURI)
	if why != "" {
		if runID != "" {
			s.unread(runID, why)
		}
		return nil, notFound("artifact %s: %s not read here (%s)", rel, artifactURI, why)
	}
	f, err := os.Open(filepath.Join(root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notFound("artifact %s not found in %s", rel, root)
	}
	if err != nil {
		return nil, fault.Permanent(err)
	}
	return f, nil
}

// ListProxied yields every file below a logged model's artifact location
// when it is one the server's mlflow-artifacts proxy serves; any other is
// mlflowapi.ErrNotProxied, as through the server. One that cannot be read
// here (no artifacts option) yields none and is recorded for Omitted.
func (s *store) ListProxied(ctx context.Context, uri string) iter.Seq2[mlflowapi.FileInfo, error] {
	return func(yield func(mlflowapi.FileInfo, error) bool) {
		if !strings.HasPrefix(uri, "mlflow-artifacts:") {
			yield(mlflowapi.FileInfo{}, mlflowapi.ErrNotProxied)
			return
		}
		root, why := s.artifactDir(uri)
		if why != "" {
			s.unread("logged model at "+uri, why)
			return
		}
		if err := mlflowlocal.WalkFiles(ctx, root, "", yield); err != nil {
			yield(mlflowapi.FileInfo{}, fault.Permanent(fmt.Errorf("listing %s: %w", root, err)))
		}
	}
}
