package wandbapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// What a request fetches, for the lines that tell its retries.
//
// Every query and download carries a request state in its context: when
// it was first sent, what it fetches (About, or for a query its operation
// name and the run its variables name) and how many times it met a
// passing failure. A wait before a retry is told to the wait hook with
// what is retried and which retry it is, so a line such as "retrying after
// the server answered 500 Internal Server Error (backoff, retry 1 of 2):
// run acme/vision/abc123: history export 1 of 3" says what does not move.

type aboutKey struct{}

// About returns ctx labelled with what the requests sent with it fetch
// ("run acme/vision/abc123: history export 1 of 3"), for the wait lines of
// their retries and nothing else.
func About(ctx context.Context, what string) context.Context {
	return context.WithValue(ctx, aboutKey{}, what)
}

// reqState is one request's state across its retries.
type reqState struct {
	start time.Time
	what  string

	mu       sync.Mutex
	checks   int // answers (or failed connections) judged so far
	failures int // of them, passing failures retried (not waits the server asked for)
}

type stateKey struct{}

// withState returns ctx carrying a new request state, what being About's
// label on ctx or, when there is none, def.
func withState(ctx context.Context, def string) context.Context {
	what, _ := ctx.Value(aboutKey{}).(string)
	if what == "" {
		what = def
	}
	return context.WithValue(ctx, stateKey{}, &reqState{start: time.Now(), what: what})
}

func stateOf(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

var operationName = regexp.MustCompile(`^\s*(?:query|mutation)\s+([A-Za-z_][A-Za-z0-9_]*)`)

// queryWhat names a query for its wait lines: its operation name and, when
// its variables name one, the run or project it asks about.
func queryWhat(query string, vars map[string]any) string {
	op := "query"
	if m := operationName.FindStringSubmatch(query); m != nil {
		op = m[1] + " query"
	}
	e, _ := vars["entity"].(string)
	p, _ := vars["project"].(string)
	r, _ := vars["run"].(string)
	switch {
	case e != "" && p != "" && r != "":
		return fmt.Sprintf("run %s/%s/%s: %s", e, p, r, op)
	case e != "" && p != "":
		return fmt.Sprintf("project %s/%s: %s", e, p, op)
	}
	return op
}

// serverAsked reports whether resp asks the client to wait rather than
// tells of a failure: a 429, or a 503 with Retry-After. Such waits are not
// counted against the retries of passing failures.
func serverAsked(resp *http.Response) bool {
	return resp != nil && (resp.StatusCode == http.StatusTooManyRequests ||
		resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "")
}

// retryReason says why a request met a passing failure is retried, and
// which retry of how many this is.
func retryReason(resp *http.Response, n, limit int) string {
	what := "a failed connection"
	if resp != nil {
		what = fmt.Sprintf("the server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return fmt.Sprintf("retrying after %s (backoff, retry %d of %d)", what, n, limit)
}

// SetRetries bounds how many times one request or download is retried
// after a passing failure (a 5xx answer, a failed connection): n times,
// 0 for none. Waits the server asks for (429, 503 with Retry-After) are
// waited out and not counted; Config.RetryMax bounds every retry.
func (c *Client) SetRetries(n int) { c.retries.Store(int64(max(n, 0))) }

// judge is the client's CheckRetry: the first-contact budget, the retry
// policy (checkRetry), the bound on retries of passing failures
// (SetRetries), and the wait hook told what is retried and why.
func (c *Client) judge(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if resp != nil {
		c.answered.Store(true)
	}
	st := stateOf(ctx)
	if st == nil {
		st = &reqState{start: time.Now()}
	}
	if err != nil && !c.answered.Load() && time.Since(st.start) >= c.firstContact {
		return false, nil
	}
	retry, cerr := checkRetry(ctx, resp, err)
	if !retry || cerr != nil {
		return retry, cerr
	}
	st.mu.Lock()
	attempt := st.checks // retryablehttp's attempt index for this retry's backoff
	st.checks++
	asked := serverAsked(resp)
	if !asked {
		st.failures++
	}
	failures := st.failures
	st.mu.Unlock()
	limit := int(c.retries.Load())
	if !asked && failures > limit {
		return false, nil
	}
	if attempt >= c.http.RetryMax {
		return false, nil // retryablehttp gives up here: no wait to tell
	}
	d := min(retryablehttp.DefaultBackoff(c.http.RetryWaitMin, c.http.RetryWaitMax, attempt, resp), MaxRetryAfter)
	reason := backoffReason(resp)
	if !asked {
		reason = retryReason(resp, failures, limit)
	}
	if st.what != "" {
		reason += ": " + st.what
	}
	c.pace.tell(reason, d)
	return true, nil
}
