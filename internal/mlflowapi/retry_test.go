package mlflowapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
)

// fail is what the test server does to one request.
type fail int

const (
	ok       fail = iota
	s429          // 429 with Retry-After: 0
	s500          // 500, the request was (maybe) applied
	s501          // 501 Not Implemented
	s503          // 503 with Retry-After: 0
	s400race      // 400: a SQL store's unique-key violation (two writers set one tag)
	reset         // the connection is closed after the request was read
	closeNow      // the connection is closed before the request is read
)

// script serves answers in order (the last one repeats) and counts
// requests that reached the handler.
func script(t *testing.T, answers ...fail) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		a := answers[min(i, len(answers)-1)]
		if a != closeNow {
			io.Copy(io.Discard, r.Body)
		}
		switch a {
		case ok:
			io.WriteString(w, `{"run":{"info":{"run_id":"r1"}}}`)
		case s429:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		case s500:
			w.WriteHeader(http.StatusInternalServerError)
		case s400race:
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error_code": "BAD_REQUEST", "message": "(sqlite3.IntegrityError) UNIQUE constraint failed: tags.key, tags.run_uuid"}`)
		case s501:
			w.WriteHeader(http.StatusNotImplemented)
		case s503:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		case reset, closeNow:
			conn, _, err := w.(http.Hijacker).Hijack()
			if err != nil {
				t.Error(err)
				return
			}
			conn.Close()
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// requests by kind, as the sink and source send them
var requestKinds = []struct {
	name      string
	applyOnce bool
	do        func(context.Context, *Client) error
}{
	{"log-batch with metrics", true, func(ctx context.Context, c *Client) error {
		return c.LogBatch(ctx, LogBatch{RunID: "r1", Metrics: []Metric{{Key: "m", Value: 1, Step: 1}}})
	}},
	{"runs/create", true, func(ctx context.Context, c *Client) error {
		_, err := c.CreateRun(ctx, CreateRun{ExperimentID: "1"})
		return err
	}},
	{"log-batch of params and tags", false, func(ctx context.Context, c *Client) error {
		return c.LogBatch(ctx, LogBatch{RunID: "r1", Params: []Param{{Key: "p", Value: "1"}}, Tags: []Tag{{Key: "t", Value: "v"}}})
	}},
	{"set-tag", false, func(ctx context.Context, c *Client) error { return c.SetTag(ctx, "r1", "k", "v") }},
	{"runs/update", false, func(ctx context.Context, c *Client) error { return c.UpdateRun(ctx, UpdateRun{RunID: "r1"}) }},
	{"runs/get", false, func(ctx context.Context, c *Client) error { _, err := c.GetRun(ctx, "r1"); return err }},
	{"upload bytes", false, func(ctx context.Context, c *Client) error {
		return c.UploadBytes(ctx, "mlflow-artifacts:/1/r1/artifacts", "a.txt", []byte("hello"))
	}},
}

// TestRetryPolicy: every request kind against every failure, the request
// count the server saw, and the outcome. A request that would duplicate
// data (metrics append, a run is created) is resent only when the server
// certainly did not apply it (429, 503); after an ambiguous failure (500,
// a reset after the request was read) it is returned to the caller as a
// retryable error without being resent.
func TestRetryPolicy(t *testing.T) {
	for _, rk := range requestKinds {
		for _, tc := range []struct {
			name      string
			answers   []fail
			sent      int64 // requests the server saw
			sentOnce  int64 // ... for apply-once requests, when different
			wantErr   bool
			errOnce   bool // the apply-once request fails
			wantKinds fault.Kind
			overload  bool // the caller's overload signal is raised
		}{
			{name: "ok", answers: []fail{ok}, sent: 1},
			{name: "429 then ok", answers: []fail{s429, ok}, sent: 2, overload: true},
			{name: "503 twice then ok", answers: []fail{s503, s503, ok}, sent: 3, overload: true},
			{name: "500 then ok", answers: []fail{s500, ok}, sent: 2, sentOnce: 1, errOnce: true},
			{name: "reset then ok", answers: []fail{reset, ok}, sent: 2, sentOnce: 1, errOnce: true},
			{name: "501", answers: []fail{s501, ok}, sent: 1, wantErr: true},
			{name: "always 503", answers: []fail{s503}, sent: 4, wantErr: true, overload: true}, // RetryMax 3
		} {
			t.Run(rk.name+"/"+tc.name, func(t *testing.T) {
				srv, n := script(t, tc.answers...)
				c := testClient(t, srv.URL)
				// uploads go through the artifacts proxy of the same server
				ctx, overloaded := fault.WithOverloadSignal(context.Background())
				err := rk.do(ctx, c)
				if overloaded() != tc.overload {
					t.Errorf("overload signal %v, want %v", overloaded(), tc.overload)
				}
				wantSent, wantErr := tc.sent, tc.wantErr
				if rk.applyOnce && tc.sentOnce != 0 {
					wantSent, wantErr = tc.sentOnce, tc.errOnce
				}
				if got := n.Load(); got != wantSent {
					t.Errorf("server saw %d requests, want %d", got, wantSent)
				}
				if (err != nil) != wantErr {
					t.Fatalf("err = %v, want error %v", err, wantErr)
				}
				if err != nil && fault.KindOf(err) != fault.KindRetryable {
					t.Errorf("kind %v, want retryable: %v", fault.KindOf(err), err)
				}
			})
		}
	}
}

// TestApplyOnceNeverResentAfterAmbiguousFailure hammers a metric log-batch
// with every ambiguous failure in a row: exactly one request per call.
func TestApplyOnceNeverResentAfterAmbiguousFailure(t *testing.T) {
	for _, f := range []fail{s500, reset} {
		srv, n := script(t, f)
		c := testClient(t, srv.URL, func(c *Config) { c.RetryMax = 6 })
		for i := range 5 {
			err := c.LogBatch(context.Background(), LogBatch{RunID: "r1", Metrics: []Metric{{Key: "m", Value: Float(i)}}})
			if err == nil || fault.KindOf(err) != fault.KindRetryable {
				t.Fatalf("failure %d, call %d: err %v, want retryable", f, i, err)
			}
		}
		if got := n.Load(); got != 5 {
			t.Errorf("failure %d: server saw %d requests for 5 calls, want 5", f, got)
		}
	}
}

// TestConnectFailureRetried: a connection that could not be made proves the
// request was not sent, so even a metric batch is retried.
func TestConnectFailureRetried(t *testing.T) {
	refused := errors.New("connection refused")
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: refused}, true},
		{fmt.Errorf("Post: %w", &net.OpError{Op: "dial", Net: "tcp", Err: refused}), true},
		{&net.DNSError{Err: "no such host", Name: "mlflow.invalid"}, true},
		{&net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}, false},
		{&net.OpError{Op: "write", Net: "tcp", Err: errors.New("broken pipe")}, false},
		{io.ErrUnexpectedEOF, false},
		{context.DeadlineExceeded, false},
	} {
		for _, k := range []kind{applyOnce, idempotent} {
			got, _ := checkRetry(withKind(context.Background(), k), nil, tc.err)
			want := tc.want || k == idempotent // idempotent requests retry every network error
			if got != want {
				t.Errorf("checkRetry(kind %d, %v) = %v, want %v", k, tc.err, got, want)
			}
		}
	}
	// a canceled context never retries
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := checkRetry(ctx, &http.Response{StatusCode: 503}, nil); got || err == nil {
		t.Errorf("checkRetry on a canceled context = %v, %v; want false and the context's error", got, err)
	}
}

