package wandbapi_test

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
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
// server no faster than 20 a second: the pacer lets the first go at once
// and each next 50 ms after the one before, so the last cannot arrive
// before 11 x 50 ms from the moment they were sent. Only a lower bound is
// asserted (a loaded machine delays requests, never hastens them; the
// spacing of arrivals is not, since a delayed request bunches up with the
// next). Without the cap the same queries are not paced (logged: how fast
// they arrive is the machine's business).
func TestRateCap(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	send := func() error { _, err := c.Viewer(context.Background()); return err }
	free := viewers(t, srv.Before, send, 12, 6)
	t.Logf("uncapped: 12 queries arrived within %v", free[len(free)-1].Sub(free[0]))
	c.SetRate(20)
	start := time.Now()
	capped := viewers(t, srv.Before, send, 12, 6)
	if span := capped[len(capped)-1].Sub(start); span < 550*time.Millisecond {
		t.Fatalf("12 queries at 20/s all arrived within %v of being sent, want >= 550ms", span)
	}
}

// TestRateLimitHeaders: a server whose rate limit (10/s, a bucket of 10)
// is used up says RateLimit-Remaining 0; the client then waits its
// RateLimit-Reset before sending more, so that 25 queries in a row meet no
// 429 at all, and the wait hook is told why it waits.
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
	got := viewers(t, srv.Before, func() error { _, err := c.Viewer(context.Background()); return err }, 25, 1)
	d := time.Since(start)
	if len(got) != 25 || d < 1500*time.Millisecond || srv.Limited.Load() != 0 {
		t.Fatalf("%d requests in %v, %d met a 429", len(got), d, srv.Limited.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	if joined := strings.Join(reasons, "\n"); !strings.Contains(joined, "RateLimit-Remaining 0") {
		t.Errorf("wait reasons: %q", joined)
	}
}

// TestRetryAfterHoldsClient: a 429 with Retry-After 1 met by one query
// holds every query of the client for that second, not only the one
// refused, and the wait hook says so.
func TestRetryAfterHoldsClient(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	var reasons []string
	var mu sync.Mutex
	c.SetWaitHook(func(reason string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
	})
	var refused time.Time
	var after []time.Time
	n := 0
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 3 {
			refused = time.Now()
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		if !refused.IsZero() {
			after = append(after, time.Now())
		}
		return false
	})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := c.Viewer(context.Background()); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// Requests already on the wire when the 429 came may arrive just
	// after it (later on a loaded machine); none in the second half of
	// the Retry-After second.
	early := 0
	for _, at := range after {
		if d := at.Sub(refused); d > 400*time.Millisecond && d < 900*time.Millisecond {
			early++
		}
	}
	if len(after) < 15 || early > 0 {
		t.Fatalf("%d requests after the 429, %d of them within its Retry-After", len(after), early)
	}
	if joined := strings.Join(reasons, "\n"); !strings.Contains(joined, "429 Too Many Requests, Retry-After 1") {
		t.Errorf("wait reasons: %q", joined)
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

// TestDownloadsNotHeldByAPILimits: a pause the API asked for (a 429 with
// Retry-After 2) holds queries, not downloads from storage's signed URLs.
func TestDownloadsNotHeldByAPILimits(t *testing.T) {
	srv := server(t)
	wandbtest.ExportFixtures(srv.Data())
	c := client(t, srv.URL, key)
	urls, _, err := c.ParquetHistory(context.Background(), "acme", "runferry-fixtures", "fxa00001")
	if err != nil || len(urls) == 0 {
		t.Fatalf("parquetHistory: %v %v", urls, err)
	}
	var once sync.Once
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		refused := false
		if r.URL.Path == "/graphql" {
			once.Do(func() {
				refused = true
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
			})
		}
		return refused
	})
	queried := make(chan time.Duration)
	start := time.Now()
	go func() {
		c.Viewer(context.Background())
		queried <- time.Since(start)
	}()
	time.Sleep(200 * time.Millisecond)
	t0 := time.Now()
	if _, err := c.Download(context.Background(), urls[0], io.Discard, -1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("a download during the API's pause took %v", d)
	}
	if d := <-queried; d < 1800*time.Millisecond {
		t.Errorf("the query answered after %v, within the Retry-After", d)
	}
}

// TestWaitHookReasons: the wait hook hears every wait and why: a single
// query refused with 429 and Retry-After (the retry's own wait), and the
// backoff before retrying a 502 in the next query, with the adaptive
// limit the 429 halved.
func TestWaitHookReasons(t *testing.T) {
	srv := server(t)
	c := client(t, srv.URL, key)
	var mu sync.Mutex
	var reasons []string
	c.SetWaitHook(func(reason string, d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		reasons = append(reasons, reason)
	})
	n := 0
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		n++
		switch n {
		case 1:
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		case 3:
			w.WriteHeader(http.StatusBadGateway)
			return true
		}
		return false
	})
	for range 2 { // the second query's wait names the limit the first one's 429 halved
		if _, err := c.Viewer(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	joined := strings.Join(reasons, "\n")
	for _, want := range []string{"the server answered 429 Too Many Requests, Retry-After 1",
		"retrying after the server answered 502 Bad Gateway (backoff, retry 1 of 3): Viewer query", "adaptive backoff: 4 of 16 requests at once"} {
		if !strings.Contains(joined, want) {
			t.Errorf("wait reasons lack %q:\n%s", want, joined)
		}
	}
}
