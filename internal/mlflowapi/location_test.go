package mlflowapi

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
)

func parseLoc(t *testing.T, raw string) location.Location {
	t.Helper()
	loc, err := location.Parse(raw, func(string) (location.Kind, bool) { return location.URLKind, true })
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestConfigFromLocation(t *testing.T) {
	env := map[string]string{"MLFLOW_TRACKING_TOKEN": "tok-1234"}
	for raw, want := range map[string]string{
		"mlflow+http://127.0.0.1:5000":                          "http://127.0.0.1:5000",
		"mlflow+https://mlflow.example.com/prefix?deleted=true": "https://mlflow.example.com/prefix",
		"mlflow+https://h:8443/":                                "https://h:8443/",
	} {
		cfg, err := ConfigFromLocation(parseLoc(t, raw), func(k string) string { return env[k] })
		if err != nil || cfg.BaseURL != want || cfg.Token != "tok-1234" {
			t.Errorf("%s: BaseURL %q token %q err %v; want %q", raw, cfg.BaseURL, cfg.Token, err, want)
		}
	}
}

// TestLocationOptionsRead: every non-secret option of EnvOptions given in
// the query is read (and wins over its environment variable); the user of
// the user info is the basic-auth user, and neither it nor the query stays
// in BaseURL.
func TestLocationOptionsRead(t *testing.T) {
	env := map[string]string{"MLFLOW_TRACKING_PASSWORD": "pw-1234", "MLFLOW_TRACKING_USERNAME": "env-user",
		"MLFLOW_TRACKING_SERVER_CERT_PATH": "/env/ca.pem", "MLFLOW_TRACKING_CLIENT_CERT_PATH": "/env/me.pem"}
	getenv := func(k string) string { return env[k] }
	cfg, err := ConfigFromLocation(parseLoc(t, "mlflow+https://h/p?username=alice&server-cert=/q/ca.pem&client-cert=/q/me.pem"), getenv)
	want := Config{BaseURL: "https://h/p", Username: "alice", Password: "pw-1234", ServerCertPath: "/q/ca.pem", ClientCertPath: "/q/me.pem"}
	if err != nil || cfg != want {
		t.Errorf("query options: %+v, %v; want %+v", cfg, err, want)
	}
	cfg, err = ConfigFromLocation(parseLoc(t, "mlflow+https://bob@h/p?insecure-tls=true"), func(k string) string {
		if k == "MLFLOW_TRACKING_SERVER_CERT_PATH" {
			return ""
		}
		return env[k]
	})
	want = Config{BaseURL: "https://h/p", Username: "bob", Password: "pw-1234", InsecureTLS: true, ClientCertPath: "/env/me.pem"}
	if err != nil || cfg != want {
		t.Errorf("user info and insecure-tls: %+v, %v; want %+v", cfg, err, want)
	}
	cfg, err = ConfigFromLocation(parseLoc(t, "mlflow+https://h"), getenv)
	if err != nil || cfg.Username != "env-user" || cfg.ServerCertPath != "/env/ca.pem" {
		t.Errorf("environment only: %+v, %v", cfg, err)
	}
	// Every non-secret option is covered above; a new one must be too.
	for _, o := range EnvOptions {
		if !o.Secret && !strings.Contains("username insecure-tls server-cert client-cert", o.Name) {
			t.Errorf("option %s is not tested", o.Name)
		}
	}
	for _, tc := range []struct{ raw, errHas string }{
		{"mlflow+http://h?server-cert=/ca.pem", `"server-cert" applies only to mlflow+https://`},
		{"mlflow+http://h?insecure-tls=true", `"insecure-tls" applies only to mlflow+https://`},
		{"mlflow+http://h?client-cert=/me.pem", `"client-cert" applies only to mlflow+https://`},
		{"mlflow+https://h?insecure-tls=maybe", "insecure-tls"},
		{"mlflow+https://h?insecure-tls=true&server-cert=/ca.pem", "cannot both be set"},
		{"mlflow+https://bob@h?username=alice", "names two users"},
		{"mlflow+https://h?token=s3cr3t-TOKEN", "set MLFLOW_TRACKING_TOKEN"},
		{"mlflow+https://h?password=s3cr3t-TOKEN", "set MLFLOW_TRACKING_PASSWORD"},
		{"mlflow+https://bob:s3cr3t-TOKEN@h", "set MLFLOW_TRACKING_PASSWORD"},
	} {
		_, err := ConfigFromLocation(parseLoc(t, tc.raw), func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tc.errHas) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: err %v, want one containing %q and no secret", location.Redact(tc.raw), err, tc.errHas)
		}
	}
	_, err = ConfigFromLocation(parseLoc(t, "mlflow+https://h?username=alice"), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "MLFLOW_TRACKING_PASSWORD is not set") {
		t.Errorf("username without password: %v", err)
	}
}

