package mlflowapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/runferry/runferry/internal/fault"
)

// Artifacts are moved through the server's mlflow-artifacts proxy
// (/api/2.0/mlflow-artifacts/artifacts/<path>), which serves runs whose
// artifact_uri is "mlflow-artifacts:/..." (the default of servers started
// with --serve-artifacts, on since MLflow 2.0.1). Runs stored elsewhere
// (s3://, a server-local path) can be read through the server's
// /get-artifact route but not written.

// ErrNotProxied is returned for writes to a run whose artifact root is not
// served by the mlflow-artifacts proxy.
var ErrNotProxied = errors.New("the run's artifact root is not served by the mlflow-artifacts proxy (start the server with --serve-artifacts and create the experiment without an explicit artifact location)")

// proxyPath returns the path below the proxy of artifact rel of a run with
// artifact root uri.
func proxyPath(uri, rel string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, "mlflow-artifacts:")
	if !ok {
		return "", false
	}
	if h, ok := strings.CutPrefix(rest, "//"); ok { // mlflow-artifacts://host:port/path
		_, p, _ := strings.Cut(h, "/")
		rest = "/" + p
	}
	p := strings.Trim(rest, "/")
	if rel != "" {
		p += "/" + rel
	}
	return p, true
}

func escapePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = url.PathEscape(s)
	}
	return strings.Join(parts, "/")
}

// ListArtifacts yields every file below dir ("" for the root) of a run,
// recursing into directories, sorted by path within each directory.
func (c *Client) ListArtifacts(ctx context.Context, runID, dir string) iter.Seq2[FileInfo, error] {
	return func(yield func(FileInfo, error) bool) {
		c.listArtifacts(ctx, runID, dir, yield)
	}
}

func (c *Client) listArtifacts(ctx context.Context, runID, dir string, yield func(FileInfo, error) bool) bool {
	q := url.Values{"run_id": {runID}}
	if dir != "" {
		q.Set("path", dir)
	}
	var out struct {
		Files []FileInfo `json:"files"`
	}
	if err := c.get(ctx, api+"artifacts/list", q, &out); err != nil {
		return yield(FileInfo{}, err)
	}
	slices.SortFunc(out.Files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	for _, f := range out.Files {
		if f.Path == dir || f.Path == "" {
			continue // some stores list the directory itself
		}
		if f.IsDir {
			if !c.listArtifacts(ctx, runID, f.Path, yield) {
				return false
			}
			continue
		}
		if !yield(f, nil) {
			return false
		}
	}
	return true
}

// OpenArtifact streams the artifact rel of a run: through the proxy when
// the run's root is proxied, else through the server's /get-artifact route.
// The caller closes the body.
func (c *Client) OpenArtifact(ctx context.Context, runID, artifactURI, rel string) (io.ReadCloser, error) {
	var target string
	if p, ok := proxyPath(artifactURI, rel); ok {
		target = c.endpoint("/api/2.0/mlflow-artifacts/artifacts/"+escapePath(p), nil)
	} else {
		target = c.endpoint("/get-artifact", url.Values{"run_id": {runID}, "path": {rel}})
	}
	return c.open(ctx, target, "artifact "+rel)
}

// open streams the body of a GET of target; what names it in errors.
func (c *Client) open(ctx context.Context, target, what string) (io.ReadCloser, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, fault.Permanent(err)
	}
	c.auth(req.Request)
	// Only the response headers are covered by the client's retries and
	// timeout; the body streams without an overall deadline.
	resp, err := c.retryStream.Do(req)
	if err != nil && resp == nil {
		return nil, c.transportError(http.MethodGet, what, err, nil)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		return nil, c.statusError(http.MethodGet, what, resp)
	}
	return resp.Body, nil
}

