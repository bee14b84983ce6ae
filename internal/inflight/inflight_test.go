package inflight

import (
	"container/heap"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// server models a tracking server in virtual time.
type server interface {
	// start returns when a request sent at now, with inflight requests in
	// flight (itself included), completes.
	start(now time.Duration, inflight int) time.Duration
}

// serialServer serves one request at a time (a SQLite store), each
// slower by penalty per other request in flight (lock contention).
type serialServer struct {
	service time.Duration
	penalty float64
	free    time.Duration
	rng     *rand.Rand
}

func (s *serialServer) start(now time.Duration, inflight int) time.Duration {
	d := time.Duration(float64(s.service) * (1 + s.penalty*float64(inflight-1)) * noise(s.rng))
	s.free = max(s.free, now) + d
	return s.free
}

// poolServer serves up to k requests at once, first come first served.
type poolServer struct {
	service time.Duration
	free    []time.Duration
	rng     *rand.Rand
}

func (s *poolServer) start(now time.Duration, _ int) time.Duration {
	i := 0
	for j := range s.free {
		if s.free[j] < s.free[i] {
			i = j
		}
	}
	s.free[i] = max(s.free[i], now) + time.Duration(float64(s.service)*noise(s.rng))
	return s.free[i]
}

// noise is a service time factor in [0.9, 1.1].
func noise(r *rand.Rand) float64 { return 0.9 + 0.2*r.Float64() }

type event struct {
	at     time.Duration
	ticket *Ticket // nil: a client becomes ready
}

type events []event

func (e events) Len() int           { return len(e) }
func (e events) Less(i, j int) bool { return e[i].at < e[j].at }
func (e events) Swap(i, j int)      { e[i], e[j] = e[j], e[i] }
func (e *events) Push(x any)        { *e = append(*e, x.(event)) }
func (e *events) Pop() any {
	old := *e
	x := old[len(old)-1]
	*e = old[:len(old)-1]
	return x
}

// simulate runs clients writers, each sending requests of 1000 points
// back to back, against srv through l, for length of virtual time. A request reaches the server transit after it is
// sent (the client's encoding and the network), so a server with one
// request in flight idles that long between requests. It returns points per second and the
// time-weighted mean limit.
func simulate(t *testing.T, l *Limiter, srv server, clients int, transit, length time.Duration) (rate, meanLimit float64) {
	t.Helper()
	var now time.Duration
	epoch := time.Unix(0, 0)
	l.now = func() time.Time { return epoch.Add(now) }
	q := &events{}
	ready := clients
	var points int
	var limitArea float64
	last := time.Duration(0)
	ctx := context.Background()
	for now < length {
		for ready > 0 && l.inflight < l.c.limit && len(l.waiters) == 0 {
			tk, err := l.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ready--
			heap.Push(q, event{at: srv.start(now+transit, l.inflight), ticket: tk})
		}
		if q.Len() == 0 {
			t.Fatal("simulation stalled: nothing in flight and no client ready")
		}
		ev := heap.Pop(q).(event)
		limitArea += float64(l.Limit()) * float64(ev.at-last)
		last, now = ev.at, ev.at
		if ev.ticket == nil {
			ready++
			continue
		}
		ev.ticket.Done(1000, false)
		points += 1000
		heap.Push(q, event{at: now})
	}
	return float64(points) / now.Seconds(), limitArea / float64(now)
}

// bestFixed returns the best rate of a fixed limit in [1, hi] and that
// limit.
func bestFixed(t *testing.T, mk func() server, clients int, transit, length time.Duration, hi int) (float64, int) {
	best, at := 0.0, 0
	for n := 1; n <= hi; n++ {
		r, _ := simulate(t, New(n, n, n), mk(), clients, transit, length)
		if r > best {
			best, at = r, n
		}
	}
	return best, at
}

func TestClimbFindsBestConcurrency(t *testing.T) {
	const hi = 8
	length := 10 * time.Minute
	cases := []struct {
		name             string
		clients          int
		mk               func() server
		transit          time.Duration
		minShare         float64 // of the best fixed limit's rate
		minMean, maxMean float64 // time-weighted mean limit
	}{
		// SQLite-like: one writer, 5% slower per extra request in flight.
		// A second request in flight hides the transit gap, a gain (about
		// 7%) below Gain that the limiter leaves alone; more only contend,
		// so a limiter stuck high (0.74 at eight) fails.
		{"serial", 8, func() server {
			return &serialServer{service: 120 * time.Millisecond, penalty: 0.05, rng: rand.New(rand.NewPCG(1, 2))}
		}, 15 * time.Millisecond, 0.9, 1, 3},
		// several workers: more in flight is faster up to six.
		{"pool of 6", 8, func() server {
			return &poolServer{service: 120 * time.Millisecond, free: make([]time.Duration, 6), rng: rand.New(rand.NewPCG(3, 4))}
		}, 15 * time.Millisecond, 0.85, 4.5, 8},
		// only three callers ever have something to send: a higher limit
		// changes nothing, and the limit stays near three.
		{"pool of 6, 3 callers", 3, func() server {
			return &poolServer{service: 120 * time.Millisecond, free: make([]time.Duration, 6), rng: rand.New(rand.NewPCG(5, 6))}
		}, 15 * time.Millisecond, 0.9, 2, 4.5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			best, at := bestFixed(t, tc.mk, tc.clients, tc.transit, length, hi)
			rate, mean := simulate(t, New(1, hi, hi), tc.mk(), tc.clients, tc.transit, length)
			t.Logf("best fixed limit %d: %.0f points/s; adaptive: %.0f points/s (%.2f), mean limit %.2f",
				at, best, rate, rate/best, mean)
			if rate < tc.minShare*best {
				t.Errorf("adaptive rate %.0f is %.2f of the best fixed limit's %.0f, want at least %.2f", rate, rate/best, best, tc.minShare)
			}
			if mean < tc.minMean || mean > tc.maxMean {
				t.Errorf("mean limit %.2f, want within [%.1f, %.1f]", mean, tc.minMean, tc.maxMean)
			}
		})
	}
}

