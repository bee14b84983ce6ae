package wandbapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/fault"
)

// Politeness: every HTTP request the client sends (GraphQL queries,
// downloads and their retries) passes the pacer, and every query or
// download holds a slot of the adaptive in-flight limit.
//
// The pacer holds requests back (downloads, which go to storage, only by
// the first rule; the server's limits are the API's)
//   - to at most Rate requests per second (Config.Rate, a hard cap: one
//     request every 1/Rate seconds, no bursts);
//   - while the server asked to wait: after a 429 or 503 for its
//     Retry-After (else RateLimit-Reset), and when an answer says
//     RateLimit-Remaining: 0, until its RateLimit-Reset. The pause holds
//     every request of the client, not only the one that met it.
//
// A wait the server asked for is told to the wait hook (SetWaitHook) with
// its reason, so progress can say why nothing moves; so is the backoff
// before a retry (after a 5xx or a failed connection), and the reason
// names the adaptive in-flight limit when it is below its start.
//
// The in-flight limit (engine/inflight, the engine's controller for sink
// writes) starts at MaxInFlight/2 requests at once and adapts between 1
// and MaxInFlight to the requests completed per second; a request that met
// a 429 or 503 halves it.
//
// Downloads from signed URLs (parquet history exports, run and artifact
// files in cloud storage) do not take slots of that limit: storage is not
// the API server, and a download waits mostly on latency, which only
// more of them at once hides (1,000 exports of 100 ms each, at most 8 at
// once, took 20 s of a copy's transfer for 6 s of CPU: docs/BENCHMARKS.md,
// "W&B cloud"). They are held to at most MaxDownloads at once instead, a
// fixed bound. A file fetched from
// the API's own host with the API key (a run file's url) is a request to
// the API and takes an API slot.

// MaxInFlight bounds the requests one client has in flight.
const MaxInFlight = 16

// MaxDownloads bounds the downloads from signed URLs one client has in
// flight (see above).
const MaxDownloads = 32

type pacer struct {
	mu       sync.Mutex
	interval time.Duration // 1/rate; 0: no cap
	next     time.Time     // the earliest time of the next request under the cap
	until    time.Time     // no request before (the server asked)
	reason   string        // why, for the wait hook
	hook     func(reason string, d time.Duration)
	now      func() time.Time
	limit    func() int // the adaptive in-flight limit, or nil
}

// setRate sets the hard cap in requests per second (0: none).
func (p *pacer) setRate(perSecond float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.interval = 0
	if perSecond > 0 {
		p.interval = time.Duration(float64(time.Second) / perSecond)
	}
}

