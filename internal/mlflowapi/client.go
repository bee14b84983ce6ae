// Package mlflowapi is a REST client for MLflow tracking servers, shared by
// the MLflow source and sink.
//
// It speaks the /api/2.0/mlflow endpoints and the mlflow-artifacts proxy,
// takes credentials and TLS settings from MLflow's own environment variables,
// retries what is safe to retry, and classifies every error with package
// fault:
//
//   - 401 and 403 are fatal (bad credentials, or the server's security
//     middleware rejecting the Host header, which the error explains);
//   - other 4xx answers are permanent (an *APIError carrying MLflow's
//     error_code, so callers can test for RESOURCE_ALREADY_EXISTS);
//   - 429, 5xx and network failures left after the client's own retries are
//     retryable, carrying the server's Retry-After.
//
// Retries depend on the kind of request. Reads and idempotent writes (tags,
// params, status updates, deletes, artifact uploads) are retried on network
// errors, 429 and 5xx other than 501. Requests that would duplicate data if
// the server had already applied them (log-batch with metrics, runs/create)
// are retried only when the server certainly did not apply them: a 429, a
// 503, or a connection that could not be made. Anything else is returned as
// a retryable error for the caller to resolve at the run level.
//
// Secrets never appear in errors: the token and password are removed from
// every message the client builds.
package mlflowapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
)

// Config says how to reach a server. Zero fields take MLflow's defaults.
type Config struct {
	// BaseURL is the tracking URI, e.g. "https://mlflow.example.com/prefix";
	// user info in it is used for basic auth.
	BaseURL string
	// Token is sent as a bearer token (MLFLOW_TRACKING_TOKEN).
	Token string
	// Username and Password, when both are set, are sent as basic auth and
	// win over Token, as in MLflow's Python client
	// (MLFLOW_TRACKING_USERNAME/PASSWORD).
	Username, Password string
	// InsecureTLS skips certificate verification (MLFLOW_TRACKING_INSECURE_TLS).
	InsecureTLS bool
	// ServerCertPath is a PEM CA bundle (MLFLOW_TRACKING_SERVER_CERT_PATH).
	ServerCertPath string
	// ClientCertPath is a PEM file holding a client certificate and its key
	// for mutual TLS (MLFLOW_TRACKING_CLIENT_CERT_PATH).
	ClientCertPath string
	// RetryMax is the number of HTTP-level retries (default 6).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the backoff (default 500ms, 30s);
	// a server's Retry-After is honoured up to MaxRetryAfter.
	RetryWaitMin, RetryWaitMax time.Duration
	// Timeout bounds one request, body included, except streamed artifact
	// transfers (default 120s, as MLflow's client).
	Timeout time.Duration
	// ConnectTimeout bounds one TCP connection attempt (default
	// DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// FirstContactBudget is how long a request retries while the server has
	// never given an MLflow answer: a refused or failed connection, or a proxy's
	// 502/503/504, is retried until this much time has passed since the
	// request's first attempt (default DefaultFirstContactBudget). Once the server
	// has answered, such failures are retried with the full RetryMax budget, as
	// a restarting server gives them.
	FirstContactBudget time.Duration
}

// Defaults of Config.ConnectTimeout and Config.FirstContactBudget: a wrong
// address fails within a few seconds.
const (
	DefaultConnectTimeout     = 5 * time.Second
	DefaultFirstContactBudget = 3 * time.Second
)

// MaxRetryAfter caps the wait a Retry-After header can impose on one retry;
// longer waits are returned to the caller as a retryable error.
const MaxRetryAfter = 2 * time.Minute

// EnvOptions describe the options of an mlflow+http(s) location that
// ConfigFromLocation reads, each also given by MLflow's own environment
// variable (the location's query wins). The secret ones (token, password)
// come only from the environment: a location holding them is refused.
var EnvOptions = []location.Option{
	{Name: "token", EnvVar: "MLFLOW_TRACKING_TOKEN", Secret: true, Help: "Bearer token sent to the server."},
	{Name: "username", EnvVar: "MLFLOW_TRACKING_USERNAME", Help: "User for HTTP basic auth, with the password from MLFLOW_TRACKING_PASSWORD (basic auth wins over the token, as in MLflow's client); also taken from the location's user info (mlflow+https://USER@HOST)."},
	{Name: "password", EnvVar: "MLFLOW_TRACKING_PASSWORD", Secret: true, Help: "Password for HTTP basic auth."},
	{Name: "insecure-tls", EnvVar: "MLFLOW_TRACKING_INSECURE_TLS", Default: "false", Help: "Skip TLS certificate verification (true/false; mlflow+https only)."},
	{Name: "server-cert", EnvVar: "MLFLOW_TRACKING_SERVER_CERT_PATH", Help: "Path of a PEM CA bundle that signs the server's certificate (mlflow+https only)."},
	{Name: "client-cert", EnvVar: "MLFLOW_TRACKING_CLIENT_CERT_PATH", Help: "Path of one PEM file holding a client certificate and its key, for mutual TLS (mlflow+https only)."},
}

