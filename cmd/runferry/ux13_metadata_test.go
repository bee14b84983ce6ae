package main

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// metadataListener stands in for every cloud's instance metadata service
// and Google's token endpoint: the SDKs are pointed at it through their
// documented variables (AWS_EC2_METADATA_SERVICE_ENDPOINT,
// GCE_METADATA_HOST, Azure App Service's IDENTITY_ENDPOINT), it answers
// 404 to everything, and counts the requests by the service they are for.
type metadataListener struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hits map[string]int // "aws", "gce", "azure", "token"
}

func newMetadataListener(t *testing.T) *metadataListener {
	m := &metadataListener{hits: map[string]int{}}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "other"
		switch {
		case strings.HasPrefix(r.URL.Path, "/latest/"):
			kind = "aws"
		case strings.HasPrefix(r.URL.Path, "/computeMetadata/"):
			kind = "gce"
		case strings.HasPrefix(r.URL.Path, "/msi/"):
			kind = "azure"
		case r.URL.Path == "/token":
			kind = "token"
		}
		m.mu.Lock()
		m.hits[kind]++
		m.mu.Unlock()
		http.NotFound(w, r)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

// take returns the requests counted since its last call, by kind, and
// starts counting anew.
func (m *metadataListener) take() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.hits
	m.hits = map[string]int{}
	return out
}

func (m *metadataListener) env(t *testing.T) []string {
	home := t.TempDir()
	host := strings.TrimPrefix(m.srv.URL, "http://")
	return []string{
		"PATH=/usr/bin:/bin", // no az, gcloud or aws CLI of the machine
		"HOME=" + home,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + m.srv.URL,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-aws-credentials"),
		"GCE_METADATA_HOST=" + host,
		"CLOUDSDK_CONFIG=" + filepath.Join(home, "no-gcloud"),
		"IDENTITY_ENDPOINT=" + m.srv.URL + "/msi/token",
		"IDENTITY_HEADER=ux13",
	}
}

// closedPort returns a local address nothing listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestMetadataFalseAsksNoMetadataService: an archive in S3, GCS or Azure
// with no credentials in the environment makes each cloud's default chain
// ask its instance metadata service (the EC2 instance role, Google's
// metadata server, an Azure managed identity), an endpoint the location
// does not name. With RUNFERRY_METADATA=false or ?metadata=false none is
// asked: one line, exit 1, naming what was not asked. Azure's failed chain
// is one line too (it was the SDK's multi-line text cut to its last
// words: "denied destination ----... To troubleshoot, visit ..."). Without
// the fix the metadata services were asked with RUNFERRY_METADATA=false
// and ?metadata=false was refused as unknown.
func TestMetadataFalseAsksNoMetadataService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testenv.BuildOnce(t, ".")
	m := newMetadataListener(t)
	nowhere := closedPort(t)
	stores := []struct {
		name, loc string
		env       []string
		kind      string
		said      string // the error of the default chain
	}{
		{"s3", "parquet:s3://bkt/a?endpoint=http://" + nowhere + "&path-style=true", nil, "aws", "no AWS credentials found"},
		{"gcs", "parquet:gs://bkt/a?endpoint=https://" + nowhere, nil, "gce", "gs://bkt/a"},
		{"azure", "parquet:azblob://ctr/a", []string{"AZURE_STORAGE_ACCOUNT=ux13acct", "AZURE_STORAGE_DOMAIN=" + nowhere,
			"AZURE_STORAGE_PROTOCOL=https", "AZURE_STORAGE_IS_LOCAL_EMULATOR=true"}, "azure", "no usable Azure credentials (searched: AZURE_STORAGE_KEY"},
	}
	run := func(t *testing.T, env []string, loc string) (int, string) {
		cmd := exec.Command(bin, "archive", "check", loc)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		return exitCode(err), strings.TrimSpace(stderr.String())
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			env := append(m.env(t), s.env...)
			m.take()
			code, errOut := run(t, env, s.loc)
			hits := m.take()
			if hits[s.kind] == 0 {
				t.Fatalf("default chain: the metadata service was not asked (hits %v; exit %d: %s): the test does not reach it", hits, code, errOut)
			}
			if code != exitFatal || strings.Contains(errOut, "\n") || !strings.Contains(errOut, s.said) || strings.Contains(errOut, "----") {
				t.Errorf("default chain: exit %d, want 1 and one line saying %q:\n%s", code, s.said, errOut)
			}
			for _, way := range []struct {
				name string
				env  []string
				loc  string
			}{
				{"RUNFERRY_METADATA=false", append(env, "RUNFERRY_METADATA=false"), s.loc},
				{"?metadata=false", env, s.loc + map[bool]string{true: "&", false: "?"}[strings.Contains(s.loc, "?")] + "metadata=false"},
			} {
				code, errOut := run(t, way.env, way.loc)
				if hits := m.take(); len(hits) != 0 {
					t.Errorf("%s: asked %v", way.name, hits)
				}
				if code != exitFatal || strings.Contains(errOut, "\n") || !strings.Contains(errOut, "not asked: metadata=false") {
					t.Errorf("%s: exit %d, want 1 and one line saying what was not asked:\n%s", way.name, code, errOut)
				}
			}
			// A value that is not a boolean is refused, naming where it came from.
			if code, errOut := run(t, append(env, "RUNFERRY_METADATA=no-thanks"), s.loc); code == 0 || !strings.Contains(errOut, `RUNFERRY_METADATA="no-thanks": want true or false`) {
				t.Errorf("RUNFERRY_METADATA=no-thanks: exit %d: %s", code, errOut)
			}
		})
	}
}

