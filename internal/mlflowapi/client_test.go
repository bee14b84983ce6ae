package mlflowapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
)

// testClient returns a client for url with fast retries.
func testClient(t *testing.T, url string, mod ...func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: url, RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond, Timeout: 10 * time.Second}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{name: "nothing", env: nil, want: Config{BaseURL: "http://h"}},
		{name: "token", env: map[string]string{"MLFLOW_TRACKING_TOKEN": "tok"}, want: Config{BaseURL: "http://h", Token: "tok"}},
		{name: "basic auth", env: map[string]string{"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"},
			want: Config{BaseURL: "http://h", Username: "u", Password: "p"}},
		{name: "cert paths", env: map[string]string{"MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem", "MLFLOW_TRACKING_CLIENT_CERT_PATH": "/me.pem"},
			want: Config{BaseURL: "http://h", ServerCertPath: "/ca.pem", ClientCertPath: "/me.pem"}},
		{name: "insecure true", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "true"}, want: Config{BaseURL: "http://h", InsecureTLS: true}},
		{name: "insecure TRUE", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "TRUE"}, want: Config{BaseURL: "http://h", InsecureTLS: true}},
		{name: "insecure 1", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "1"}, want: Config{BaseURL: "http://h", InsecureTLS: true}},
		{name: "insecure false", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "false"}, want: Config{BaseURL: "http://h"}},
		{name: "insecure 0", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "0"}, want: Config{BaseURL: "http://h"}},
		{name: "insecure junk", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "maybe"}, wantErr: "MLFLOW_TRACKING_INSECURE_TLS"},
		{name: "insecure and CA", env: map[string]string{"MLFLOW_TRACKING_INSECURE_TLS": "true", "MLFLOW_TRACKING_SERVER_CERT_PATH": "/ca.pem"},
			wantErr: "cannot both be set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ConfigFromEnv("http://h", func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNewRejectsBadURLAndRedacts(t *testing.T) {
	for _, u := range []string{"", "ftp://h", "127.0.0.1:5000", "http://", "https://user:hunter22@/x"} {
		_, err := New(Config{BaseURL: u})
		if err == nil {
			t.Errorf("New(%q): no error", u)
			continue
		}
		if strings.Contains(err.Error(), "hunter22") {
			t.Errorf("New(%q) error shows the password: %v", u, err)
		}
	}
}

// TestAuthHeaders: basic auth (from the config or the URL's user info) wins
// over the token; the token is a bearer token; the user info never reaches
// the server as part of the URL.
func TestAuthHeaders(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization") + "|" + r.URL.String())
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		name, url string
		mod       func(*Config)
		want      string
	}{
		{"none", srv.URL, nil, ""},
		{"token", srv.URL, func(c *Config) { c.Token = "tok123" }, "Bearer tok123"},
		{"basic wins", srv.URL, func(c *Config) { c.Token = "tok123"; c.Username, c.Password = "u", "p" }, "Basic dTpw"},
		{"user info", "http://u:p@" + host + "/", func(c *Config) { c.Token = "tok123" }, "Basic dTpw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mods := []func(*Config){}
			if tc.mod != nil {
				mods = append(mods, tc.mod)
			}
			c := testClient(t, tc.url, mods...)
			if err := c.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			auth, path, _ := strings.Cut(got.Load().(string), "|")
			if auth != tc.want {
				t.Errorf("Authorization %q, want %q", auth, tc.want)
			}
			if path != "/api/2.0/mlflow/experiments/search" {
				t.Errorf("request URL %q", path)
			}
			if strings.Contains(c.String(), "p@") {
				t.Errorf("String() = %q shows the user info", c.String())
			}
		})
	}
}

