package archive_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// TestS3EncryptionAndStorageClass: with sse=aws:kms, kms-key-id and
// storage-class in the location, every request that makes an object (a
// PUT, a server-side copy out of .staging/, the start of a multipart
// upload) asks for that encryption with that key and that storage class,
// as a proxy in front of the S3 server records; the archive reads back.
// versitygw stores no encryption (it has no KMS): what the test proves is
// what runferry asks of the server, the part AWS then honours.
func TestS3EncryptionAndStorageClass(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := s.CreateBucket(t, "sse")
	target, _ := url.Parse(s.Endpoint)
	var mu sync.Mutex
	var made []string                                // "METHOD path?query sse=... key=... class=..."
	rp := httputil.NewSingleHostReverseProxy(target) // the Host header stays the signed one
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		creates := (r.Method == http.MethodPut && !r.URL.Query().Has("partNumber") && !r.URL.Query().Has("retention")) ||
			(r.Method == http.MethodPost && r.URL.Query().Has("uploads"))
		if creates {
			mu.Lock()
			made = append(made, fmt.Sprintf("%s %s sse=%s key=%s class=%s", r.Method, r.URL.Path,
				r.Header.Get("X-Amz-Server-Side-Encryption"), r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"), r.Header.Get("X-Amz-Storage-Class")))
			mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	const key = "arn:aws:kms:us-east-1:111122223333:key/runferry-test"
	q := url.Values{"endpoint": {proxy.URL}, "path-style": {"true"}, "sse": {"aws:kms"}, "kms-key-id": {key}, "storage-class": {"STANDARD_IA"}}
	loc := "s3://" + bucket + "/a?" + q.Encode()
	d := dataset.Canonical()
	write(t, loc, d)
	// A streamed object (a multipart upload) and a move of it.
	st, err := archive.OpenStore(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	w, err := st.Create(".staging/big")
	if err != nil {
		t.Fatal(err)
	}
	// 17 MiB: past the SDK transfer manager's 16 MiB single-PUT threshold.
	if _, err := w.Write(bytes.Repeat([]byte("0123456789abcdef"), 17<<16)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := st.Move(".staging/big", "blobs/big"); err != nil {
		t.Fatal(err)
	}
	expectEqual(t, loc, d)

	mu.Lock()
	defer mu.Unlock()
	var copies, multipart, tables int
	want := fmt.Sprintf("sse=aws:kms key=%s class=STANDARD_IA", key)
	for _, m := range made {
		if !strings.HasSuffix(m, want) {
			t.Errorf("%s; want %s", m, want)
		}
		switch {
		case strings.HasPrefix(m, "POST "):
			multipart++
		case strings.Contains(m, "/a/metrics/"):
			tables++
		}
		if strings.Contains(m, "/a/blobs/big ") {
			copies++
		}
	}
	if multipart == 0 || copies == 0 || tables == 0 {
		t.Errorf("recorded %d multipart starts, %d copies to blobs/big, %d metrics objects; want each:\n%s", multipart, copies, tables, strings.Join(made, "\n"))
	}
}

// TestS3Profile: profile=NAME takes the credentials of that profile of the
// shared config and credentials files (AWS_CONFIG_FILE,
// AWS_SHARED_CREDENTIALS_FILE) when no key is in the environment; a
// profile that is not there is one line naming it, before anything is
// written.
func TestS3Profile(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := s.CreateBucket(t, "profile")
	dir := t.TempDir()
	cfg, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	if err := os.WriteFile(cfg, []byte("[profile backup]\nregion = "+s.Region+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(creds, []byte("[backup]\naws_access_key_id = "+s.AccessKey+"\naws_secret_access_key = "+s.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	loc := s.Location(bucket, "a")
	d := dataset.Canonical()
	write(t, loc+"&profile=backup", d)
	expectEqual(t, loc+"&profile=backup", d)
	_, err := archive.OpenStore(loc + "&profile=nosuch")
	if err == nil || !strings.Contains(err.Error(), "nosuch") || strings.Contains(err.Error(), "\n") || strings.Contains(err.Error(), s.SecretKey) {
		t.Fatalf("profile=nosuch: %v; want one line naming the profile", err)
	}
	t.Logf("the error: %v", err)
}
