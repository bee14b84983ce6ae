package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
	Dir      string // its log
	svc      *service
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
	dir, err := os.MkdirTemp("", "runferry-gcs-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	s := &GCSServer{Endpoint: "http://" + host, Dir: dir}
	// The memory backend: a flat name space as in GCS (the filesystem
	// backend cannot hold both "a" and "a/b").
	cmd := exec.Command(bin, "-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(port),
		"-backend", "memory", "-external-url", s.Endpoint, "-public-host", host, "-log-level", "warn")
	s.svc, err = startService("fake-gcs-server", cmd, filepath.Join(dir, "fake-gcs-server.log"), syscall.SIGKILL,
		func(pgid int) string {
			// Also remove its folder, which Stop removes when the binary ends normally.
			return fmt.Sprintf("kill -KILL -%d; rm -rf '%s'", pgid, dir)
		})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", host, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if !s.svc.running() || time.Now().After(deadline) {
			log := s.svc.logTail(20)
			s.Stop()
			return nil, fmt.Errorf("fake-gcs-server did not start: %s", log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s, nil
}

// Env cuts the test off from every source of Google credentials and
// settings (Application Default Credentials, the gcloud configuration,
// the metadata server, STORAGE_EMULATOR_HOST): locations of this server
// name it with their endpoint option (Location).
func (s *GCSServer) Env(t testing.TB) {
	t.Helper()
	for k, v := range map[string]string{
		"GOOGLE_APPLICATION_CREDENTIALS": filepath.Join(s.Dir, "no-google-credentials.json"),
		"CLOUDSDK_CONFIG":                filepath.Join(s.Dir, "no-gcloud-config"),
		"GCE_METADATA_HOST":              "",
		"STORAGE_EMULATOR_HOST":          "",
		"STORAGE_EMULATOR_HOST_GRPC":     "",
	} {
		t.Setenv(k, v)
	}
}

// CreateBucket creates a bucket with a fresh name starting with prefix and
// returns its name.
func (s *GCSServer) CreateBucket(t testing.TB, prefix string) string {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	name := strings.ToLower(prefix) + "-" + hex.EncodeToString(b[:])
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

// PID returns the server's process id, also its process group's.
func (s *GCSServer) PID() int { return s.svc.cmd.Process.Pid }

// LogTail returns the last n lines of the server's log.
func (s *GCSServer) LogTail(n int) string { return s.svc.logTail(n) }

// Stop stops the server and removes its folder.
func (s *GCSServer) Stop() {
	if s.svc != nil {
		s.svc.stopGroup(3 * time.Second)
	}
	os.RemoveAll(s.Dir)
}
