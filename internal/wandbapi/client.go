// Package wandbapi is a client for W&B's public GraphQL API (W&B's cloud,
// Dedicated Cloud and W&B Server), used by the wandb+https source.
//
// Every request is POST <base>/graphql with HTTP basic auth, user "api" and
// the API key as password. The key comes from WANDB_API_KEY, else from
// ~/.netrc (the machine named by the base URL's host). It is never put in
// an error or a log.
//
// Errors are classified with package fault:
//   - 401 and 403 are fatal: the key is wrong or lacks access;
//   - an answer that is not JSON (an HTML login page from a proxy, a wrong
//     base URL) is fatal, the error naming the status, the content type
//     and a short excerpt;
//   - GraphQL errors in a 200 or 4xx answer are permanent, their messages
//     joined on one line;
//   - 429, 5xx and network failures are retried by the client
//     (go-retryablehttp: exponential backoff, Retry-After honoured up to
//     MaxRetryAfter); what is left after RetryMax attempts is retryable,
//     carrying the server's Retry-After.
package wandbapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/inflight"
)

// MaxRetryAfter caps how long one wait for a Retry-After may last.
const MaxRetryAfter = 5 * time.Minute

// Config says how to reach a W&B API server.
type Config struct {
	// BaseURL is the API's URL, e.g. "https://api.wandb.ai" or a W&B
	// Server host; /graphql is appended.
	BaseURL string
	// APIKey is the key; empty means Key(BaseURL's host).
	APIKey string
	// RetryMax is the number of retries of a failed request (default 8),
	// waits the server asked for included; SetRetries bounds the retries
	// of passing failures (5xx, failed connections) below it.
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff (default 1s, 60s).
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one attempt (default 60s).
	Timeout time.Duration
	// FirstContactBudget is how long requests retry network failures while
	// the server has never answered (default 3s): a wrong host or port
	// fails fast, as a fatal error. Once it has answered, network failures
	// are retried with the full RetryMax budget.
	FirstContactBudget time.Duration
	// Rate caps the requests sent per second (0: no cap); see SetRate.
	Rate float64
}

// Client sends GraphQL queries. It is safe for concurrent use.
type Client struct {
	endpoint string
	host     string
	key      string
	http     *retryablehttp.Client

	answered     atomic.Bool  // the server answered at least once
	retries      atomic.Int64 // retries of a passing failure per request (SetRetries)
	plainListing atomic.Bool  // the server refused ExportPage's query
	firstContact time.Duration

	pace      *pacer
	inflight  *inflight.Limiter
	downloads chan struct{} // a slot per download from a signed URL in flight (MaxDownloads)
}

// ErrNoKey is returned by New when no API key is found.
var ErrNoKey = errors.New("no W&B API key: set WANDB_API_KEY or add the host to ~/.netrc (wandb login)")

// New returns a client for cfg. A base URL that does not parse, or no key
// anywhere, is a fatal error.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fault.Fatal(fmt.Errorf("wandb: base URL %q: want http(s)://HOST", cfg.BaseURL))
	}
	key := cfg.APIKey
	if key == "" {
		key = Key(u.Hostname())
	}
	if key == "" {
		return nil, fault.Fatal(ErrNoKey)
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = 8
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = time.Second
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = 60 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.FirstContactBudget <= 0 {
		cfg.FirstContactBudget = 3 * time.Second
	}
	hc := cleanhttp.DefaultPooledClient()
	hc.Timeout = cfg.Timeout
	// Keep a connection for every request that may be in flight to one
	// host (the pool's default keeps GOMAXPROCS+1): downloads to one
	// storage host would otherwise open a connection (a TLS handshake) each.
	if t, ok := hc.Transport.(*http.Transport); ok {
		t.MaxIdleConnsPerHost = MaxInFlight + MaxDownloads
	}
	c := &Client{
		endpoint: strings.TrimSuffix(u.String(), "/") + "/graphql",
		host:     u.Host,
		key:      key,

		firstContact: cfg.FirstContactBudget,
		pace:         &pacer{now: time.Now},
		inflight:     inflight.New(1, MaxInFlight, MaxInFlight/2),
		downloads:    make(chan struct{}, MaxDownloads),
	}
	c.retries.Store(int64(max(cfg.RetryMax, 0)))
	c.pace.setRate(cfg.Rate)
	c.pace.limit = c.inflight.Limit
	hc.Transport = &pacedTransport{base: hc.Transport, p: c.pace, host: u.Host}
	c.http = &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil, // adapters never print
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     max(cfg.RetryMax, 0),
		CheckRetry:   c.judge, // tells the wait hook of each retry's backoff
		Backoff: func(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
			return min(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), MaxRetryAfter)
		},
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	return c, nil
}

// checkRetry retries network failures, 429 and 5xx (not 501), and tells
// the engine's adaptive limit about overload.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		fault.SignalOverload(ctx)
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// Key returns the W&B API key for host: WANDB_API_KEY, else the password
// of ~/.netrc's entry for host (or its default entry); "" when none.
func Key(host string) string {
	if k := strings.TrimSpace(os.Getenv("WANDB_API_KEY")); k != "" {
		return k
	}
	path := os.Getenv("NETRC")
	if path == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		path = filepath.Join(home, ".netrc")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return netrcPassword(b, host)
}