// tlsOptions are the EnvOptions that only an https location can use.
var tlsOptions = []string{"insecure-tls", "server-cert", "client-cert"}

// ConfigFromLocation reads an mlflow+http(s) location and MLflow's
// environment variables, through getenv, into a Config. Of the location's
// query it reads the EnvOptions (a value there wins over the variable) and
// ignores the rest: the adapters read their own options. The user of the
// location's user info is the basic-auth user. A secret in the location (a
// password in the user info, ?token=, ?password=) is refused, and so is a
// TLS option in the query of a plain-HTTP location, which could not take
// effect.
func ConfigFromLocation(loc location.Location, getenv func(string) string) (Config, error) {
	if loc.URL == nil {
		return Config{}, fmt.Errorf("mlflow: %s is not a URL", loc)
	}
	if err := location.CheckSecrets(loc, location.Description{Options: EnvOptions}); err != nil {
		return Config{}, err
	}
	u := *loc.URL
	u.Scheme = strings.TrimPrefix(loc.Scheme, "mlflow+")
	u.RawQuery = ""
	var user string
	if u.User != nil {
		user = u.User.Username()
		u.User = nil
	}
	if q := loc.Query("username"); q != "" {
		if user != "" && user != q {
			return Config{}, fmt.Errorf("mlflow: %s names two users (%q in the user info, %q in ?username=)", loc, user, q)
		}
		user = q
	}
	if u.Scheme != "https" {
		for _, name := range tlsOptions {
			if loc.Query(name) != "" {
				return Config{}, fmt.Errorf("mlflow: %s: option %q applies only to mlflow+https:// locations", loc, name)
			}
		}
	}
	byEnv := map[string]string{}
	for _, o := range EnvOptions {
		if !o.Secret {
			byEnv[o.EnvVar] = o.Name
		}
	}
	get := func(env string) string {
		if name, ok := byEnv[env]; ok {
			if v := loc.Query(name); v != "" {
				return v
			}
		}
		return getenv(env)
	}
	c, err := ConfigFromEnv(u.String(), get)
	if err != nil {
		return c, err
	}
	if user != "" {
		c.Username = user
		if c.Password == "" {
			return c, fmt.Errorf("mlflow: %s names the user %q for basic auth, but MLFLOW_TRACKING_PASSWORD is not set (the password comes only from the environment)", loc, user)
		}
	}
	return c, nil
}

// ConfigFromEnv fills the credential and TLS fields from MLflow's
// environment variables, read through getenv.
func ConfigFromEnv(baseURL string, getenv func(string) string) (Config, error) {
	c := Config{
		BaseURL:        baseURL,
		Token:          getenv("MLFLOW_TRACKING_TOKEN"),
		Username:       getenv("MLFLOW_TRACKING_USERNAME"),
		Password:       getenv("MLFLOW_TRACKING_PASSWORD"),
		ServerCertPath: getenv("MLFLOW_TRACKING_SERVER_CERT_PATH"),
		ClientCertPath: getenv("MLFLOW_TRACKING_CLIENT_CERT_PATH"),
	}
	switch strings.ToLower(getenv("MLFLOW_TRACKING_INSECURE_TLS")) {
	case "", "false", "0", "no":
	case "true", "1", "yes":
		c.InsecureTLS = true
	default:
		return c, fmt.Errorf("insecure-tls (MLFLOW_TRACKING_INSECURE_TLS) %q: want true or false", getenv("MLFLOW_TRACKING_INSECURE_TLS"))
	}
	if c.InsecureTLS && c.ServerCertPath != "" {
		return c, errors.New("insecure-tls (MLFLOW_TRACKING_INSECURE_TLS) and server-cert (MLFLOW_TRACKING_SERVER_CERT_PATH) cannot both be set")
	}
	return c, nil
}

