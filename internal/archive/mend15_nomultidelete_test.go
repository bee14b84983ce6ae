package archive_test

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
)

// TestS3WithoutMultiDelete: behind a proxy that answers 501 NotImplemented
// to every multi-object delete (POST ?delete), as some S3-compatible
// stores do, writes, a prune and the archive's check still succeed: the
// deletes go one object at a time.
func TestS3WithoutMultiDelete(t *testing.T) {
	s := testenv.SharedS3(t)
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Query().Has("delete") {
			refused.Add(1)
			w.WriteHeader(http.StatusNotImplemented)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NotImplemented</Code><Message>not here</Message></Error>`))
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	bucket := s.CreateBucket(t, "nomulti")
	q := url.Values{"endpoint": {srv.URL}, "path-style": {"true"}}
	loc := "s3://" + bucket + "/a?" + q.Encode()
	want := growArchive(t, loc, 3, 20, 0, 3)
	if _, err := archive.Prune(loc, 1); err != nil {
		t.Fatalf("prune: %v", err)
	}
	if refused.Load() == 0 {
		t.Fatal("no multi-object delete was asked: the test sees nothing")
	}
	if rep, err := archive.Check(loc); err != nil || len(rep.Notes) > 0 {
		t.Fatalf("check: %v %v", err, rep.Notes)
	}
	expectEqual(t, loc, want)
}