// UploadArtifact streams body (size bytes, or -1 when unknown) to the
// artifact rel of a run. The body cannot be replayed, so the upload is not
// retried; a failure is retryable at the caller's level.
func (c *Client) UploadArtifact(ctx context.Context, artifactURI, rel string, body io.Reader, size int64) error {
	p, ok := proxyPath(artifactURI, rel)
	if !ok {
		return fault.Permanent(fmt.Errorf("mlflow: uploading %s: %w", rel, ErrNotProxied))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.endpoint("/api/2.0/mlflow-artifacts/artifacts/"+escapePath(p), nil), io.NopCloser(body))
	if err != nil {
		return fault.Permanent(err)
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	c.auth(req)
	resp, err := c.stream.Do(req)
	if err != nil {
		return c.transportError(http.MethodPut, "artifact "+rel, err, nil)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.statusError(http.MethodPut, "artifact "+rel, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// UploadReplayable uploads content that open can produce again (a byte
// slice, a temporary file), retrying like any idempotent request: an upload
// overwrites the same path.
func (c *Client) UploadReplayable(ctx context.Context, artifactURI, rel string, open func() (io.Reader, error), size int64) error {
	p, ok := proxyPath(artifactURI, rel)
	if !ok {
		return fault.Permanent(fmt.Errorf("mlflow: uploading %s: %w", rel, ErrNotProxied))
	}
	req, err := retryablehttp.NewRequestWithContext(withKind(ctx, idempotent), http.MethodPut,
		c.endpoint("/api/2.0/mlflow-artifacts/artifacts/"+escapePath(p), nil), retryablehttp.ReaderFunc(open))
	if err != nil {
		return fault.Permanent(err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	c.auth(req.Request)
	resp, err := c.retry.Do(req)
	if err != nil && resp == nil {
		return c.transportError(http.MethodPut, "artifact "+rel, err, nil)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.statusError(http.MethodPut, "artifact "+rel, resp)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// UploadBytes uploads b to the artifact rel of a run, with retries.
func (c *Client) UploadBytes(ctx context.Context, artifactURI, rel string, b []byte) error {
	return c.UploadReplayable(ctx, artifactURI, rel, func() (io.Reader, error) { return bytes.NewReader(b), nil }, int64(len(b)))
}

// UploadFile uploads the local file path to the artifact rel of a run, with
// retries.
func (c *Client) UploadFile(ctx context.Context, artifactURI, rel, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	var open *os.File
	defer func() {
		if open != nil {
			open.Close()
		}
	}()
	return c.UploadReplayable(ctx, artifactURI, rel, func() (io.Reader, error) {
		if open != nil {
			open.Close()
		}
		open, err = os.Open(path)
		return open, err
	}, fi.Size())
}

// DeleteArtifact removes the artifact rel (a file, or a directory with
// everything below it) of a run with artifact root artifactURI, through
// the mlflow-artifacts proxy. Deleting what is not there is no error.
func (c *Client) DeleteArtifact(ctx context.Context, artifactURI, rel string) error {
	if rel == "" {
		return fault.Permanent(errors.New("mlflow: refusing to delete a run's whole artifact root"))
	}
	p, ok := proxyPath(artifactURI, rel)
	if !ok {
		return fault.Permanent(fmt.Errorf("mlflow: deleting %s: %w", rel, ErrNotProxied))
	}
	var out struct{}
	err := c.call(ctx, idempotent, http.MethodDelete, "/api/2.0/mlflow-artifacts/artifacts/"+escapePath(p), nil, nil, &out)
	if IsNotFound(err) {
		return nil
	}
	return err
}

// ListArtifactDir returns the entries directly below dir ("" for the root)
// of a run's artifacts, without recursing: files and directories, their
// paths relative to the run's artifact root, sorted by path, the directory
// itself left out. A run whose root is proxied (artifactURI
// "mlflow-artifacts:...") is listed through the mlflow-artifacts proxy,
// which lists the store without loading the run from the tracking store
// as artifacts/list does; other runs through artifacts/list. Both list the
// same store, so the entries are those ListArtifacts walks.
func (c *Client) ListArtifactDir(ctx context.Context, runID, artifactURI, dir string) ([]FileInfo, error) {
	var out struct {
		Files []FileInfo `json:"files"`
	}
	root, proxied := proxyPath(artifactURI, "")
	if proxied {
		if err := c.get(ctx, "/api/2.0/mlflow-artifacts/artifacts", url.Values{"path": {path.Join(root, dir)}}, &out); err != nil {
			return nil, err
		}
		for i := range out.Files {
			out.Files[i].Path = path.Join(dir, path.Base(out.Files[i].Path)) // the proxy lists base names
		}
	} else {
		q := url.Values{"run_id": {runID}}
		if dir != "" {
			q.Set("path", dir)
		}
		if err := c.get(ctx, api+"artifacts/list", q, &out); err != nil {
			return nil, err
		}
	}
	files := out.Files[:0]
	for _, f := range out.Files {
		if f.Path == dir || f.Path == "" || f.Path == "." {
			continue // some stores list the directory itself
		}
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b FileInfo) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}
