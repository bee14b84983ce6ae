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
// The first probe from a limit above the floor goes straight to the floor
// (one request in flight), which settles the common cases in one window:
// a serialising server is as fast there and stays there, a parallel one is
// far slower and returns. Between probes it holds, for longer after probes
// that failed. A request
// the server answered with 429 or 503 (at any attempt) halves the limit at
// once, at most once per limit: requests sent before the change do not
// halve it again.
//
// Every change of the limit starts an epoch: the requests still in flight
// were sent under the old limit, so measuring waits until they complete.
//
// Gain is large because request timings on a busy server are noisy: a
// server that really gains from one more request gains much more than 15%
// at small limits (about 100% from one to two requests on a server with
// two workers), while a serialising server gains nothing and a noisy window
// should not make the limit drift upwards.
//
// The Limiter never lets more than its current limit through, and it never
// goes below the lower bound given to New or above the upper one.
package inflight

import (
	"context"
	"sync"
	"time"
)

// Tuning of the climb.
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
	inflight int                   // requests in flight
	cur      int                   // of them, granted in the current epoch
	last     time.Time             // when inflight last changed
	waiters  []*waiter             // FIFO
	held     map[int]time.Duration // busy time spent at each limit
	c        climb
}

// waiter is an Acquire call waiting for a slot.
type waiter struct {
	ch    chan struct{} // closed when the slot is granted
	epoch int           // the epoch of the grant, set before ch is closed
}

// New returns a Limiter starting at initial requests in flight, adapting
// within [lo, hi]. Values out of order are clamped: lo >= 1, hi >= lo.
func New(lo, hi, initial int) *Limiter {
	lo = max(lo, 1)
	hi = max(hi, lo)
	initial = min(max(initial, lo), hi)
	l := &Limiter{min: lo, max: hi, now: time.Now, held: map[int]time.Duration{}}
	// The first window is held without a probe: it includes the start of
	// the work.
	l.c = climb{limit: initial, phase: holding, holds: 2, hold: holdWindows, rates: map[int]float64{}}
	return l
}

// Limit returns the current limit.
func (l *Limiter) Limit() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c.limit
}

// Settled returns the limit that was in force for the most busy time: the
// number of requests in flight the Limiter settled on.
func (l *Limiter) Settled() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.account()
	best := l.c.limit
	for n, d := range l.held {
		if d > l.held[best] || d == l.held[best] && n < best {
			best = n
		}
	}
	return best
}

// Ticket is one granted request slot.
type Ticket struct {
	l     *Limiter
	epoch int // the epoch of the grant
	done  bool
}

// Acquire waits for a slot. It returns ctx's error, holding nothing, when
// ctx ends first.
func (l *Limiter) Acquire(ctx context.Context) (*Ticket, error) {
	l.mu.Lock()
	if len(l.waiters) == 0 && l.inflight < l.c.limit {
		e := l.take()
		l.mu.Unlock()
		return &Ticket{l: l, epoch: e}, nil
	}
	w := &waiter{ch: make(chan struct{})}
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	select {
	case <-w.ch:
		return &Ticket{l: l, epoch: w.epoch}, nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-w.ch: // granted meanwhile: hand the slot on
			l.release(w.epoch)
			l.grant()
		default:
			for i, x := range l.waiters {
				if x == w {
					l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
					break
				}
			}
		}
		return nil, ctx.Err()
	}
}

// Done releases the slot and reports what the request achieved: work is
// the units it completed (0 for a failed request), overloaded whether the
// server answered 429 or 503 at any attempt. Calls after the first do
// nothing.
func (t *Ticket) Done(work int, overloaded bool) {
	if t == nil {
		return
	}
	l := t.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	if l.release(t.epoch) {
		switch {
		case overloaded:
			l.c.overloaded()
			l.setLimit(max(l.min, l.c.limit/2))
		case l.inflight == l.cur: // nothing from an earlier epoch in flight
			if rate, ok := l.c.complete(work); ok {
				l.setLimit(l.c.decide(rate, l.min, l.max))
			}
		}
	}
	l.grant()
}

// take takes a slot in the current epoch. l.mu is held.
func (l *Limiter) take() int {
	l.account()
	l.inflight++
	l.cur++
	return l.c.epoch
}

