package wandbapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/runferry/runferry/internal/fault"
)

const parquetHistoryQuery = `query RunParquetHistory($entity: String!, $project: String!, $runName: String!, $liveKeys: [String!]!) {
  project(name: $project, entityName: $entity) {
    run(name: $runName) { parquetHistory(liveKeys: $liveKeys) { parquetUrls liveData } }
  }
}`

// ErrNoParquetHistory is returned (wrapped) by ParquetHistory when the
// server does not know the parquetHistory field (an older W&B Server):
// readers then use the paged history scan.
var ErrNoParquetHistory = errors.New("the server has no parquet history exports")

// ParquetHistory returns the signed URLs of the run's parquet history
// exports and the steps of its live tail (the rows not exported yet), as
// W&B's own reader asks for them (liveKeys ["_step"]). The URLs' order is
// not meaningful.
func (c *Client) ParquetHistory(ctx context.Context, entity, project, id string) (urls []string, liveSteps []int64, err error) {
	var out struct {
		Project *struct {
			Run *struct {
				ParquetHistory *parquetHistory `json:"parquetHistory"`
			} `json:"run"`
		} `json:"project"`
	}
	vars := map[string]any{"entity": entity, "project": project, "runName": id, "liveKeys": []string{"_step"}}
	if err := c.Query(ctx, parquetHistoryQuery, vars, &out); err != nil {
		if fault.KindOf(err) == fault.KindPermanent && strings.Contains(err.Error(), "parquetHistory") {
			return nil, nil, fmt.Errorf("%w: %v", ErrNoParquetHistory, err)
		}
		return nil, nil, err
	}
	if out.Project == nil || out.Project.Run == nil {
		return nil, nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host))
	}
	if out.Project.Run.ParquetHistory == nil {
		return nil, nil, nil
	}
	e, err := out.Project.Run.ParquetHistory.exports(entity, project, id)
	if err != nil {
		return nil, nil, err
	}
	return e.URLs, e.LiveSteps, nil
}

// ErrURLRefused is returned (wrapped) by Download when storage refuses a
// signed URL (403: expired or not valid): ask for a fresh one.
var ErrURLRefused = errors.New("signed URL refused (expired?)")