// TestLocationOptionsTakeEffect: options given in a location really change
// what the client does against TLS servers: server-cert trusts a private
// CA, insecure-tls skips verification, client-cert presents a certificate
// that a server verifying clients accepts, and username sends basic auth
// with the password from the environment.
func TestLocationOptionsTakeEffect(t *testing.T) {
	dir := t.TempDir()
	// A client certificate and key in one file, and a pool trusting it.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(11), Subject: pkix.Name{CommonName: "runferry-mtls"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, _ := x509.ParseCertificate(der)
	kder, _ := x509.MarshalECPrivateKey(key)
	clientPEM := writePEM(t, dir, "client.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}, &pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})

	var seen atomic.Value
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := ""
		if len(r.TLS.PeerCertificates) > 0 {
			who = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		seen.Store(who + "|" + r.Header.Get("Authorization"))
		io.WriteString(w, `{}`)
	})
	plain := httptest.NewTLSServer(handler)
	defer plain.Close()
	mtls := httptest.NewUnstartedServer(handler)
	pool := x509.NewCertPool()
	pool.AddCert(clientCert)
	mtls.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}
	mtls.StartTLS()
	defer mtls.Close()
	caPlain := writePEM(t, dir, "plain-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: plain.Certificate().Raw})
	caMTLS := writePEM(t, dir, "mtls-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: mtls.Certificate().Raw})
	otherCA := writePEM(t, dir, "other-ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: der}) // signed nothing the servers show
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "https://") }

	const pw = "pw-basic-5678"
	for _, tc := range []struct {
		name, raw string
		env       map[string]string
		ok        bool
		errHas    string
		seen      string // client CN | Authorization
	}{
		{name: "private CA not trusted", raw: "mlflow+https://" + host(plain), errHas: "server-cert"},
		{name: "server-cert", raw: "mlflow+https://" + host(plain) + "?server-cert=" + caPlain, ok: true, seen: "|"},
		{name: "server-cert wins over the environment", raw: "mlflow+https://" + host(plain) + "?server-cert=" + caPlain,
			env: map[string]string{"MLFLOW_TRACKING_SERVER_CERT_PATH": filepath.Join(dir, "missing.pem")}, ok: true, seen: "|"},
		{name: "wrong server-cert", raw: "mlflow+https://" + host(plain) + "?server-cert=" + otherCA, errHas: "server-cert"},
		{name: "insecure-tls", raw: "mlflow+https://" + host(plain) + "?insecure-tls=true", ok: true, seen: "|"},
		{name: "insecure-tls false", raw: "mlflow+https://" + host(plain) + "?insecure-tls=false", errHas: "server-cert"},
		{name: "no client-cert", raw: "mlflow+https://" + host(mtls) + "?server-cert=" + caMTLS, errHas: "?client-cert=PATH"},
		{name: "client-cert", raw: "mlflow+https://" + host(mtls) + "?server-cert=" + caMTLS + "&client-cert=" + clientPEM, ok: true, seen: "runferry-mtls|"},
		{name: "username", raw: "mlflow+https://" + host(plain) + "?insecure-tls=true&username=alice",
			env: map[string]string{"MLFLOW_TRACKING_PASSWORD": pw, "MLFLOW_TRACKING_TOKEN": "tok-ignored"}, ok: true,
			seen: "|Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+pw))},
		{name: "user info", raw: "mlflow+https://carol@" + host(plain) + "?insecure-tls=true",
			env: map[string]string{"MLFLOW_TRACKING_PASSWORD": pw, "MLFLOW_TRACKING_USERNAME": "env-user"}, ok: true,
			seen: "|Basic " + base64.StdEncoding.EncodeToString([]byte("carol:"+pw))},
		{name: "password without user: no basic auth, as in MLflow", raw: "mlflow+https://" + host(plain) + "?insecure-tls=true",
			env: map[string]string{"MLFLOW_TRACKING_PASSWORD": pw, "MLFLOW_TRACKING_TOKEN": "tok-used"}, ok: true, seen: "|Bearer tok-used"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen.Store("")
			cfg, err := ConfigFromLocation(parseLoc(t, tc.raw), func(k string) string { return tc.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			cfg.RetryMax, cfg.RetryWaitMin, cfg.RetryWaitMax = 1, time.Millisecond, time.Millisecond
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Ping(context.Background())
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("Ping succeeded or failed wrongly (%v); want an error mentioning %q", err, tc.errHas)
				}
				if tc.errHas != "" && fault.KindOf(err) != fault.KindFatal {
					t.Errorf("certificate error not fatal: %v", err)
				}
				if got := seen.Load().(string); got != "" {
					t.Errorf("the server answered a request it should not have got: %q", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := seen.Load().(string); got != tc.seen {
				t.Errorf("server saw %q, want %q", got, tc.seen)
			}
		})
	}
}