// release frees a slot granted in epoch and reports whether that is the
// current epoch. l.mu is held.
func (l *Limiter) release(epoch int) bool {
	l.account()
	l.inflight--
	if epoch != l.c.epoch {
		return false
	}
	l.cur--
	return true
}

// account adds the busy time since the last change of inflight: to the
// current limit's total, and to the window while no request of an earlier
// epoch is in flight. l.mu is held.
func (l *Limiter) account() {
	now := l.now()
	if l.inflight > 0 {
		d := now.Sub(l.last)
		l.held[l.c.limit] += d
		if l.inflight == l.cur {
			l.c.time += d
		}
	}
	l.last = now
}

// setLimit changes the limit and starts a new epoch and window: every
// request in flight now belongs to an earlier epoch. l.mu is held.
func (l *Limiter) setLimit(n int) {
	if n == l.c.limit {
		return
	}
	l.account()
	l.c.limit = n
	l.c.epoch++
	l.cur = 0
	l.c.n, l.c.work, l.c.time = 0, 0, 0
}

// grant hands free slots to waiters in order. l.mu is held.
func (l *Limiter) grant() {
	for len(l.waiters) > 0 && l.inflight < l.c.limit {
		w := l.waiters[0]
		l.waiters = l.waiters[1:]
		w.epoch = l.take()
		close(w.ch)
	}
}

type phase int

const (
	holding phase = iota
	probingUp
	probingDown
)

// climb is the limit's state machine: it measures windows and decides the
// next limit; the Limiter applies it.
type climb struct {
	limit int
	epoch int // counts limit changes
	phase phase
	base  int // the limit a probe is compared against
	holds int // windows left to hold
	hold  int // windows to hold after the next probe
	down  bool
	// probed is set by the first probe.
	probed bool
	rates  map[int]float64 // last measured work per busy second by limit

	n    int           // completions in the window
	work float64       // their work
	time time.Duration // the window's busy time
}

// complete counts one completion in the window and, when the window is
// full, returns its rate.
func (c *climb) complete(work int) (float64, bool) {
	c.n++
	c.work += float64(work)
	if c.n < MinWindow || c.time < MinWindowTime {
		return 0, false
	}
	rate := c.work / c.time.Seconds()
	c.n, c.work, c.time = 0, 0, 0
	return rate, true
}

// overloaded forgets the measurements and holds after an overload.
func (c *climb) overloaded() {
	c.rates = map[int]float64{}
	c.phase, c.holds, c.hold = holding, holdWindows, holdWindows
}

// decide records a window's rate at the current limit and returns the
// next limit, within [lo, hi].
func (c *climb) decide(rate float64, lo, hi int) int {
	c.rates[c.limit] = rate
	switch c.phase {
	case holding:
		c.holds--
		if c.holds > 0 {
			return c.limit
		}
		c.base = c.limit
		switch {
		case !c.probed && c.limit > lo:
			// The first probe goes straight to the floor: a server that
			// serialises writes is as fast there, and one that does not is
			// so much slower that one window shows it.
			c.probed, c.phase = true, probingDown
			return lo
		case c.limit < hi && (!c.down || c.limit == lo):
			c.phase = probingUp
			return c.limit + 1
		case c.limit > lo:
			c.phase = probingDown
			return c.limit - 1
		}
		c.holds = maxHoldWindows // lo == hi: nothing to try
		return c.limit
	case probingUp:
		if rate > c.rates[c.base]*(1+Gain) {
			c.base, c.hold = c.limit, holdWindows
			if c.limit < hi {
				return c.limit + 1
			}
		} else {
			c.hold = min(2*c.hold, maxHoldWindows)
		}
		c.phase, c.holds, c.down = holding, c.hold, true
		return c.base
	default: // probingDown
		if rate >= c.rates[c.base]*(1-Tolerance) {
			c.base, c.hold = c.limit, holdWindows
			if c.limit > lo {
				return c.limit - 1
			}
		} else {
			c.hold = min(2*c.hold, maxHoldWindows)
		}
		c.phase, c.holds, c.down = holding, c.hold, false
		return c.base
	}
}
