package archive_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
)

// TestLockWaitIsTold: a writer opening an archive in S3 whose commit lock
// a killed writer left behind waits until the lock expires (LockTTL), and
// while it waits it tells who holds the lock and when it expires
// (OnLockWaiting), instead of hanging without a word; then it opens.
func TestLockWaitIsTold(t *testing.T) {
	s := testenv.SharedS3(t)
	loc := s.Location(s.CreateBucket(t, "lockwait"), "a")
	defer func(ttl, every time.Duration) { archive.LockTTL, archive.LockWaitEvery = ttl, every }(archive.LockTTL, archive.LockWaitEvery)
	archive.LockTTL, archive.LockWaitEvery = 4*time.Second, 500*time.Millisecond

	st, err := archive.OpenStore(loc)
	if err != nil {
		t.Fatal(err)
	}
	// The lock object a writer killed inside a commit leaves.
	if err := st.CreateExclusive(".commit.lock", []byte(`{"holder":"0123456789abcdef","host":"gone-host","pid":4242}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var mu sync.Mutex
	var told []archive.LockWaiting
	archive.OnLockWaiting(func(w archive.LockWaiting) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, w)
	})
	defer archive.OnLockWaiting(nil)
	start := time.Now()
	w, err := archive.OpenWriter(loc)
	if err != nil {
		t.Fatalf("open after the dead writer's lock expired: %v", err)
	}
	w.Close()
	waited := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	if len(told) == 0 {
		t.Fatalf("waited %s for the dead writer's lock without telling", waited)
	}
	first := told[0]
	if !strings.HasSuffix(first.Lock, "/a/.commit.lock") || !strings.HasPrefix(first.Lock, "s3://") || first.Holder != "pid 4242 on host gone-host" ||
		first.Expires <= 0 || first.Expires > archive.LockTTL || first.Waited < time.Second {
		t.Errorf("told %+v", first)
	}
	if msg := first.String(); !strings.Contains(msg, "waiting for the lock s3://") || !strings.Contains(msg, "pid 4242 on host gone-host") {
		t.Errorf("message %q", msg)
	}
	t.Logf("waited %s, told %d times; first: %s", waited, len(told), first)
}
