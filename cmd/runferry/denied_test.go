package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// denyingProxy is a fault-injecting proxy in front of an object-store
// emulator that has no access control of its own: while deny is set, a
// request that denied says is an upload of an artifact body (under
// archive/blobs/) gets the 403 the cloud answers a caller without the
// permission, as a bucket's IAM policy changed during a job would give.
type denyingProxy struct {
	URL     *url.URL
	deny    atomic.Bool
	denyAll atomic.Bool // every request, as for credentials with no role on the bucket
}

func newDenyingProxy(t *testing.T, target string, denied func(r *http.Request, body []byte) bool, answer func(w http.ResponseWriter)) *denyingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &denyingProxy{}
	// SetURL also sets the Host header to the target's: fake-gcs-server
	// serves the XML API's downloads by the Host it was told it has.
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.denyAll.Load() {
			answer(w)
			return
		}
		if p.deny.Load() {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if denied(r, body) {
				answer(w)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL, _ = url.Parse(srv.URL)
	return p
}

// TestObjectStoreDeniedHalfway is TestS3DeniedHalfway on Google Cloud
// Storage and Azure, whose emulators check no permissions: a proxy
// answers the artifact bodies' uploads with the cloud's own 403 (GCS's
// JSON error "does not have storage.objects.create access", Azure's
// AuthorizationPermissionMismatch), so the copy, having committed the
// experiments, stops at the first denied write with one line naming the
// operation, the object and the server's words, exit 1; the archive checks
// clean with nothing half-committed, and once writes are allowed again a
// re-run completes it. Before that, every request refused (credentials
// with no role on the bucket) is one line at open, exit 1.
func TestObjectStoreDeniedHalfway(t *testing.T) {
	for _, tc := range []struct {
		name string
		// start starts the emulator and returns the archive's location
		// through the proxy, made by mk.
		start  func(t *testing.T, mk func(target string) *denyingProxy) string
		denied func(r *http.Request, body []byte) bool
		answer func(w http.ResponseWriter)
		want   string // the server's words in the error
		// wantAll is the error when every request is refused.
		wantAll string
	}{
		{"gcs",
			func(t *testing.T, mk func(string) *denyingProxy) string {
				srv := testenv.SharedGCS(t)
				bucket := srv.CreateBucket(t, "deny")
				p := mk(srv.Endpoint)
				return "gs://" + bucket + "/archive?" + url.Values{"endpoint": {p.URL.String()}}.Encode()
			},
			func(r *http.Request, body []byte) bool {
				// Uploads carry the object's name in their metadata part.
				return r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/upload/storage/v1/") &&
					bytes.Contains(body, []byte(`"name":"archive/blobs/`))
			},
			func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/json; charset=UTF-8")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"error":{"code":403,"message":"backup@runferry-test.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).","errors":[{"message":"backup@runferry-test.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object. Permission 'storage.objects.create' denied on resource (or it may not exist).","domain":"global","reason":"forbidden"}]}}`)
			},
			"does not have storage.objects.create access",
			"(or these credentials may not see it)"},
		{"azure",
			func(t *testing.T, mk func(string) *denyingProxy) string {
				srv := testenv.SharedAzurite(t)
				container := srv.CreateContainer(t, "deny")
				p := mk("http://" + srv.Host)
				t.Setenv("AZURE_STORAGE_DOMAIN", p.URL.Host)
				return srv.Location(container, "archive")
			},
			func(r *http.Request, _ []byte) bool {
				return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/archive/blobs/")
			},
			func(w http.ResponseWriter) {
				w.Header().Set("Content-Type", "application/xml")
				w.Header().Set("x-ms-error-code", "AuthorizationPermissionMismatch")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.
RequestId:00000000-0000-0000-0000-000000000000
Time:2026-12-01T00:00:00.0000000Z</Message></Error>`)
			},
			"AuthorizationPermissionMismatch",
			"access denied (403 AuthorizationPermissionMismatch)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *denyingProxy
			loc := tc.start(t, func(target string) *denyingProxy {
				p = newDenyingProxy(t, target, tc.denied, tc.answer)
				return p
			})
			// No access to the bucket at all: one line at open, nothing written.
			p.denyAll.Store(true)
			code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc, "--no-state")
			if lines := strings.Split(strings.TrimSpace(errOut), "\n"); code != 1 || !strings.Contains(lines[len(lines)-1], tc.wantAll) {
				t.Fatalf("copy with every request denied: exit %d, want 1 and a last line containing %q\n%s\n%s", code, tc.wantAll, out, errOut)
			}
			p.denyAll.Store(false)

			p.deny.Store(true)
			code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc, "--no-state")
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if code != 1 || !strings.Contains(last, "access denied") || !strings.Contains(last, tc.want) ||
				!strings.Contains(last, "/archive/blobs/sha256/") || !strings.Contains(last, "writing ") {
				t.Fatalf("copy with body writes denied: exit %d, want 1 and a last line naming the write, the denied object and %q\n%s\n%s", code, tc.want, out, errOut)
			}
			t.Logf("the error: %s", last)
			rerunAfterDenial(t, loc, func() { p.deny.Store(false) })
		})
	}
}

// rerunAfterDenial checks the archive at loc after a copy of fixtures that
// a denied write stopped: the experiments were committed before the first
// denied write, the runs were not (their staged files are not current
// data), and the archive checks clean; then, once allow has given the
// permission back, a re-run completes it: the copy checks against the
// source and the archive checks clean.
func rerunAfterDenial(t *testing.T, loc string, allow func()) {
	t.Helper()
	if code, out, errOut := runCLI(t, "archive", "check", loc); code != 0 || !strings.Contains(out, "0 runs") {
		t.Fatalf("check after the denied copy: exit %d\n%s\n%s", code, out, errOut)
	}
	allow()
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+loc, "--no-state"); code != 0 {
		t.Fatalf("re-run: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", fixtures, "parquet:"+loc); code != 0 {
		t.Fatalf("check against the source: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "archive", "check", loc); code != 0 {
		t.Fatalf("archive check: exit %d\n%s\n%s", code, out, errOut)
	}
}

// badInputCase is a location (with env set for it) that a copy must
// refuse with exit code and a last line containing want.
type badInputCase struct {
	name string
	env  map[string]string
	loc  string
	code int
	want string
}

// runBadInput copies fixtures to each case's location, as a subtest, and
// fails unless it exits with the case's code and a last line containing
// its want, and unless no secret of secrets appears in any output.
func runBadInput(t *testing.T, cases []badInputCase, secrets ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+tc.loc, "--no-state")
			lines := strings.Split(strings.TrimSpace(errOut), "\n")
			last := lines[len(lines)-1]
			if code != tc.code || !strings.Contains(last, tc.want) {
				t.Fatalf("exit %d, want %d and a last line containing %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, out, errOut)
			}
			for _, secret := range secrets {
				if strings.Contains(out+errOut, secret) {
					t.Errorf("a secret was printed:\n%s\n%s", out, errOut)
				}
			}
		})
	}
}