// TestRetryAfterHonouredAndCapped: a 429's Retry-After sets the wait
// before the resend, up to MaxRetryAfter.
func TestRetryAfterHonouredAndCapped(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	c := testClient(t, srv.URL)
	start := time.Now()
	if err := c.LogBatch(context.Background(), LogBatch{RunID: "r1", Metrics: []Metric{{Key: "m"}}}); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("resent after %v, want the server's Retry-After of 1s", el)
	}
	resp := &http.Response{StatusCode: 429, Header: http.Header{"Retry-After": {"86400"}}}
	if got := backoff(time.Millisecond, time.Second, 1, resp); got != MaxRetryAfter {
		t.Errorf("backoff with Retry-After 86400 = %v, want the cap %v", got, MaxRetryAfter)
	}
}

// TestWriteRaceRepeated: a set-tag, tags-only log-batch or log-inputs that
// lost a unique-key race is repeated (at most twice more) and succeeds; a metric
// batch never is, and other 400s are not races.
func TestWriteRaceRepeated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []fail
		do      func(context.Context, *Client) error
		sent    int64
		wantErr bool
	}{
		{"set-tag", []fail{s400race, ok}, func(ctx context.Context, c *Client) error { return c.SetTag(ctx, "r1", "k", "v") }, 2, false},
		{"set-tag, always racing", []fail{s400race}, func(ctx context.Context, c *Client) error { return c.SetTag(ctx, "r1", "k", "v") }, 3, true},
		{"tags log-batch", []fail{s400race, ok}, func(ctx context.Context, c *Client) error {
			return c.LogBatch(ctx, LogBatch{RunID: "r1", Tags: []Tag{{Key: "k", Value: "v"}}})
		}, 2, false},
		{"log-inputs", []fail{s400race, ok}, func(ctx context.Context, c *Client) error {
			return c.LogInputs(ctx, "r1", []DatasetInput{{Dataset: Dataset{Name: "d", Digest: "1"}}})
		}, 2, false},
		{"metric log-batch", []fail{s400race, ok}, func(ctx context.Context, c *Client) error {
			return c.LogBatch(ctx, LogBatch{RunID: "r1", Metrics: []Metric{{Key: "m", Value: 1}}})
		}, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, n := script(t, tc.answers...)
			err := tc.do(context.Background(), testClient(t, srv.URL))
			if got := n.Load(); got != tc.sent {
				t.Errorf("server saw %d requests, want %d", got, tc.sent)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !IsWriteRace(err) {
				t.Errorf("the error is not recognised as a race: %v", err)
			}
		})
	}
	if IsWriteRace(&APIError{Status: 400, Message: "Invalid value for param"}) {
		t.Error("a plain 400 taken for a race")
	}
}
