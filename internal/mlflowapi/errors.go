package mlflowapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/fault"
)

// MLflow error codes callers test for.
const (
	CodeInvalidParameter = "INVALID_PARAMETER_VALUE"
	CodeAlreadyExists    = "RESOURCE_ALREADY_EXISTS"
	CodeDoesNotExist     = "RESOURCE_DOES_NOT_EXIST"
)

// APIError is an error answer from the server.
type APIError struct {
	Method, Path string
	Status       int    // HTTP status
	Code         string // MLflow's error_code, "" when the body was not MLflow JSON
	Message      string // MLflow's message or the start of the body, secrets removed
	// ContentType is the answer's Content-Type when the body was not MLflow
	// JSON; Message is then a short excerpt (excerptLen) on one line.
	ContentType string
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	if e.Code == "" && e.ContentType != "" {
		return fmt.Sprintf("mlflow: %s %s: %d %s, %s, not an MLflow answer: %q", e.Method, e.Path, e.Status, code, e.ContentType, e.Message)
	}
	return fmt.Sprintf("mlflow: %s %s: %d %s: %s", e.Method, e.Path, e.Status, code, e.Message)
}

// excerptLen bounds the excerpt of an answer that is not MLflow's.
const excerptLen = 160

// excerpt returns the start of body on one line (white space collapsed), at
// most excerptLen bytes, cut at a rune boundary with "…".
func excerpt(body string) string {
	s := strings.Join(strings.Fields(body), " ")
	if len(s) <= excerptLen {
		return s
	}
	cut := excerptLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isHTML(contentType string) bool {
	return strings.Contains(contentType, "html")
}

// notMLflow describes a 2xx answer that is not MLflow's (a login page, another
// service): status, content type, a short excerpt and the likely fix.
func (c *Client) notMLflow(method, path string, resp *http.Response, body string) error {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		ct = "no content type"
	}
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode, ContentType: ct, Message: c.redact(excerpt(body))}
	hint := "this address is not an MLflow tracking server's API: give the server's own URL (with its path prefix, if it is served under one)"
	if lower := strings.ToLower(body); strings.Contains(lower, "login") || strings.Contains(lower, "sign in") || strings.Contains(lower, "password") {
		hint = "this looks like a login page: give the MLflow server's URL directly, or credentials the server accepts (MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"
	}
	return fmt.Errorf("%w (%s)", e, hint)
}

// IsCode reports whether err is an APIError with the given error_code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == code
}

// IsWriteRace reports whether err is a SQL store's unique-key violation
// answered as 400: MLflow's set-tag (and log-batch of tags) reads, then
// inserts, so two writers setting the same key of a run at once (a child
// linking itself to its parent while the parent links its children) make
// one of them fail although the write is idempotent.
func IsWriteRace(err error) bool {
	var e *APIError
	if !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		return false
	}
	for _, s := range []string{"UNIQUE constraint failed", "duplicate key value violates unique constraint", "Duplicate entry"} {
		if strings.Contains(e.Message, s) {
			return true
		}
	}
	return false
}

// IsNotFound reports whether err says the resource does not exist.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Code == CodeDoesNotExist || e.Status == http.StatusNotFound)
}

