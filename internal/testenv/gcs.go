package testenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FakeGCSModule is the Google Cloud Storage emulator the gs:// tests run:
// fake-gcs-server (BSD-2-Clause), a Go module, serving the GCS JSON API
// over plain HTTP on 127.0.0.1.
const FakeGCSModule = "github.com/fsouza/fake-gcs-server@v1.56.1"

// GCSServer is fake-gcs-server on 127.0.0.1, its objects in memory.
type GCSServer struct {
	Endpoint string // http://127.0.0.1:PORT
	objectServer
}

// SharedGCS returns one GCS emulator shared by every test of the binary,
// started on first use and stopped by Main (or by its watchdog if the
// binary dies), and sets the test's Google environment (Env). Tests
// sharing it use their own buckets (CreateBucket).
func SharedGCS(t testing.TB) *GCSServer {
	t.Helper()
	bin := goTool(t, "fake-gcs-server (GCS emulator)", "fake-gcs-server", FakeGCSModule, "RUNFERRY_FAKEGCS")
	s := sharedGCS.get(t, func() (*GCSServer, error) { return startGCS(bin) })
	s.Env(t)
	return s
}

func startGCS(bin string) (*GCSServer, error) {
	o, port, err := newObjectServer("gcs")
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	s := &GCSServer{Endpoint: "http://" + host, objectServer: o}
	// The memory backend: a flat name space as in GCS (the filesystem
	// backend cannot hold both "a" and "a/b").
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-external-url", s.Endpoint, "-public-host", host, "-log-level", "warn")
	if err := s.start("fake-gcs-server", cmd, host, 30*time.Second); err != nil {
		return nil, err
	}
	return s, nil
}

// Env cuts the test off from every source of Google credentials and
// settings (Application Default Credentials, the gcloud configuration,
// the metadata server, STORAGE_EMULATOR_HOST): locations of this server
// name it with their endpoint option (Location).
func (s *GCSServer) Env(t testing.TB) {
	t.Helper()
	setEnv(t, map[string]string{
		"GOOGLE_APPLICATION_CREDENTIALS": filepath.Join(s.Dir, "no-google-credentials.json"),
		"CLOUDSDK_CONFIG":                filepath.Join(s.Dir, "no-gcloud-config"),
		"GCE_METADATA_HOST":              "",
		"STORAGE_EMULATOR_HOST":          "",
		"STORAGE_EMULATOR_HOST_GRPC":     "",
	})
}

// CreateBucket creates a bucket with a fresh name starting with prefix and
// returns its name.
func (s *GCSServer) CreateBucket(t testing.TB, prefix string) string {
	t.Helper()
	name := freshName(prefix)
	body, _ := json.Marshal(map[string]string{"name": name})
	resp, err := http.Post(s.Endpoint+"/storage/v1/b?project=runferry-test", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("testenv: creating bucket %s: %v", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("testenv: creating bucket %s: %s: %s", name, resp.Status, msg)
	}
	return name
}

// Location returns the archive location of prefix in bucket on this
// server: gs://BUCKET/PREFIX?endpoint=http://127.0.0.1:PORT.
func (s *GCSServer) Location(bucket, prefix string) string {
	return "gs://" + bucket + "/" + strings.Trim(prefix, "/") + "?" + url.Values{"endpoint": {s.Endpoint}}.Encode()
}
