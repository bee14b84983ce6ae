// Package inflight adapts how many write requests are sent to a server at
// once, to the number that gives the most throughput.
//
// A tracking server's best concurrency is unknown to the client: a SQLite
// store serialises writers, so every request beyond the first only queues
// (and lock contention makes the server slower), while a server with
// several workers and a PostgreSQL store gets faster up to its worker
// count. The Limiter finds out by measuring. Over windows of at least
// MinWindowTime of busy time (time with at least one request in flight:
// the time callers had nothing to send, reading the source or starting a
// run, is not counted, as no limit changes it) it measures the work
// (metric points) completed per busy second, then climbs: it tries one
// request more and keeps it only when throughput rises by more than Gain;
// it tries one fewer and keeps it when throughput stays within Tolerance
// (fewer requests in flight load the server less for the same rate).
// Between probes it holds, for longer after probes that failed. An
// overloaded answer (429 or 503) halves the limit at once.
//
// Gain is large because request timings on a busy server are noisy: a
// server that really gains from one more request gains much more than 15%
// at small limits (about 100% from one to two requests on a server with
// two workers), while a serialising server gains nothing and a noisy window
// should not make the limit drift upwards.
//
// The Limiter never lets more than its current limit through, and it never
// goes below Min or above Max.
package inflight

import (
	"context"
	"sync"
	"time"
)

// Tuning of the climb. Exported so that the documentation can state it.
const (
	// Gain is the throughput rise a probe with one more request in flight
	// must show to be kept.
	Gain = 0.15
	// Tolerance is the throughput loss a probe with one request fewer may
	// show and still be kept.
	Tolerance = 0.03
	// MinWindow is the fewest completions a measurement window counts.
	MinWindow = 8
	// MinWindowTime is the least busy time a measurement window spans.
	MinWindowTime = 3 * time.Second
	// holdWindows is how many windows the limit is held after a probe,
	// doubling after each failed probe up to maxHoldWindows.
	holdWindows    = 3
	maxHoldWindows = 24
)

// Limiter bounds and adapts the requests in flight. It is safe for
// concurrent use.
type Limiter struct {
	min, max int
	now      func() time.Time

	mu       sync.Mutex
	inflight int
	last     time.Time       // when inflight last changed
	waiters  []chan struct{} // FIFO; a closed channel is a granted slot
	c        climb
}

// New returns a Limiter starting at initial requests in flight, adapting
// within [lo, hi]. Values out of order are clamped: lo >= 1, hi >= lo.
func New(lo, hi, initial int) *Limiter {
	lo = max(lo, 1)
	hi = max(hi, lo)
	initial = min(max(initial, lo), hi)
	l := &Limiter{min: lo, max: hi, now: time.Now}
	// The first window is held without a probe: it includes the start of the work.
	l.c = climb{limit: initial, phase: holding, holds: 2, hold: holdWindows, rates: map[int]float64{}}
	return l
}

// Limit returns the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.limit
}

// Ticket is one granted request slot.
type Ticket struct {
	l     *Limiter
	epoch int // the limit's epoch when granted
	done  bool
}

// Acquire waits for a slot. It returns ctx's error, holding nothing, when
// ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (*Ticket, error) {
	l.mu.Lock()
	if len(l.waiters) == 0 && l.inflight < l.c.limit {
		l.add(1)
		defer l.mu.Unlock()
		return &Ticket{l: l, epoch: l.c.epoch}, nil
	}
	ch := make(chan struct{})
	l.waiters = append(l.waiters, ch)
	l.mu.Unlock()
	select {
	case <-ch:
		l.mu.Lock()
		defer l.mu.Unlock()
		return &Ticket{l: l, epoch: l.c.epoch}, nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-ch: // granted meanwhile: hand the slot on
			l.add(-1)
			l.grant()
		default:
			for i, w := range l.waiters {
				if w == ch {
					l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
					break
				}
			}
		}
		return nil, ctx.Err()
	}
}

// add changes the requests in flight by d, counting the busy time since
// the last change. l.mu is held.
func (l *Limiter) add(d int) {
	now := l.now()
	if l.inflight > 0 {
		l.c.busy(now.Sub(l.last))
	}
	l.inflight += d
	l.last = now
}