// clock is a virtual clock for a Limiter.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func withClock(l *Limiter) *clock {
	c := &clock{t: time.Unix(0, 0)}
	l.now = c.now
	return c
}

func acquire(t *testing.T, l *Limiter) *Ticket {
	t.Helper()
	tk, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// idle fails unless nothing is in flight or waiting.
func idle(t *testing.T, l *Limiter) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight != 0 || l.cur != 0 || len(l.waiters) != 0 {
		t.Fatalf("after every Done: %d in flight (%d of this epoch), %d waiting", l.inflight, l.cur, len(l.waiters))
	}
}

// fillWindow completes MinWindow requests of 1000 units, each taking
// 500 ms alone, and returns the rate the limiter recorded for its limit
// (0 if the window did not close).
func fillWindow(t *testing.T, l *Limiter, c *clock) float64 {
	t.Helper()
	limit := l.Limit()
	for range MinWindow {
		tk := acquire(t, l)
		c.advance(500 * time.Millisecond)
		tk.Done(1000, false)
	}
	return l.c.rates[limit]
}

func TestOverloadHalvesLimitOncePerEpoch(t *testing.T) {
	l := New(1, 8, 8)
	c := withClock(l)
	var tks []*Ticket
	for range 8 {
		tks = append(tks, acquire(t, l))
	}
	tks[0].Done(0, true)
	if got := l.Limit(); got != 4 {
		t.Fatalf("limit after a 429 from 8: %d, want 4", got)
	}
	for _, tk := range tks[1:4] { // sent before the halving: no second halving
		tk.Done(0, true)
	}
	if got := l.Limit(); got != 4 {
		t.Fatalf("limit after 429s of requests sent at 8: %d, want 4", got)
	}
	for _, tk := range tks[4:] {
		tk.Done(1000, false)
	}
	tks[4].Done(1000, false) // a second Done is ignored
	idle(t, l)
	acquire(t, l).Done(0, true)
	acquire(t, l).Done(0, true)
	acquire(t, l).Done(0, true) // at the floor: stays at 1
	if got := l.Limit(); got != 1 {
		t.Fatalf("limit after more 429s: %d, want 1", got)
	}
	idle(t, l)
	// The limiter still measures after overloads at the floor.
	if got := fillWindow(t, l, c); got != 2000 {
		t.Fatalf("rate measured after the overloads: %v, want 2000 units per busy second", got)
	}
}

