package wandbapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// viewers sends n viewer queries, `at once` at a time, and returns the
// times the server received them.
func viewers(t *testing.T, srvBefore func(func(http.ResponseWriter, *http.Request) bool), send func() error, n, atOnce int) []time.Time {
	t.Helper()
	var mu sync.Mutex
	var got []time.Time
	srvBefore(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		got = append(got, time.Now())
		mu.Unlock()
		return false
	})
	var wg sync.WaitGroup
	sem := make(chan struct{}, atOnce)
	for range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := send(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(got, func(a, b time.Time) int { return a.Compare(b) })
	return got
}

// TestRateCap: with SetRate(20), 12 queries sent 6 at a time reach the
// server at least 50 ms apart (no burst), where without it they arrive
// together.
func TestRateCap(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	send := func() error { _, err := c.Viewer(context.Background()); return err }
	free := viewers(t, srv.Before, send, 12, 6)
	if d := free[len(free)-1].Sub(free[0]); d > 300*time.Millisecond {
		t.Fatalf("uncapped: 12 queries took %v", d)
	}
	c.SetRate(20)
	capped := viewers(t, srv.Before, send, 12, 6)
	for i := 1; i < len(capped); i++ {
		if gap := capped[i].Sub(capped[i-1]); gap < 45*time.Millisecond {
			t.Fatalf("requests %d and %d arrived %v apart, want >= 50ms at 20/s", i-1, i, gap)
		}
	}
}

// TestRateLimitHeaders: a server whose rate limit (10/s, a bucket of 10)
// is used up says RateLimit-Remaining 0; the client then waits its
// RateLimit-Reset before sending more, whichever goroutine sends, so that
// 25 queries sent 8 at a time meet few 429s, and the wait hook is told why
// it waits. Retry-After of a 429 is told likewise.
func TestRateLimitHeaders(t *testing.T) {
	srv := server(t)
	srv.SetLimit(10, 0)
	c := client(t, srv.URL, key)
	var mu sync.Mutex
	var reasons []string
	c.SetWaitHook(func(reason string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
	})
	start := time.Now()
	got := viewers(t, srv.Before, func() error { _, err := c.Viewer(context.Background()); return err }, 25, 8)
	d := time.Since(start)
	if len(got) < 25 || d < 1500*time.Millisecond {
		t.Fatalf("%d requests in %v: the limit was not waited for", len(got), d)
	}
	// 8 queries in flight when the bucket runs dry may each meet a 429
	// once; without the pause every request after the 10th would.
	if n := srv.Limited.Load(); n > 8 {
		t.Errorf("%d requests met a 429", n)
	}
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(reasons, "\n")
	if !strings.Contains(joined, "RateLimit-Remaining 0") {
		t.Errorf("wait reasons: %q", joined)
	}
	if srv.Limited.Load() > 0 && !strings.Contains(joined, "429 Too Many Requests, Retry-After 1") {
		t.Errorf("wait reasons after %d 429s: %q", srv.Limited.Load(), joined)
	}
}

// TestInFlightHalvedBy429: a query that met a 429 halves the client's
// in-flight limit (the engine's adaptive controller).
func TestInFlightHalvedBy429(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	before := c.InFlightLimit()
	n := 0
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		n++
		if n == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	if _, err := c.Viewer(context.Background()); err != nil {
		t.Fatal(err)
	}
	if after := c.InFlightLimit(); before < 2 || after != before/2 {
		t.Fatalf("in-flight limit %d, then %d after a 429", before, after)
	}
}