// Done releases the slot and reports what the request achieved: work is
// the units it completed (0 for a failed request), overloaded whether the
// server answered 429 or 503 at any attempt. Calls after the first do
// nothing.
func (t *Ticket) Done(work int, overloaded bool) {
	if t == nil || t.done {
		return
	}
	t.done = true
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(-1)
	l.c.observe(t.epoch, work, overloaded, l.inflight, l.min, l.max)
	l.grant()
}

// grant hands free slots to waiters in order. l.mu is held.
func (l *Limiter) grant() {
	for len(l.waiters) > 0 && l.inflight < l.c.limit {
		ch := l.waiters[0]
		l.waiters = l.waiters[1:]
		l.add(1)
		close(ch)
	}
}

type phase int

const (
	holding phase = iota
	probingUp
	probingDown
)

// climb is the limit's state machine, fed one completion at a time.
type climb struct {
	limit int
	epoch int // counts limit changes
	phase phase
	base  int // the limit a probe is compared against
	holds int // windows left to hold
	hold  int // windows to hold after the next probe
	down  bool
	rates map[int]float64 // last measured work per busy second by limit

	stale int           // requests of earlier epochs still in flight
	n     int           // completions in the window
	work  float64       // their work
	time  time.Duration // the window's busy time
}

// busy adds busy time to the window, once the requests sent under an
// earlier limit have completed.
func (c *climb) busy(d time.Duration) {
	if c.stale == 0 {
		c.time += d
	}
}

// observe accounts one completion of a request granted at epoch, which
// completed work; inflight requests remain in flight.
func (c *climb) observe(epoch, work int, overloaded bool, inflight, lo, hi int) {
	if overloaded {
		c.set(max(lo, c.limit/2), inflight)
		c.rates = map[int]float64{}
		c.phase, c.holds, c.hold = holding, holdWindows, holdWindows
		return
	}
	if epoch != c.epoch {
		c.stale = max(c.stale-1, 0)
		return
	}
	c.n++
	c.work += float64(work)
	if c.n < MinWindow || c.time < MinWindowTime {
		return
	}
	rate := c.work / c.time.Seconds()
	c.n, c.work, c.time = 0, 0, 0
	c.decide(rate, inflight, lo, hi)
}

// decide moves the limit after a window measured rate at the current
// limit.
func (c *climb) decide(rate float64, inflight, lo, hi int) {
	c.rates[c.limit] = rate
	switch c.phase {
	case holding:
		c.holds--
		if c.holds > 0 {
			return
		}
		c.base = c.limit
		switch {
		case c.limit < hi && (!c.down || c.limit == lo):
			c.phase = probingUp
			c.set(c.limit+1, inflight)
		case c.limit > lo:
			c.phase = probingDown
			c.set(c.limit-1, inflight)
		default: // lo == hi: nothing to try
			c.holds = maxHoldWindows
		}
	case probingUp:
		if rate > c.rates[c.base]*(1+Gain) {
			c.base, c.hold = c.limit, holdWindows
			if c.limit < hi {
				c.set(c.limit+1, inflight)
				return
			}
		} else {
			c.set(c.base, inflight)
			c.hold = min(2*c.hold, maxHoldWindows)
		}
		c.phase, c.holds, c.down = holding, c.hold, true
	case probingDown:
		if rate >= c.rates[c.base]*(1-Tolerance) {
			c.base, c.hold = c.limit, holdWindows
			if c.limit > lo {
				c.set(c.limit-1, inflight)
				return
			}
		} else {
			c.set(c.base, inflight)
			c.hold = min(2*c.hold, maxHoldWindows)
		}
		c.phase, c.holds, c.down = holding, c.hold, false
	}
}

// set changes the limit and starts a new epoch and window. The requests
// in flight were sent under the old limit: the window's clock starts when
// the last of them completes.
func (c *climb) set(limit, inflight int) {
	if limit == c.limit {
		return
	}
	c.limit = limit
	c.epoch++
	c.stale = inflight
	c.n, c.work, c.time = 0, 0, 0
}