// TestStatusClassification: every error answer is classified by status and
// MLflow error code.
func TestStatusClassification(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		kind       fault.Kind
		code       string
		after      time.Duration
		mention    string
		notFound   bool
		unmodified bool // the message is the body as sent
	}{
		{name: "401", status: 401, body: `{"error_code":"UNAUTHENTICATED","message":"no"}`, kind: fault.KindFatal,
			code: "UNAUTHENTICATED", mention: "MLFLOW_TRACKING_TOKEN"},
		{name: "403 permission", status: 403, body: `{"error_code":"PERMISSION_DENIED","message":"no"}`, kind: fault.KindFatal,
			code: "PERMISSION_DENIED", mention: "lack permission"},
		{name: "403 host header", status: 403, body: "Invalid Host header - possible DNS rebinding attack detected", kind: fault.KindFatal,
			mention: "--allowed-hosts"},
		{name: "403 cors", status: 403, body: "Cross-origin request blocked", kind: fault.KindFatal, mention: "CORS"},
		{name: "400 invalid parameter", status: 400, body: `{"error_code":"INVALID_PARAMETER_VALUE","message":"bad key"}`,
			kind: fault.KindPermanent, code: CodeInvalidParameter, mention: "bad key"},
		{name: "400 already exists", status: 400, body: `{"error_code":"RESOURCE_ALREADY_EXISTS","message":"taken"}`,
			kind: fault.KindPermanent, code: CodeAlreadyExists},
		{name: "404 does not exist", status: 404, body: `{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"gone"}`,
			kind: fault.KindPermanent, code: CodeDoesNotExist, notFound: true},
		{name: "404 plain", status: 404, body: "Not Found", kind: fault.KindPermanent, notFound: true, unmodified: true},
		{name: "408", status: 408, body: "slow", kind: fault.KindRetryable},
		{name: "409", status: 409, body: "conflict", kind: fault.KindRetryable},
		{name: "429 retry-after", status: 429, body: "slow down", header: map[string]string{"Retry-After": "1"},
			kind: fault.KindRetryable, after: time.Second},
		{name: "500", status: 500, body: `{"error_code":"INTERNAL_ERROR","message":"boom"}`, kind: fault.KindRetryable, code: "INTERNAL_ERROR"},
		{name: "501", status: 501, body: "nope", kind: fault.KindRetryable}, // not retried by HTTP, but 5xx
		{name: "502 html", status: 502, body: "<html>bad gateway</html>", kind: fault.KindRetryable, unmodified: true},
		{name: "503 retry-after", status: 503, body: "busy", header: map[string]string{"Retry-After": "1"},
			kind: fault.KindRetryable, after: time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c := testClient(t, srv.URL, func(c *Config) { c.RetryMax = 1 })
			_, err := c.GetRun(context.Background(), "r1")
			if err == nil {
				t.Fatal("no error")
			}
			if k := fault.KindOf(err); k != tc.kind {
				t.Errorf("kind %v, want %v: %v", k, tc.kind, err)
			}
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("not an *APIError: %v", err)
			}
			if ae.Status != tc.status || ae.Code != tc.code || ae.Method != "GET" || ae.Path != "/api/2.0/mlflow/runs/get" {
				t.Errorf("APIError %+v, want status %d code %q on GET runs/get", ae, tc.status, tc.code)
			}
			if tc.code != "" && !IsCode(err, tc.code) {
				t.Errorf("IsCode(err, %q) = false", tc.code)
			}
			if IsNotFound(err) != tc.notFound {
				t.Errorf("IsNotFound = %v, want %v", IsNotFound(err), tc.notFound)
			}
			if got := fault.RetryAfter(err); got != tc.after {
				t.Errorf("RetryAfter = %v, want %v", got, tc.after)
			}
			if tc.mention != "" && !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("error %q does not mention %q", err, tc.mention)
			}
			if tc.unmodified && ae.Message != tc.body {
				t.Errorf("message %q, want the body %q", ae.Message, tc.body)
			}
		})
	}
}

func TestRetryAfterHeader(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{"-3", 0},
		{"soon", 0},
		{time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat), 0},
	} {
		resp := &http.Response{Header: http.Header{}}
		if tc.v != "" {
			resp.Header.Set("Retry-After", tc.v)
		}
		if got := retryAfter(resp); got != tc.want {
			t.Errorf("retryAfter(%q) = %v, want %v", tc.v, got, tc.want)
		}
	}
	future := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	resp := &http.Response{Header: http.Header{"Retry-After": {future}}}
	if got := retryAfter(resp); got < 25*time.Second || got > 31*time.Second {
		t.Errorf("retryAfter(date in 30s) = %v", got)
	}
}

// TestMessagesRedacted: a server echoing the client's secret back (in an
// error body, or a proxy's HTML page) never puts it into an error.
func TestMessagesRedacted(t *testing.T) {
	const token, password = "s3cr3t-token-value", "p4ssw0rd-value"
	for _, tc := range []struct {
		name   string
		status int
		secret string
		mod    func(*Config)
	}{
		{"token 400", 400, token, func(c *Config) { c.Token = token }},
		{"token 401", 401, token, func(c *Config) { c.Token = token }},
		{"token 500", 500, token, func(c *Config) { c.Token = token }},
		{"password 403", 403, password, func(c *Config) { c.Username, c.Password = "me", password }},
		{"password 400", 400, password, func(c *Config) { c.Username, c.Password = "me", password }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, `{"error_code":"BAD","message":"you sent `+tc.secret+` as your secret"}`)
			}))
			defer srv.Close()
			c := testClient(t, srv.URL, tc.mod, func(c *Config) { c.RetryMax = 1 })
			err := c.SetTag(context.Background(), "r", "k", "v")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), tc.secret) {
				t.Errorf("error shows the secret: %v", err)
			}
			if !strings.Contains(err.Error(), "you sent") {
				t.Errorf("error lost the server's message: %v", err)
			}
		})
	}
	c := testClient(t, "http://127.0.0.1:1", func(c *Config) { c.Token = token })
	if got := c.Redact("a " + token + " b"); strings.Contains(got, token) {
		t.Errorf("Redact kept the token: %q", got)
	}
}