// Download GETs a signed URL into w, streamed, without the API key (a
// signed URL carries its own authorisation; the key is sent only to the
// API's host). want, when not negative, is the size the body must have;
// a Content-Length that differs from what arrives is an error too.
// Network failures, 429 and 5xx are retried as for queries. It returns
// the bytes written.
func (c *Client) Download(ctx context.Context, rawURL string, w io.Writer, want int64) (int64, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return 0, fault.Permanent(fmt.Errorf("wandb: bad download URL %q", redactURL(rawURL)))
	}
	req, err := retryablehttp.NewRequestWithContext(withState(ctx, "GET "+redactURL(rawURL)), http.MethodGet, rawURL, nil)
	if err != nil {
		return 0, fault.Permanent(fmt.Errorf("wandb: %w", err))
	}
	req.Header.Set("User-Agent", "runferry")
	rctx, done, err := c.downloadSlot(req.Context())
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req.WithContext(rctx))
	if err != nil {
		done(false)
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fault.Retryable(fmt.Errorf("wandb: GET %s: %s", redactURL(rawURL), c.scrub(redactErr(err.Error(), rawURL))), 0)
	}
	defer resp.Body.Close()
	ok := false
	defer func() { done(ok) }()
	switch {
	case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
		return 0, fmt.Errorf("wandb: GET %s: %d: %w", redactURL(rawURL), resp.StatusCode, ErrURLRefused)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return 0, fault.Retryable(fmt.Errorf("wandb: GET %s: %d %s after retries", redactURL(rawURL), resp.StatusCode, http.StatusText(resp.StatusCode)), retryAfter(resp))
	case resp.StatusCode/100 != 2:
		return 0, fault.Permanent(fmt.Errorf("wandb: GET %s: %d %s", redactURL(rawURL), resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
		return n, fault.Retryable(fmt.Errorf("wandb: GET %s: after %d bytes: %s", redactURL(rawURL), n, c.scrub(redactErr(err.Error(), rawURL))), 0)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, fault.Retryable(fmt.Errorf("wandb: GET %s: %d bytes of %d arrived", redactURL(rawURL), n, resp.ContentLength), 0)
	}
	if want >= 0 && n != want {
		return n, fault.Permanent(fmt.Errorf("wandb: GET %s: %d bytes, want %d", redactURL(rawURL), n, want))
	}
	ok = true
	return n, nil
}

// Spooled is a downloaded body, read at any offset: held in memory when
// it is small, else in a temporary file (see DownloadSpooled). Close
// releases it (and removes the file).
type Spooled struct {
	io.ReaderAt
	Size int64
	file *os.File
}

// InFile tells whether the body is held in a temporary file.
func (s *Spooled) InFile() bool { return s.file != nil }

// Close releases the body; a temporary file is closed and removed.
func (s *Spooled) Close() error {
	if s.file == nil {
		s.ReaderAt = nil
		return nil
	}
	err := s.file.Close()
	os.Remove(s.file.Name())
	s.file, s.ReaderAt = nil, nil
	return err
}

// DownloadSpooled downloads a signed URL as Download does and holds its
// body: in memory when it has at most inMemory bytes, else in a new
// temporary file in dir (os.TempDir when empty). A small body so costs
// no file's create, write, close and remove (most of a small run's
// export: docs/BENCHMARKS.md); a large one no more memory than
// inMemory. The caller closes it.
func (c *Client) DownloadSpooled(ctx context.Context, rawURL, dir string, inMemory int64) (*Spooled, error) {
	w := &spoolWriter{dir: dir, limit: inMemory}
	n, err := c.Download(ctx, rawURL, w, -1)
	if w.err != nil {
		err = fault.Fatal(fmt.Errorf("wandb: temporary file: %w", w.err))
	}
	if err != nil {
		w.discard()
		return nil, err
	}
	if w.file == nil {
		return &Spooled{ReaderAt: bytes.NewReader(w.buf), Size: n}, nil
	}
	return &Spooled{ReaderAt: w.file, Size: n, file: w.file}, nil
}

// spoolWriter holds what is written in buf up to limit bytes, then moves
// it into a temporary file and writes the rest there. A failure to make
// or write the file is kept in err (a local fault, not the download's).
type spoolWriter struct {
	dir   string
	limit int64
	buf   []byte
	file  *os.File
	err   error
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.file == nil && int64(len(w.buf)+len(p)) <= w.limit {
		w.buf = append(w.buf, p...)
		return len(p), nil
	}
	if w.file == nil {
		f, err := os.CreateTemp(w.dir, "runferry-wandb-*.part")
		if err != nil {
			w.err = err
			return 0, err
		}
		w.file = f
		if _, err := f.Write(w.buf); err != nil {
			w.err = err
			return 0, err
		}
		w.buf = nil
	}
	n, err := w.file.Write(p)
	if err != nil {
		w.err = err
	}
	return n, err
}

// discard removes the temporary file, if any.
func (w *spoolWriter) discard() {
	if w.file != nil {
		w.file.Close()
		os.Remove(w.file.Name())
		w.file = nil
	}
	w.buf = nil
}

// redactURL drops a signed URL's query (its signature) for messages.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

func redactErr(msg, rawURL string) string {
	return strings.ReplaceAll(msg, rawURL, redactURL(rawURL))
}

// Open GETs a URL and returns its body, streamed; the caller closes it.
// The API key is sent only when the URL is on the API's host (a run file's
// url); a signed URL (directUrl) carries its own authorisation. Storage
// refusing it (403) is ErrURLRefused (wrapped): ask for a fresh URL. The
// request holds its slot (an API slot when the key is sent, else a
// download slot: see pace.go) until the body is closed.
func (c *Client) Open(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fault.Permanent(fmt.Errorf("wandb: bad download URL %q", redactURL(rawURL)))
	}
	req, err := retryablehttp.NewRequestWithContext(withState(ctx, "GET "+redactURL(rawURL)), http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("wandb: %w", err))
	}
	req.Header.Set("User-Agent", "runferry")
	slot := c.downloadSlot
	if u.Host == c.host {
		req.SetBasicAuth("api", c.key)
		slot = c.slot // a request to the API, not to storage
	}
	rctx, done, err := slot(req.Context())
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req.WithContext(rctx))
	if err != nil {
		done(false)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fault.Retryable(fmt.Errorf("wandb: GET %s: %s", redactURL(rawURL), c.scrub(redactErr(err.Error(), rawURL))), 0)
	}
	fail := func(err error) (io.ReadCloser, error) {
		resp.Body.Close()
		done(false)
		return nil, err
	}
	switch {
	case resp.StatusCode == http.StatusForbidden || (resp.StatusCode == http.StatusUnauthorized && u.Host != c.host):
		return fail(fmt.Errorf("wandb: GET %s: %d: %w", redactURL(rawURL), resp.StatusCode, ErrURLRefused))
	case resp.StatusCode == http.StatusUnauthorized:
		return fail(fault.Fatal(fmt.Errorf("wandb: %s refused the API key (401) for a file: check WANDB_API_KEY or ~/.netrc", c.host)))
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fail(fault.Retryable(fmt.Errorf("wandb: GET %s: %d %s after retries", redactURL(rawURL), resp.StatusCode, http.StatusText(resp.StatusCode)), retryAfter(resp)))
	case resp.StatusCode/100 != 2:
		return fail(fault.Permanent(fmt.Errorf("wandb: GET %s: %d %s", redactURL(rawURL), resp.StatusCode, http.StatusText(resp.StatusCode))))
	}
	return &slotBody{ReadCloser: resp.Body, done: done}, nil
}

// slotBody releases the in-flight slot when closed.
type slotBody struct {
	io.ReadCloser
	done   func(bool)
	closed bool
}

func (b *slotBody) Close() error {
	err := b.ReadCloser.Close()
	if !b.closed {
		b.closed = true
		b.done(true)
	}
	return err
}