// statusError turns a non-2xx answer into a classified error. An answer that
// is not MLflow JSON is shown by status, content type and a short excerpt.
func (c *Client) statusError(method, path string, resp *http.Response) error {
	body := readSnippet(resp.Body)
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	var wire struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	foreign := false
	if json.Unmarshal([]byte(body), &wire) == nil && wire.Code != "" {
		e.Code, e.Message = wire.Code, wire.Message
	} else if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "json") {
		foreign = true
		if ct == "" {
			ct = "no content type"
		}
		e.ContentType, e.Message = ct, excerpt(body)
	} else {
		e.Message = body
	}
	if len(e.Message) > 1000 {
		e.Message = e.Message[:1000] + "…"
	}
	e.Message = c.redact(e.Message)
	if foreign {
		switch resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			// Retryable: the server behind may come back. The engine's Check
			// makes it fatal when the job has not started yet.
			hint := "a proxy or gateway answered, not MLflow: the MLflow server behind it is down or unreachable from the proxy"
			return fault.Retryable(fmt.Errorf("%w (%s)", e, hint), retryAfter(resp))
		case http.StatusNotFound, http.StatusMethodNotAllowed:
			if !c.answered.Load() { // nothing at this address ever answered as MLflow
				return fault.Permanent(fmt.Errorf("%w (no MLflow API at this address: give the tracking server's URL, with its path prefix if it is served under one)", e))
			}
		}
	}
	switch {
	case resp.StatusCode == http.StatusForbidden && strings.Contains(body, "Invalid Host header"):
		return fault.Fatal(fmt.Errorf("%w (the server's security middleware rejects the host name %q: start the server with --allowed-hosts naming it, or set MLFLOW_SERVER_ALLOWED_HOSTS on the server)", e, c.base.Host))
	case resp.StatusCode == http.StatusForbidden && strings.Contains(body, "Cross-origin"):
		return fault.Fatal(fmt.Errorf("%w (the server's CORS check rejected the request)", e))
	case resp.StatusCode == http.StatusUnauthorized:
		return fault.Fatal(fmt.Errorf("%w (set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_PASSWORD with the user in ?username= or MLFLOW_TRACKING_USERNAME)", e))
	case resp.StatusCode == http.StatusForbidden:
		return fault.Fatal(fmt.Errorf("%w (the credentials lack permission)", e))
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fault.Retryable(e, retryAfter(resp))
	case resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusConflict:
		return fault.Retryable(e, 0)
	}
	return fault.Permanent(e)
}

func retryAfter(resp *http.Response) time.Duration {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// transportError classifies a request that got no answer. tries (may be nil)
// are its attempts, named in the message when retries took the time.
func (c *Client) transportError(method, path string, err error, tries *attempts) error {
	msg := c.redact(err.Error())
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("mlflow: %s %s: %w", method, path, err)
	}
	if notSent(err) {
		what := fmt.Sprintf("mlflow: cannot connect to %s: %s", c.base.Redacted(), dialReason(err, c.connTimeout))
		if tries != nil && tries.n > 1 {
			what += fmt.Sprintf(" (%d attempts in %s", tries.n, time.Since(tries.start).Round(100*time.Millisecond))
			if !c.answered.Load() {
				what += fmt.Sprintf("; a server that never answered is retried for %s", c.firstContact)
			}
			what += ")"
		}
		if !c.answered.Load() {
			what += "; is the server running and the address right?"
		}
		// Retryable: the engine's Check makes it fatal before the job starts.
		return fault.Retryable(&connectError{msg: c.redact(what), err: err}, 0)
	}
	if isCertError(err) {
		return fault.Fatal(fmt.Errorf("mlflow: %s %s: %s (give the server's CA with ?server-cert=PATH or MLFLOW_TRACKING_SERVER_CERT_PATH, or skip verification with ?insecure-tls=true or MLFLOW_TRACKING_INSECURE_TLS=true)", method, path, msg))
	}
	if tlsRefused(err) {
		return fault.Fatal(fmt.Errorf("mlflow: %s %s: %s (the server refused the TLS handshake; if it asks for a client certificate, give one with ?client-cert=PATH or MLFLOW_TRACKING_CLIENT_CERT_PATH)", method, path, msg))
	}
	return fault.Retryable(fmt.Errorf("mlflow: %s %s: %s", method, path, msg), 0)
}

// connectError is a connection that could not be made: its message is the
// redacted one-line summary, and it wraps the network error (fault.Unreachable
// reads it).
type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.err }

// dialReason says in a few words why a connection could not be made.
func dialReason(err error, timeout time.Duration) string {
	var dns *net.DNSError
	switch {
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return "cannot resolve " + dns.Name + ": " + dns.Err
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network is unreachable"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer to the connection attempt within %s", timeout)
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// tlsRefused reports whether err is a TLS alert the server sent about the
// client's certificate (none given, or not trusted), which no retry cures.
func tlsRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && strings.Contains(op.Err.Error(), "certificate")
}

func isCertError(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify)
}