// TestEchoedAuthorizationRedacted: a server or proxy that echoes the
// Authorization header puts the bearer token or the base64 of
// "user:password" into its answer.
func TestEchoedAuthorizationRedacted(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"bearer", func(c *Config) { c.Token = "s3cr3t-token-value" }},
		{"basic", func(c *Config) { c.Username, c.Password = "me", "p4ssw0rd-value" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Value
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				auth := r.Header.Get("Authorization")
				_, cred, _ := strings.Cut(auth, " ")
				sent.Store(cred)
				w.WriteHeader(400)
				io.WriteString(w, "bad request, Authorization: "+auth)
			}))
			defer srv.Close()
			c := testClient(t, srv.URL, tc.mod)
			err := c.SetTag(context.Background(), "r", "k", "v")
			if cred := sent.Load().(string); err == nil || strings.Contains(err.Error(), cred) {
				t.Errorf("error shows the credential %q: %v", cred, err)
			}
		})
	}
}

// TestTransportErrorRedacted: a network failure message carrying the URL's
// password does not show it.
func TestTransportErrorRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	c := testClient(t, "http://me:p4ssw0rd-value@"+addr)
	err = c.UpdateRun(context.Background(), UpdateRun{RunID: "r"})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "p4ssw0rd-value") {
		t.Errorf("error shows the password: %v", err)
	}
	if fault.KindOf(err) != fault.KindRetryable {
		t.Errorf("kind %v, want retryable: %v", fault.KindOf(err), err)
	}
}

// writePEM writes PEM blocks to a file in dir.
func writePEM(t *testing.T, dir, name string, blocks ...*pem.Block) string {
	t.Helper()
	var b []byte
	for _, bl := range blocks {
		b = append(b, pem.EncodeToMemory(bl)...)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			w.Header().Set("X-Client", r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		io.WriteString(w, `{"run":{"info":{"run_id":"r1"}}}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := writePEM(t, dir, "ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)

	// a client certificate and its key in one PEM file
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "runferry-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	both := writePEM(t, dir, "client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	certOnly := writePEM(t, dir, "certonly.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der})

	for _, tc := range []struct {
		name    string
		mod     func(*Config)
		newErr  string // New fails mentioning this
		callErr string // the call fails mentioning this (fatal)
	}{
		{name: "unknown CA", mod: func(c *Config) {}, callErr: "MLFLOW_TRACKING_SERVER_CERT_PATH"},
		{name: "CA given", mod: func(c *Config) { c.ServerCertPath = ca }},
		{name: "insecure", mod: func(c *Config) { c.InsecureTLS = true }},
		{name: "CA missing", mod: func(c *Config) { c.ServerCertPath = filepath.Join(dir, "nope.pem") }, newErr: "MLFLOW_TRACKING_SERVER_CERT_PATH"},
		{name: "CA junk", mod: func(c *Config) { c.ServerCertPath = junk }, newErr: "no PEM certificate"},
		{name: "client cert", mod: func(c *Config) { c.ServerCertPath = ca; c.ClientCertPath = both }},
		{name: "client cert without key", mod: func(c *Config) { c.ServerCertPath = ca; c.ClientCertPath = certOnly }, newErr: "MLFLOW_TRACKING_CLIENT_CERT_PATH"},
		{name: "client cert missing", mod: func(c *Config) { c.ClientCertPath = filepath.Join(dir, "nope.pem") }, newErr: "MLFLOW_TRACKING_CLIENT_CERT_PATH"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{BaseURL: srv.URL, RetryMax: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond}
			tc.mod(&cfg)
			c, err := New(cfg)
			if tc.newErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.newErr) {
					t.Fatalf("New: err %v, want one mentioning %q", err, tc.newErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			run, err := c.GetRun(context.Background(), "r1")
			if tc.callErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.callErr) || fault.KindOf(err) != fault.KindFatal {
					t.Fatalf("err %v (kind %v), want a fatal one mentioning %q", err, fault.KindOf(err), tc.callErr)
				}
				return
			}
			if err != nil || run.Info.RunID != "r1" {
				t.Fatalf("GetRun = %+v, %v", run, err)
			}
		})
	}
	// the client certificate is presented when the server asks for one
	srv2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) == 0 || r.TLS.PeerCertificates[0].Subject.CommonName != "runferry-test" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `{}`)
	}))
	srv2.TLS = srv.TLS.Clone()
	srv2.TLS.ClientAuth = 2 // tls.RequireAnyClientCert
	srv2.StartTLS()
	defer srv2.Close()
	ca2 := writePEM(t, dir, "ca2.pem", &pem.Block{Type: "CERTIFICATE", Bytes: srv2.Certificate().Raw})
	c, err := New(Config{BaseURL: srv2.URL, ServerCertPath: ca2, ClientCertPath: both, RetryMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetTag(context.Background(), "r", "k", "v"); err != nil {
		t.Errorf("with the client certificate: %v", err)
	}
}
