package mlflow_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// faultProxy is a reverse proxy in front of a real server that answers a
// share of requests with a fault instead of (or after) forwarding them.
type faultProxy struct {
	target *url.URL
	every  int // every n-th request (on average) gets a fault

	mu     sync.Mutex
	rng    *rand.Rand
	n      int
	counts map[string]int
}

// pick returns the fault for the next request, or "": one request in
// every, at a random place in each window, cycling through the kinds.
func (p *faultProxy) pick() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if p.rng.IntN(p.every) != 0 {
		return ""
	}
	kinds := []string{"429", "503", "reset-before", "reset-after", "slow"}
	var total int
	for _, c := range p.counts {
		total += c
	}
	k := kinds[total%len(kinds)]
	p.counts[k]++
	return k
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(p.target) }}
	switch p.pick() {
	case "429":
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"slow down"}`, http.StatusTooManyRequests)
	case "503":
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	case "reset-before":
		reset(w)
	case "reset-after": // the server applies the request, the client never hears
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		reset(w)
	case "slow":
		time.Sleep(300 * time.Millisecond)
		rp.ServeHTTP(w, r)
	default:
		rp.ServeHTTP(w, r)
	}
}

// reset closes the client's connection with a TCP reset.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// TestFaultInjection copies the canonical dataset through a proxy that
// faults a quarter of all requests (429 with Retry-After, 503, connection
// resets before and after the server saw the request, slow answers): the
// copy completes and the server holds every run once, point for point.
func TestFaultInjection(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	target, _ := url.Parse(srv.URL)
	proxy := &faultProxy{target: target, every: 4, rng: testenv.Rand(t), counts: map[string]int{}}
	ps := httptest.NewServer(proxy)
	defer ps.Close()

	prefix := fmt.Sprintf("fault-%d/", testenv.FreePort(t))
	api := mlflowapi.Config{BaseURL: ps.URL, RetryWaitMin: 20 * time.Millisecond, RetryWaitMax: time.Second}
	dst, err := mlflow.New(mlflow.Config{API: api, ExperimentPrefix: prefix, MaxInFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	want := dataset.Canonical()
	rep, err := transfer.Copy(context.Background(), memsrc.New(want), dst, transfer.Options{
		Attempts: 20, Backoff: func(int) time.Duration { return 50 * time.Millisecond }})
	if err != nil || rep.Totals.Committed != len(want.Runs) {
		t.Fatalf("copy through faults: err %v, totals %+v, runs %+v", err, rep.Totals, rep.Runs)
	}
	retries := 0
	for _, r := range rep.Runs {
		retries += r.Attempts - 1
	}
	t.Logf("faults injected: %v in %d requests; run retries: %d", proxy.counts, proxy.n, retries)
	if len(proxy.counts) < 5 {
		t.Errorf("not every kind of fault was injected: %v", proxy.counts)
	}
	// Read back directly from the server, not through the proxy.
	_, read, _ := pairWithPrefix(t, srv.URL, prefix)
	got, err := dataset.Read(context.Background(), read())
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("after faults the server differs:\n%s", strings.Join(diff, "\n"))
	}
	res, err := check.Run(context.Background(), memsrc.New(want), read(), check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check: %v %v", err, res.Differences)
	}
}
