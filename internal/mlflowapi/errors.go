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
	"time"

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
}

func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	return fmt.Sprintf("mlflow: %s %s: %d %s: %s", e.Method, e.Path, e.Status, code, e.Message)
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

// statusError turns a non-2xx answer into a classified error.
func (c *Client) statusError(method, path string, resp *http.Response) error {
	body := readSnippet(resp.Body)
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	var wire struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal([]byte(body), &wire) == nil && wire.Code != "" {
		e.Code, e.Message = wire.Code, wire.Message
	} else {
		e.Message = body
	}
	if len(e.Message) > 1000 {
		e.Message = e.Message[:1000] + "…"
	}
	e.Message = c.redact(e.Message)
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

// transportError classifies a request that got no answer.
func (c *Client) transportError(method, path string, err error) error {
	msg := c.redact(err.Error())
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("mlflow: %s %s: %w", method, path, err)
	}
	if isCertError(err) {
		return fault.Fatal(fmt.Errorf("mlflow: %s %s: %s (give the server's CA with ?server-cert=PATH or MLFLOW_TRACKING_SERVER_CERT_PATH, or skip verification with ?insecure-tls=true or MLFLOW_TRACKING_INSECURE_TLS=true)", method, path, msg))
	}
	if tlsRefused(err) {
		return fault.Fatal(fmt.Errorf("mlflow: %s %s: %s (the server refused the TLS handshake; if it asks for a client certificate, give one with ?client-cert=PATH or MLFLOW_TRACKING_CLIENT_CERT_PATH)", method, path, msg))
	}
	return fault.Retryable(fmt.Errorf("mlflow: %s %s: %s", method, path, msg), 0)
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