// netrcPassword finds the password for machine host in a .netrc file, the
// default entry serving when no machine matches.
func netrcPassword(b []byte, host string) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Split(bufio.ScanWords)
	var toks []string
	for sc.Scan() {
		toks = append(toks, sc.Text())
	}
	var cur, def string
	found, inDefault, inMachine := "", false, false
	for i := 0; i < len(toks); i++ {
		switch toks[i] {
		case "machine":
			inDefault = false
			if i+1 < len(toks) {
				i++
				cur = toks[i]
				inMachine = cur == host
			}
		case "default":
			inDefault, inMachine = true, false
		case "macdef":
			// a macro runs to an empty line; ScanWords cannot see it, so stop.
			return cmpOr(found, def)
		case "password":
			if i+1 < len(toks) {
				i++
				if inMachine && found == "" {
					found = toks[i]
				} else if inDefault && def == "" {
					def = toks[i]
				}
			}
		case "login", "account":
			i++
		}
	}
	return cmpOr(found, def)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Endpoint is the URL queries are sent to.
func (c *Client) Endpoint() string { return c.endpoint }

// Query sends query with vars and decodes the answer's data into out.
func (c *Client) Query(ctx context.Context, query string, vars map[string]any, out any) error {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fault.Permanent(fmt.Errorf("wandb: %w", err))
	}
	req, err := retryablehttp.NewRequestWithContext(withState(ctx, queryWhat(query, vars)), http.MethodPost, c.endpoint, body)
	if err != nil {
		return fault.Fatal(fmt.Errorf("wandb: %w", err))
	}
	req.SetBasicAuth("api", c.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "runferry")
	rctx, done, err := c.slot(req.Context())
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req.WithContext(rctx))
	if err != nil {
		done(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !c.answered.Load() {
			return fault.Fatal(fmt.Errorf("wandb: cannot reach %s (retried for %s): %s", c.endpoint, c.firstContact, c.scrub(err.Error())))
		}
		return fault.Retryable(fmt.Errorf("wandb: POST %s: %s", c.endpoint, c.scrub(err.Error())), 0)
	}
	c.answered.Store(true)
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	done(err == nil && resp.StatusCode/100 == 2)
	if err != nil {
		return fault.Retryable(fmt.Errorf("wandb: POST %s: reading the answer: %s", c.endpoint, c.scrub(err.Error())), 0)
	}
	return c.decode(resp, b, out)
}

// decode classifies an answer and decodes its data into out.
func (c *Client) decode(resp *http.Response, b []byte, out any) error {
	code := resp.StatusCode
	switch {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fault.Fatal(fmt.Errorf("wandb: %s refused the API key (%d %s): check WANDB_API_KEY or ~/.netrc",
			c.host, code, http.StatusText(code)))
	case code == http.StatusTooManyRequests || code >= 500:
		return fault.Retryable(fmt.Errorf("wandb: POST %s: %d %s after retries%s", c.endpoint, code,
			http.StatusText(code), c.gqlErrorSuffix(b)), retryAfter(resp))
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	if mt != "application/json" && !json.Valid(b) {
		return fault.Fatal(fmt.Errorf("wandb: POST %s answered %d with %s, not JSON (is this a W&B API URL?): %s",
			c.endpoint, code, cmpOr(ct, "no content type"), excerpt(c.scrub(string(b)))))
	}
	var env struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fault.Fatal(fmt.Errorf("wandb: POST %s answered %d with JSON that is not a GraphQL answer: %s",
			c.endpoint, code, excerpt(c.scrub(string(b)))))
	}
	if len(env.Errors) > 0 {
		var msgs []string
		for _, e := range env.Errors {
			msgs = append(msgs, e.Message)
		}
		return fault.Permanent(fmt.Errorf("wandb: %s", c.scrub(strings.Join(msgs, "; "))))
	}
	if code/100 != 2 {
		return fault.Permanent(fmt.Errorf("wandb: POST %s: %d %s", c.endpoint, code, http.StatusText(code)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fault.Permanent(fmt.Errorf("wandb: decoding the answer: %v", err))
	}
	return nil
}

func (c *Client) gqlErrorSuffix(b []byte) string {
	var env struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &env) == nil && len(env.Errors) > 0 {
		return ": " + c.scrub(env.Errors[0].Message)
	}
	return ""
}

// scrub removes the key from s.
func (c *Client) scrub(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}

// excerpt is the start of an answer on one line, at most 120 characters.
func excerpt(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		cut := 120
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strconv.Quote(s)
}

// retryAfter reads Retry-After (seconds or a date), else RateLimit-Reset.
func retryAfter(resp *http.Response) time.Duration {
	for _, h := range []string{"Retry-After", "RateLimit-Reset"} {
		v := resp.Header.Get(h)
		if v == "" {
			continue
		}
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return min(time.Duration(n)*time.Second, MaxRetryAfter)
		}
		if t, err := http.ParseTime(v); err == nil {
			return min(max(time.Until(t), 0), MaxRetryAfter)
		}
	}
	return 0
}