// Client talks to one tracking server. It is safe for concurrent use.
type Client struct {
	base    *url.URL // scheme, host and path prefix; no user info
	auth    func(*http.Request)
	secrets []string
	retry   *retryablehttp.Client
	// retryStream retries until response headers arrive, then streams the
	// body without an overall deadline (downloads).
	retryStream *retryablehttp.Client
	stream      *http.Client // uploads: no overall timeout, no retries

	// answered is set once the server gave an MLflow answer (JSON, or any 2xx);
	// before that, failures that retries cure only for a restarting server are
	// retried for firstContact alone.
	answered     atomic.Bool
	firstContact time.Duration
	connTimeout  time.Duration
}

// New returns a client for cfg. It does no I/O.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("mlflow: bad tracking URI %q: want http(s)://HOST[:PORT][/PATH]", location.Redact(cfg.BaseURL))
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		u.User = nil
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, secrets: []string{cfg.Token, cfg.Password}, auth: func(*http.Request) {}}
	if cfg.Password != "" {
		// A server or proxy may echo the Authorization header, which
		// carries base64("user:password") rather than the password.
		c.secrets = append(c.secrets, base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)))
	}
	switch {
	case cfg.Username != "" && cfg.Password != "":
		c.auth = func(r *http.Request) { r.SetBasicAuth(cfg.Username, cfg.Password) }
	case cfg.Token != "":
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+cfg.Token) }
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.FirstContactBudget <= 0 {
		cfg.FirstContactBudget = DefaultFirstContactBudget
	}
	c.firstContact, c.connTimeout = cfg.FirstContactBudget, cfg.ConnectTimeout
	transport := cleanhttp.DefaultPooledTransport()
	transport.DialContext = (&net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext
	if u.Scheme == "https" {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = tc
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 120 * time.Second
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 6
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = 500 * time.Millisecond
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = 30 * time.Second
	}
	c.stream = &http.Client{Transport: transport}
	c.retry = &retryablehttp.Client{
		HTTPClient:   &http.Client{Transport: transport, Timeout: cfg.Timeout},
		Logger:       nil, // adapters never print
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.RetryMax,
		CheckRetry:   c.checkRetry,
		Backoff:      backoff,
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) { return resp, err },
	}
	c.retryStream = &retryablehttp.Client{HTTPClient: c.stream, RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax, RetryMax: cfg.RetryMax, CheckRetry: c.checkRetry, Backoff: backoff,
		ErrorHandler: c.retry.ErrorHandler}
	return c, nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureTLS} //nolint:gosec // only when the user asks
	if cfg.ServerCertPath != "" {
		pem, err := os.ReadFile(cfg.ServerCertPath)
		if err != nil {
			return nil, fmt.Errorf("server-cert (MLFLOW_TRACKING_SERVER_CERT_PATH): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server-cert (MLFLOW_TRACKING_SERVER_CERT_PATH) %s holds no PEM certificate", cfg.ServerCertPath)
		}
		tc.RootCAs = pool
	}
	if cfg.ClientCertPath != "" {
		pem, err := os.ReadFile(cfg.ClientCertPath)
		if err != nil {
			return nil, fmt.Errorf("client-cert (MLFLOW_TRACKING_CLIENT_CERT_PATH): %w", err)
		}
		cert, err := tls.X509KeyPair(pem, pem)
		if err != nil {
			return nil, fmt.Errorf("client-cert (MLFLOW_TRACKING_CLIENT_CERT_PATH) %s: want one PEM file with the certificate and its key: %v", cfg.ClientCertPath, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// kind says how a request may be retried.
type kind int

const (
	idempotent kind = iota // reads, tags, params, updates, deletes, uploads
	applyOnce              // metric batches, run creation: never resent if possibly applied
)

type kindKey struct{}

func withKind(ctx context.Context, k kind) context.Context {
	return context.WithValue(ctx, kindKey{}, k)
}

// attempts records the tries of one request, for the first-contact budget and
// for the message when they all failed.
type attempts struct {
	start time.Time
	n     int
}

type attemptsKey struct{}

// withAttempts returns ctx carrying a fresh attempts record.
func withAttempts(ctx context.Context) (context.Context, *attempts) {
	a := &attempts{start: time.Now()}
	return context.WithValue(ctx, attemptsKey{}, a), a
}

// checkRetry is the retry policy of both request kinds. Before the server has
// ever answered, unreachable-server failures are retried only within the
// first-contact budget.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if resp != nil && looksLikeMLflow(resp) {
		c.answered.Store(true)
	}
	if a, ok := ctx.Value(attemptsKey{}).(*attempts); ok {
		a.n++
		if !c.answered.Load() && unreachable(resp, err) && time.Since(a.start) >= c.firstContact {
			return false, nil
		}
		var dns *net.DNSError
		if !c.answered.Load() && errors.As(err, &dns) && dns.IsNotFound {
			return false, nil // a name that does not exist: asking again changes nothing
		}
	}
	return checkRetry(ctx, resp, err)
}

// looksLikeMLflow reports whether resp is an answer of an MLflow server (or
// of anything it proxies for a 2xx): a 2xx, or an error in JSON.
func looksLikeMLflow(resp *http.Response) bool {
	return resp.StatusCode/100 == 2 && !isHTML(resp.Header.Get("Content-Type")) ||
		strings.Contains(resp.Header.Get("Content-Type"), "json")
}

// unreachable reports whether a request failed the way a server that is not
// there (yet) makes it fail: no connection, or a gateway's 502/503/504.
func unreachable(resp *http.Response, err error) bool {
	if err != nil {
		return notSent(err)
	}
	switch resp.StatusCode {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return !strings.Contains(resp.Header.Get("Content-Type"), "json")
	}
	return false
}

// checkRetry is the retry policy of both request kinds once budgets allow.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		fault.SignalOverload(ctx) // the engine's adaptive limit halves
	}
	if err != nil && tlsRefused(err) {
		return false, nil // the server refused the handshake: asking again changes nothing
	}
	k, _ := ctx.Value(kindKey{}).(kind)
	if k == applyOnce {
		if err != nil {
			return notSent(err), nil
		}
		return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable, nil
	}
	return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
}

