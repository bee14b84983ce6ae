package archive_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

// s3Request is one request an archive writer sent to the S3 server.
type s3Request struct {
	op     string // HEAD, GET, PUT, COPY, DELETE, DELETE-MANY, LIST, ...
	key    string // the object's key under the bucket ("" for a LIST)
	src    string // a COPY's source key
	prefix string // a LIST's prefix
	probe  bool   // a LIST of one key, anywhere: an open's check that the bucket is there
	status int
}

// maxRequests bounds the requests of TestS3CommitRequests' copy.
const maxRequests = 140

// s3RequestLog passes every request to the real S3 server s unchanged
// (path-style addressing, so the signed Host header stays valid) and
// records it; it returns the location of prefix in bucket through it and
// the log.
func s3RequestLog(t *testing.T, s *testenv.S3Server, bucket, prefix string) (string, func() []s3Request) {
	t.Helper()
	target, err := url.Parse(s.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []s3Request
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // signed (SigV4)
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		op := r.Method
		switch {
		case r.Method == http.MethodGet && q.Has("list-type"):
			op = "LIST"
		case r.Method == http.MethodPost && q.Has("delete"):
			op = "DELETE-MANY"
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") != "":
			op = "COPY"
		}
		key := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/"+bucket), "/")
		src, _ := url.PathUnescape(r.Header.Get("X-Amz-Copy-Source"))
		src = strings.TrimPrefix(strings.TrimPrefix(src, "/"), bucket+"/")
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		proxy.ServeHTTP(rec, r)
		mu.Lock()
		log = append(log, s3Request{op: op, key: key, src: src, prefix: q.Get("prefix"),
			probe: q.Get("max-keys") == "1" && !q.Has("prefix"), status: rec.status})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	loc := strings.Replace(s.Location(bucket, prefix), url.QueryEscape(s.Endpoint), url.QueryEscape(srv.URL), 1)
	return loc, func() []s3Request {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(log)
	}
}

// statusRecorder keeps the status of the answer it passes on.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(s int) { r.status = s; r.ResponseWriter.WriteHeader(s) }

// counts returns how many requests of each operation log holds.
func counts(log []s3Request) map[string]int {
	n := map[string]int{}
	for _, r := range log {
		n[r.op]++
	}
	return n
}

// TestS3CommitRequests counts the requests a copy of the canonical data
// set into a new archive in a bucket sends (a logging proxy in front of the
// real S3 server) and holds them to what the commit protocol needs
// (docs/BENCHMARKS.md, session 15): no HEAD before a delete (S3 deletes a
// missing key without complaint), no GET of an object a HEAD found
// missing, no HEAD of a newly staged file before it moves in, no listing
// of the commit lock's shared holders (it has none), one open of the
// store (each proves the bucket there with a request), and fewer requests
// in all than before. The archive reads back whole.
func TestS3CommitRequests(t *testing.T) {
	s := testenv.SharedS3(t)
	bucket := s.CreateBucket(t, "requests")
	loc, log := s3RequestLog(t, s, bucket, "a")
	d := dataset.Canonical()
	write(t, loc, d)
	reqs := log()
	t.Logf("%d requests: %v", len(reqs), counts(reqs))
	var problems []string
	last := map[string]s3Request{} // the latest request on each key
	lockLists, opens := 0, 0
	for _, r := range reqs {
		prev := last[r.key]
		switch {
		case r.op == "DELETE" && prev.op == "HEAD":
			// S3 deletes a missing key without complaint.
			problems = append(problems, "HEAD, then DELETE "+r.key)
		case r.op == "GET" && prev.op == "HEAD" && prev.status == http.StatusNotFound:
			problems = append(problems, "HEAD answered 404, then GET "+r.key)
		case r.op == "COPY" && last[r.src].op == "HEAD" && strings.Contains(r.src, "/.staging/"):
			// A new file is staged: nothing to ask before moving it in.
			problems = append(problems, "HEAD, then COPY from "+r.src)
		case r.probe:
			opens++
		case r.op == "LIST" && strings.Contains(r.prefix, ".commit.lock.shared/"):
			lockLists++ // the commit lock is never taken shared
		}
		last[r.key] = r
		if r.src != "" {
			last[r.src] = s3Request{op: "COPY"}
		}
	}
	if opens > 1 {
		// The sink reads the state and writes through one store.
		problems = append(problems, fmt.Sprintf("the store opened %d times", opens))
	}
	if lockLists > 0 {
		problems = append(problems, fmt.Sprintf("%d LISTs of .commit.lock.shared/", lockLists))
	}
	// Before session 15 this copy sent 226 requests (HEAD 78, LIST 39,
	// DELETE 41, GET 2); after it 133; the bound leaves room for a few more, not for a return
	// of the ones above.
	if len(reqs) > maxRequests {
		problems = append(problems, fmt.Sprintf("%d requests in all, want at most %d", len(reqs), maxRequests))
	}
	if len(problems) > 0 {
		t.Errorf("%d needless requests:\n%s", len(problems), strings.Join(problems, "\n"))
	}
	expectEqual(t, loc, d)
}