// TestGivenCredentialsAskNoMetadataService: with credentials given (S3
// keys, an Azure account key, a Google service account file), the default
// chain (metadata not forbidden) asks no metadata service: S3 and Azure
// archives are written and checked through their emulators only; the
// Google service account's token is asked of its token_uri (here the
// listener), never of the metadata server.
func TestGivenCredentialsAskNoMetadataService(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testenv.BuildOnce(t, ".")
	m := newMetadataListener(t)
	run := func(t *testing.T, env []string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return exitCode(err), string(out)
	}
	t.Run("s3", func(t *testing.T) {
		srv := testenv.SharedS3(t)
		loc := "parquet:" + srv.Location(srv.CreateBucket(t, "ux13"), "a")
		env := append(m.env(t), "AWS_ACCESS_KEY_ID="+srv.AccessKey, "AWS_SECRET_ACCESS_KEY="+srv.SecretKey, "AWS_REGION="+srv.Region)
		copyAndCheckAsksNothing(t, m, run, env, loc)
	})
	t.Run("azure", func(t *testing.T) {
		srv := testenv.SharedAzurite(t)
		srv.Env(t) // the emulator's account and key
		loc := "parquet:" + srv.Location(srv.CreateContainer(t, "ux13"), "a")
		env := m.env(t)
		for _, k := range []string{"AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "AZURE_STORAGE_DOMAIN", "AZURE_STORAGE_PROTOCOL", "AZURE_STORAGE_IS_LOCAL_EMULATOR"} {
			env = append(env, k+"="+os.Getenv(k))
		}
		copyAndCheckAsksNothing(t, m, run, env, loc)
	})
	t.Run("gcs", func(t *testing.T) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		sa, _ := json.Marshal(map[string]string{
			"type": "service_account", "project_id": "ux13", "private_key_id": "k1",
			"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
			"client_email": "ux13@ux13.iam.gserviceaccount.com", "client_id": "1",
			"token_uri": m.srv.URL + "/token",
		})
		file := filepath.Join(t.TempDir(), "sa.json")
		if err := os.WriteFile(file, sa, 0o600); err != nil {
			t.Fatal(err)
		}
		env := append(m.env(t), "GOOGLE_APPLICATION_CREDENTIALS="+file)
		m.take()
		code, out := run(t, env, "archive", "check", "parquet:gs://bkt/a?endpoint=https://"+closedPort(t))
		hits := m.take()
		if hits["token"] == 0 || len(hits) != 1 {
			t.Errorf("want the token asked of the service account's token_uri only; asked %v (exit %d: %s)", hits, code, out)
		}
	})
}

// copyAndCheckAsksNothing copies the fixtures into loc and checks them
// there, by run with env, and requires that the metadata listener m was asked
// nothing meanwhile.
func copyAndCheckAsksNothing(t *testing.T, m *metadataListener, run func(*testing.T, []string, ...string) (int, string), env []string, loc string) {
	t.Helper()
	m.take()
	if code, out := run(t, env, "copy", "--no-state", "-q", fixtures, loc, "--accept-gaps"); code != 0 {
		t.Fatalf("copy: exit %d\n%s", code, out)
	}
	if code, out := run(t, env, "check", fixtures, loc); code != 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	if hits := m.take(); len(hits) != 0 {
		t.Errorf("asked %v", hits)
	}
}
