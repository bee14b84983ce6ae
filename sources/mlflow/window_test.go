package mlflow_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// TestHistoriesReadConcurrently: a run's metric keys are read several at
// once (MLflow answers one key per request), seen by a proxy in front of
// the server that holds each get-history request 100 ms and counts those
// in flight; what is read is what is read without the proxy.
func TestHistoriesReadConcurrently(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix := canonicalPrefix(t, srv.URL)
	target, _ := url.Parse(srv.URL)
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = target.Host // the server allows its own host name only
	}}
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

// TestKeysReported: as a run's metrics are read, the source tells
// (sources.KeyReporter) the keys yielded so far of all the run's keys:
// 0 first, then each key in turn, all of them last, the total being at
// least the keys yielded.
func TestKeysReported(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	prefix := canonicalPrefix(t, srv.URL)
	src := open(t, srv.URL, prefix, false)
	var mu sync.Mutex
	told := map[schema.Ref][][2]int{}
	src.OnKeys(func(run schema.Ref, done, total int) {
		mu.Lock()
		told[run] = append(told[run], [2]int{done, total})
		mu.Unlock()
	})
	ctx := context.Background()
	withKeys := 0
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			keys := map[string]bool{}
			for page, err := range src.Metrics(ctx, r.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page {
					keys[m.Key] = true
				}
			}
			// The total is the keys read, which may hold keys that yield
			// nothing (a series of summary points runferry derived).
			got := told[r.Origin]
			var want [][2]int
			if len(got) > 0 {
				for i := range got[0][1] + 1 {
					want = append(want, [2]int{i, got[0][1]})
				}
			}
			if len(got) == 0 || got[0][1] < len(keys) || !slices.Equal(got, want) {
				t.Errorf("run %s, %d keys yielded: told %v, want 0 to a total of at least the keys, one by one", r.Origin, len(keys), got)
			}
			if len(keys) > 0 {
				withKeys++
			}
		}
	}
	if withKeys == 0 {
		t.Fatal("no run with metric keys read")
	}
}