// notSent reports whether err proves the request never reached the server:
// the connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// backoff honours Retry-After up to MaxRetryAfter, else grows exponentially.
func backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	return min(retryablehttp.DefaultBackoff(lo, hi, attempt, resp), MaxRetryAfter)
}

func (c *Client) endpoint(path string, query url.Values) string {
	u := *c.base
	u.Path = c.base.Path + path
	u.RawPath = ""
	if p, err := url.PathUnescape(u.Path); err == nil && p != u.Path {
		u.RawPath = u.Path
		u.Path = p
	}
	u.RawQuery = query.Encode()
	return u.String()
}

// call sends a JSON request (GET with query, or a body for other methods)
// and decodes the JSON answer into out (which may be nil).
func (c *Client) call(ctx context.Context, k kind, method, path string, query url.Values, in, out any) error {
	var body any
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fault.Permanent(fmt.Errorf("mlflow: encoding %s: %w", path, err))
		}
		body = b
	}
	ctx, tries := withAttempts(withKind(ctx, k))
	req, err := retryablehttp.NewRequestWithContext(ctx, method, c.endpoint(path, query), body)
	if err != nil {
		return fault.Permanent(fmt.Errorf("mlflow: %s %s: %s", method, path, c.redact(err.Error())))
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.auth(req.Request)
	resp, err := c.retry.Do(req)
	if err != nil && resp == nil {
		return c.transportError(method, path, err, tries)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.statusError(method, path, resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if isHTML(resp.Header.Get("Content-Type")) {
		// A login page or another service answering 200 at this address.
		return fault.Fatal(c.notMLflow(method, path, resp, readSnippet(resp.Body)))
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fault.Retryable(fmt.Errorf("mlflow: %s %s: reading the answer: %s", method, path, c.redact(err.Error())), 0)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		if b := bytes.TrimSpace(raw); len(b) > 0 && b[0] == '<' {
			return fault.Fatal(c.notMLflow(method, path, resp, string(raw)))
		}
		return fault.Retryable(fmt.Errorf("mlflow: %s %s: decoding the answer: %s", method, path, c.redact(err.Error())), 0)
	}
	return nil
}

// get, post: the two shapes of JSON calls.
func (c *Client) get(ctx context.Context, path string, q url.Values, out any) error {
	return c.call(ctx, idempotent, http.MethodGet, path, q, nil, out)
}

func (c *Client) post(ctx context.Context, k kind, path string, in, out any) error {
	return c.call(ctx, k, http.MethodPost, path, nil, in, out)
}

func (c *Client) redact(s string) string { return location.RedactValues(s, c.secrets...) }

// Redact removes the client's secrets from s.
func (c *Client) Redact(s string) string { return c.redact(s) }

// String returns the server's address, without secrets.
func (c *Client) String() string { return c.base.String() }

func readSnippet(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return string(bytes.TrimSpace(b))
}
