package archive

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"
)

// LockWaiting describes a wait for a lock object in object storage that
// another holder keeps (see LockTTL), as told to the function set with
// OnLockWaiting.
type LockWaiting struct {
	Lock    string        // the lock object's location, e.g. s3://BUCKET/PREFIX/.commit.lock
	Holder  string        // what the lock object says of its holder: "pid 945 on host h1"
	Renewed time.Duration // how long ago the holder last renewed it
	Expires time.Duration // how long until it is broken as a dead writer's, unless renewed
	Waited  time.Duration // how long this writer has waited so far
}

func (w LockWaiting) String() string {
	return fmt.Sprintf("waiting for the lock %s, held by %s (renewed %s ago; a lock not renewed for %s is a killed writer's and is broken then: in %s at most)",
		w.Lock, w.Holder, w.Renewed.Round(time.Second), LockTTL, w.Expires.Round(time.Second))
}

// LockWaitEvery is how often a writer waiting for a lock object tells the
// function set with OnLockWaiting; the first time is after one second,
// so that the brief waits of writers sharing an archive stay quiet.
var LockWaitEvery = 5 * time.Second

var lockWaiting atomic.Pointer[func(LockWaiting)]

// OnLockWaiting sets the function told, while a writer of an archive in
// object storage waits for a lock another holder keeps (a killed writer's
// lock blocks others for up to LockTTL), who holds it and when it expires;
// nil tells nobody. It holds for every archive the process opens.
func OnLockWaiting(f func(LockWaiting)) {
	if f == nil {
		lockWaiting.Store(nil)
		return
	}
	lockWaiting.Store(&f)
}

// tellWaiting tells the OnLockWaiting function, if any, about l's holder
// when the wait that began at start is due to be told (next), and returns
// when it is due next.
func (l *blobLock) tellWaiting(start, next time.Time) time.Time {
	now := time.Now()
	if now.Before(next) {
		return next
	}
	f := lockWaiting.Load()
	if f == nil {
		return now.Add(LockWaitEvery)
	}
	if w, ok := l.holder(); ok {
		w.Waited = now.Sub(start)
		(*f)(w)
	}
	return now.Add(LockWaitEvery)
}

// holder describes the lock object that keeps l from being taken: NAME,
// else the first shared holder's object that is not l's own.
func (l *blobLock) holder() (LockWaiting, bool) {
	paths := []string{l.name}
	l.s.Walk(l.name+".shared", func(p string, _ int64) error {
		if p != l.sharedPath() {
			paths = append(paths, p)
		}
		return nil
	})
	for _, p := range paths {
		if p == l.name && l.exclusive {
			continue
		}
		fi, err := l.s.Stat(p)
		if err != nil {
			continue
		}
		var b lockBody
		who := "another writer"
		if data, err := l.s.ReadFile(p); err == nil && json.Unmarshal(data, &b) == nil && b.PID != 0 {
			who = fmt.Sprintf("pid %d on host %s", b.PID, b.Host)
		}
		age := time.Since(fi.ModTime)
		return LockWaiting{Lock: l.s.Name(p), Holder: who, Renewed: age, Expires: max(LockTTL-age, 0)}, true
	}
	return LockWaiting{}, false
}
