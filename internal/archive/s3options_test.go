package archive_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
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