// TestWaiterGetsEpochOfGrant: a request queued across a change of the
// limit belongs to the epoch in which it got its slot, so measuring
// resumes once the older requests complete.
func TestWaiterGetsEpochOfGrant(t *testing.T) {
	l := New(1, 2, 2)
	c := withClock(l)
	a, b := acquire(t, l), acquire(t, l)
	got := make(chan *Ticket)
	go func() { got <- acquire(t, l) }()
	waitQueued(t, l, 1)
	a.Done(0, true) // limit 2 -> 1: b is of the old epoch, the waiter still waits
	select {
	case <-got:
		t.Fatal("the waiter got a slot while b filled the new limit of 1")
	default:
	}
	b.Done(1000, false)
	w := <-got
	if w.epoch != l.c.epoch {
		t.Fatalf("waiter granted in epoch %d holds epoch %d", l.c.epoch, w.epoch)
	}
	c.advance(500 * time.Millisecond)
	w.Done(1000, false) // the first of the new window
	idle(t, l)
	if got := fillWindow(t, l, c); got != 2000 {
		t.Fatalf("rate measured after the change: %v, want 2000", got)
	}
}

func TestSettledIsTheLimitHeldLongest(t *testing.T) {
	l := New(1, 4, 2)
	c := withClock(l)
	tk := acquire(t, l)
	c.advance(10 * time.Second)
	tk.Done(1000, false)
	l.mu.Lock()
	l.setLimit(3)
	l.mu.Unlock()
	tk = acquire(t, l)
	c.advance(4 * time.Second)
	tk.Done(1000, false)
	c.advance(time.Minute) // idle time counts for no limit
	if got := l.Settled(); got != 2 || l.Limit() != 3 {
		t.Fatalf("Settled() = %d, Limit() = %d; want 2 (10 busy seconds) and 3", got, l.Limit())
	}
}

func TestAcquireBlocksAtLimitAndHonoursCancel(t *testing.T) {
	l := New(2, 2, 2)
	ctx := context.Background()
	a, _ := l.Acquire(ctx)
	b, _ := l.Acquire(ctx)

	got := make(chan *Ticket)
	go func() {
		tk, err := l.Acquire(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- tk
	}()
	cctx, cancel := context.WithCancel(ctx)
	canceled := make(chan error)
	waitQueued(t, l, 1)
	go func() {
		_, err := l.Acquire(cctx)
		canceled <- err
	}()
	waitQueued(t, l, 2)
	select {
	case <-got:
		t.Fatal("a third request went through a limit of 2")
	default:
	}
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Acquire returned %v", err)
	}
	a.Done(1000, false)
	c := <-got // the first waiter gets the freed slot
	b.Done(1000, false)
	c.Done(1000, false)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight != 0 || len(l.waiters) != 0 {
		t.Fatalf("after all Done: %d in flight, %d waiting", l.inflight, len(l.waiters))
	}
}

// waitQueued waits until n Acquire calls are queued.
func waitQueued(t *testing.T, l *Limiter, n int) {
	t.Helper()
	for range 10_000 {
		l.mu.Lock()
		q := len(l.waiters)
		l.mu.Unlock()
		if q >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d waiters never queued", n)
}

func TestNewClamps(t *testing.T) {
	for _, tc := range []struct{ lo, hi, init, wantLimit int }{
		{0, 0, 0, 1}, {2, 1, 5, 2}, {1, 8, 20, 8}, {3, 8, 1, 3},
	} {
		if got := New(tc.lo, tc.hi, tc.init).Limit(); got != tc.wantLimit {
			t.Errorf("New(%d, %d, %d).Limit() = %d, want %d", tc.lo, tc.hi, tc.init, got, tc.wantLimit)
		}
	}
}