// wait blocks until a request may be sent; api is true for a request to
// the API (GraphQL), which the server's limits hold, false for a download
// (storage's, which only --rate holds).
func (p *pacer) wait(ctx context.Context, api bool) error {
	p.mu.Lock()
	now := p.now()
	at, reason := now, ""
	if api && p.until.After(at) {
		at, reason = p.until, p.reason
	}
	if gap := p.interval; gap > 0 {
		if p.next.After(at) {
			at = p.next
		}
		p.next = at.Add(gap)
	}
	hook := p.hook
	p.mu.Unlock()
	d := at.Sub(now)
	if d <= 0 {
		return nil
	}
	if reason != "" && hook != nil {
		hook(reason+p.adaptive(), d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// tell tells the wait hook about a wait of d for reason (a retry's
// backoff); callers must not hold p.mu.
func (p *pacer) tell(reason string, d time.Duration) {
	p.mu.Lock()
	hook := p.hook
	p.mu.Unlock()
	if hook != nil && d > 0 {
		hook(reason+p.adaptive(), d)
	}
}

// adaptive names the adaptive in-flight limit when it is below its
// start, for the wait hook's reason.
func (p *pacer) adaptive() string {
	if p.limit == nil {
		return ""
	}
	if n := p.limit(); n < MaxInFlight/2 {
		return fmt.Sprintf("; adaptive backoff: %d of %d requests at once", n, MaxInFlight)
	}
	return ""
}

// backoffReason says why a request is retried after a backoff: resp is
// the answer that failed, nil for a failed connection.
func backoffReason(resp *http.Response) string {
	switch {
	case resp == nil:
		return "retrying after a failed connection (backoff)"
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		r := fmt.Sprintf("the server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if v := resp.Header.Get("Retry-After"); v != "" {
			r += ", Retry-After " + v
		}
		return r
	default:
		return fmt.Sprintf("retrying after the server answered %d %s (backoff)", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
}

// observe reads the server's rate-limit answer from resp.
func (p *pacer) observe(resp *http.Response) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d time.Duration
	var reason string
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		d = retryAfter(resp)
		reason = fmt.Sprintf("the server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
		if v := resp.Header.Get("Retry-After"); v != "" {
			reason += ", Retry-After " + v
		}
	case resp.Header.Get("RateLimit-Remaining") == "0":
		n, err := strconv.Atoi(resp.Header.Get("RateLimit-Reset"))
		if err != nil || n <= 0 {
			return
		}
		d = min(time.Duration(n)*time.Second, MaxRetryAfter)
		reason = "the server's rate limit is used up (RateLimit-Remaining 0), it resets in " + resp.Header.Get("RateLimit-Reset") + "s"
	default:
		return
	}
	if d <= 0 {
		return
	}
	if u := p.now().Add(d); u.After(p.until) {
		p.until, p.reason = u, reason
	}
}

// pacedTransport passes every request through the pacer.
type pacedTransport struct {
	base http.RoundTripper
	p    *pacer
	host string // the API's host
}

func (t *pacedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	api := req.Method == http.MethodPost && req.URL.Host == t.host && strings.HasSuffix(req.URL.Path, "/graphql")
	if err := t.p.wait(req.Context(), api); err != nil {
		return nil, err
	}
	resp, err := t.base.RoundTrip(req)
	if resp != nil && api {
		t.p.observe(resp)
	}
	return resp, err
}

// SetRate caps the client's requests per second (0: no cap).
func (c *Client) SetRate(perSecond float64) { c.pace.setRate(perSecond) }

// SetWaitHook sets the function told about every wait the server asked
// for (a 429 or 503, a used-up rate limit) and every retry's backoff,
// with its reason and length.
// It is called from the requesting goroutines and must be quick.
func (c *Client) SetWaitHook(f func(reason string, d time.Duration)) {
	c.pace.mu.Lock()
	defer c.pace.mu.Unlock()
	c.pace.hook = f
}

// InFlightLimit is the current adaptive limit of requests at once.
func (c *Client) InFlightLimit() int { return c.inflight.Limit() }

// downloadSlot holds one download's place among MaxDownloads; done
// releases it (its argument is ignored: the bound does not adapt).
func (c *Client) downloadSlot(ctx context.Context) (context.Context, func(ok bool), error) {
	select {
	case c.downloads <- struct{}{}:
	case <-ctx.Done():
		return ctx, nil, ctx.Err()
	}
	var once sync.Once
	return ctx, func(bool) { once.Do(func() { <-c.downloads }) }, nil
}

// DownloadsInFlight is the number of downloads from signed URLs in flight.
func (c *Client) DownloadsInFlight() int { return len(c.downloads) }

// slot holds one request's place in the in-flight limit; done releases it.
func (c *Client) slot(ctx context.Context) (context.Context, func(ok bool), error) {
	t, err := c.inflight.Acquire(ctx)
	if err != nil {
		return ctx, nil, err
	}
	rctx, overloaded := fault.WithOverloadSignal(ctx)
	return rctx, func(ok bool) {
		work := 0
		if ok {
			work = 1
		}
		t.Done(work, overloaded())
	}, nil
}
