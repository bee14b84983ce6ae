package mlflow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/testenv"
)

// TestHistoriesReadConcurrently: a run's metric keys are read several at
// once (MLflow answers one key per request), seen by a proxy in front of
// the server that holds each get-history request 100 ms and counts those
// in flight; what is read is what is read without the proxy.
func TestHistoriesReadConcurrently(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix := canonicalPrefix(t, srv.URL)
	target, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) { direct(r); r.Host = target.Host } // the server allows its own host name only
	var mu sync.Mutex
	inFlight, most := 0, 0
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.Path, "metrics/get-history") {
			proxy.ServeHTTP(w, r)
			return
		}
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(100 * time.Millisecond) // a slow server: requests sent at once overlap
		proxy.ServeHTTP(w, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer front.Close()
	// What is read through the proxy is what is read without it.
	res, err := check.Run(context.Background(), open(t, srv.URL, prefix, false), open(t, front.URL, prefix, false), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check direct vs through the proxy: %v\n%v", err, res.Differences)
	}
	if most < 2 {
		t.Errorf("at most %d get-history requests in flight: keys are read one by one", most)
	}
}
