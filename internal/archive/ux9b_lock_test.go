package archive_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
)

// countingProxy passes every request on to the S3 server at endpoint
// unchanged (the signature covers the Host header, which it keeps) and
// counts those whose path or query names a lock object.
type countingProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	n   map[string]int // method -> requests naming a lock object
}

func newCountingProxy(t *testing.T, endpoint string) *countingProxy {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{n: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if q, _ := url.QueryUnescape(r.URL.RawQuery); strings.Contains(r.URL.Path+"?"+q, ".lock") {
			p.mu.Lock()
			p.n[r.Method]++
			p.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.n)
}

func (p *countingProxy) counts() (int, map[string]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	total, by := 0, map[string]int{}
	for k, v := range p.n {
		total += v
		by[k] = v
	}
	return total, by
}

// TestStaleLockWaitIsCheap: a writer opening an archive in S3 whose commit
// lock a killed writer left behind waits until the lock expires, trying
// again with pauses that double towards the expiry instead of every
// 20-100 ms, so the wait costs a few requests to the lock objects (it cost
// about 2 a try, 30 tries a second: hundreds here, thousands over the
// 2 minutes of LockTTL); and it still opens soon after the lock expired.
// The same for a writer waiting for the archive's lock held alone by a
// killed writer (recovering), until it gives up after LockWait.
func TestStaleLockWaitIsCheap(t *testing.T) {
	s := testenv.SharedS3(t)
	proxy := newCountingProxy(t, s.Endpoint)
	bucket := s.CreateBucket(t, "stalelock")
	loc := strings.Replace(s.Location(bucket, "a"), url.QueryEscape(s.Endpoint), url.QueryEscape(proxy.srv.URL), 1)
	if !strings.Contains(loc, url.QueryEscape(proxy.srv.URL)) {
		t.Fatalf("location %s does not go through the proxy", loc)
	}
	defer func(ttl, wait time.Duration) { archive.LockTTL, archive.LockWait = ttl, wait }(archive.LockTTL, archive.LockWait)
	archive.LockTTL, archive.LockWait = 8*time.Second, 6*time.Second
	archive.OnLockWaiting(func(archive.LockWaiting) {}) // as the CLI does: telling costs requests too
	defer archive.OnLockWaiting(nil)

	// An archive, so that opening it needs no recovery.
	w, err := archive.OpenWriter(loc)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	dead := []byte(`{"holder":"0123456789abcdef","host":"gone-host","pid":4242}`)
	leave := func(name string) time.Time {
		st, err := archive.OpenStore(loc)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.CreateExclusive(name, dead); err != nil {
			t.Fatal(err)
		}
		fi, err := st.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		return fi.ModTime.Add(archive.LockTTL) // when the lock counts as a killed writer's
	}

	t.Run("commit lock", func(t *testing.T) {
		expires := leave(".commit.lock")
		proxy.reset()
		w, err := archive.OpenWriter(loc)
		end := time.Now()
		if err != nil {
			t.Fatalf("open after the dead writer's lock expired: %v", err)
		}
		n, by := proxy.counts()
		w.Close()
		late := end.Sub(expires)
		t.Logf("opened %s after the lock expired, with %d requests to lock objects (%v)", late.Round(time.Millisecond), n, by)
		if late < 0 {
			t.Errorf("opened %s before the dead writer's lock expired", -late)
		}
		if late > 1500*time.Millisecond {
			t.Errorf("opened %s after the dead writer's lock expired; want soon after", late)
		}
		// 8 s of waiting: about 12 tries of 2 requests (20 ms doubling to
		// 4 s, the last one cut to the expiry), one telling (list, stat,
		// get), and opening (the archive's lock taken and shared, the
		// commit lock taken and dropped): 45 seen; 246 before, polling
		// every 20-100 ms.
		if n > 60 {
			t.Errorf("%d requests to lock objects while waiting %s for a dead writer's lock (%v); want at most 60", n, archive.LockTTL, by)
		}
	})

	t.Run("archive lock held alone", func(t *testing.T) {
		leave(".lock")
		proxy.reset()
		start := time.Now()
		_, err := archive.OpenWriter(loc)
		waited := time.Since(start)
		n, by := proxy.counts()
		t.Logf("gave up after %s with %d requests to lock objects (%v): %v", waited.Round(time.Millisecond), n, by, err)
		if !errors.Is(err, archive.ErrLocked) {
			t.Fatalf("open while a dead writer holds the archive alone: %v, want ErrLocked", err)
		}
		if waited < archive.LockWait || waited > archive.LockWait+2*time.Second {
			t.Errorf("gave up after %s; want LockWait (%s)", waited, archive.LockWait)
		}
		// 6 s: about 12 tries of 3 or 4 requests (20 ms doubling to 1 s):
		// 50 seen; 790 before, polling every 20 ms.
		if n > 70 {
			t.Errorf("%d requests to lock objects while waiting %s (%v); want at most 70", n, archive.LockWait, by)
		}
	})
}
