package wandbcloud

import (
	"context"
	"sync"
)

// ExportsAhead is how many runs after the one being read have their
// parquet exports downloaded ahead, when runs are being read in listing
// order: a sink that takes a few runs at once then does not wait on every
// download's latency. 0 turns it off.
//
// Downloads wait mostly on latency: to keep a copy that processes R runs
// a second from waiting on a latency L, about R x L of them must be in
// flight. With 4 ahead (before 2026-12-01), 1,000 runs of 100 steps at
// 100 ms a download took 21 s against 5.7 s of CPU (docs/BENCHMARKS.md,
// "W&B cloud": where the rate limit would bind). The downloads in flight
// are bounded by wandbapi.MaxDownloads as well.
var ExportsAhead = 32

// AheadPoints bounds the points (as the runs' listings tell them:
// Estimate) of the runs whose exports are downloaded ahead and not yet
// read, so that the temporary files of large runs downloaded ahead stay
// few (about 10 bytes of parquet a point: 16M points, some 160 MB of
// disk); the next run's exports are downloaded ahead whatever its size.
var AheadPoints int64 = 16 << 20

// EventsAhead is how many runs after the one being read have their
// system metrics (run.events, one GraphQL request a run) asked for ahead,
// in a first job (ReadsEveryRun) reading the runs in listing order. 0 turns
// it off.
//
// Those requests are what the API's rate limit holds in a first copy (a run
// with exports costs no other request: docs/WANDB-CLOUD.md "Requests per
// run"). Asked for only when the run is read, after its history, they were
// sent no faster than the runs were read, and each run waited its answer's
// latency: 1,000 runs of 10,000 steps with system metrics took 1.10-1.15x
// the rate limit's lower bound, requests sent at 9.2 a second against the
// server's 10 (docs/BENCHMARKS.md, "W&B cloud", gap 1 at the size).
// Asked for ahead, they go at the rate the API's pacer allows while the
// machine decodes and writes the runs before them. What is held is the
// answers' rows of at most EventsAhead runs (W&B samples a run's events to
// fewer than 1,000 rows).
var EventsAhead = 32

// ahead holds exports downloaded ahead of their run's read.
type ahead struct {
	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// order holds the listed runs' origin ids, in listing order, from the
	// place base on: those before were released (sources.RunReleaser) or
	// lie more than aheadBehind before the run read last (see forget).
	order []string
	base  int
	index map[string]int // run origin id -> its place (order[place-base])
	last  int            // place of the run read last; -1: none
	runs  map[string]*fetched
	// points is the estimated points of runs, within AheadPoints.
	points int64
	// orphans were downloaded for a read that gave up waiting.
	orphans []*fetched
	// events holds, by run origin id, the system metrics asked for ahead.
	events map[string]*eventsFetched
}

// eventsFetched is one run's system-metrics rows (api Events), asked for
// or being asked for.
type eventsFetched struct {
	done  chan struct{}
	texts []string
	err   error
}

// fetched is one run's exports, downloaded or being downloaded.
type fetched struct {
	done   chan struct{}
	urls   []string
	live   []int64
	points int64 // the run's estimated points, counted in ahead.points
	files  []*exportFile
	err    error
}

// listed records a run's place in the listing order; s.mu is held.
func (a *ahead) listed(id string) {
	if a.index == nil {
		a.index = map[string]int{}
		a.last = -1
	}
	if _, ok := a.index[id]; !ok {
		a.index[id] = a.base + len(a.order)
		a.order = append(a.order, id)
	}
}

// aheadBehind is how far before the run read last a listed run's place is
// kept (a run read there is read without downloads ahead).
const aheadBehind = 1024

// forget drops the runs at the start of the order that were released, or
// lie more than aheadBehind places before the run read last, so that the
// order and index hold a few runs around the reads, not every run listed;
// s.mu is held.
func (a *ahead) forget() {
	n := 0
	for ; n < len(a.order); n++ {
		id := a.order[n]
		p, ok := a.index[id]
		here := ok && p == a.base+n
		if here && a.base+n >= a.last-aheadBehind {
			break
		}
		if here {
			delete(a.index, id)
		}
		a.order[n] = ""
	}
	a.order, a.base = a.order[n:], a.base+n
}

// release drops what was fetched ahead for run id, which the job is done
// with without reading it (the plan skipped it): its estimated points leave
// ahead.points, so that downloads ahead go on for the runs after it, and
// its exports' temporary files are removed once their download ends; s.mu
// is held.
func (a *ahead) release(id string) {
	delete(a.events, id)
	f := a.runs[id]
	if f == nil {
		return
	}
	delete(a.runs, id)
	a.points -= f.points
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		<-f.done
		for _, ef := range f.files {
			ef.close()
		}
	}()
}

// takeFetched returns (and forgets) the run's exports downloaded ahead,
// waiting for them; nil when there are none.
func (s *Source) takeFetched(ctx context.Context, id string) (*fetched, error) {
	s.mu.Lock()
	f := s.ahead.runs[id]
	delete(s.ahead.runs, id)
	if f != nil {
		s.ahead.points -= f.points
	}
	s.mu.Unlock()
	if f == nil {
		return nil, nil
	}
	select {
	case <-f.done:
		return f, nil
	case <-ctx.Done():
		// The download goes on; Close removes what it leaves.
		s.mu.Lock()
		s.ahead.orphans = append(s.ahead.orphans, f)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// fetchAhead notes that run id is being read and, when it follows the
// run read before it in listing order (a copy reading the runs one after
// the other, not a sync picking a few), starts downloading the exports of
// the next ExportsAhead listed runs that have them (runs of pages
// fetched in export form: see exportPage), as far as AheadPoints allows.
func (s *Source) fetchAhead(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &s.ahead
	i, ok := a.index[id]
	if !ok {
		return
	}
	streak := i == a.last+1 || i == a.last
	a.last = max(a.last, i)
	a.forget()
	if !streak || ExportsAhead <= 0 || i < a.base {
		return
	}
	if a.ctx == nil {
		a.ctx, a.cancel = context.WithCancel(context.Background())
	}
	s.eventsAhead(i)
	for _, next := range a.order[i-a.base+1 : min(len(a.order), i-a.base+1+ExportsAhead)] {
		if a.runs[next] != nil {
			continue
		}
		x := s.extras[next]
		if x == nil || x.exports == nil || len(x.exports.URLs) == 0 {
			continue
		}
		p, err := s.split(next, 2)
		if err != nil {
			continue
		}
		pts := s.estimates[next]
		if a.points > 0 && a.points+pts > AheadPoints {
			return
		}
		a.points += pts
		f := &fetched{done: make(chan struct{}), urls: x.exports.URLs, live: x.exports.LiveSteps, points: pts}
		x.exports = nil
		s.dropIfEmpty(next, x)
		if a.runs == nil {
			a.runs = map[string]*fetched{}
		}
		a.runs[next] = f
		s.FetchedAhead.Add(1)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer close(f.done)
			f.files, f.err = s.downloadExports(a.ctx, p[0], p[1], f.urls)
		}()
	}
}

// eventsAhead asks, in a first job, for the system metrics of the
// EventsAhead listed runs after the one at place i that the listing shows
// with system metrics and that are not asked for yet; s.mu is held and
// a.ctx set.
func (s *Source) eventsAhead(i int) {
	a := &s.ahead
	if EventsAhead <= 0 || !s.readsAll.Load() {
		return
	}
	if len(a.events) > 2*EventsAhead {
		// Forget the rows of runs left well behind, never read (the
		// destination held them): they stay few.
		for id := range a.events {
			if a.index[id] < i-EventsAhead {
				delete(a.events, id)
			}
		}
	}
	for _, next := range a.order[i-a.base+1 : min(len(a.order), i-a.base+1+EventsAhead)] {
		if none, ok := s.noSystem[next]; !ok || none || a.events[next] != nil {
			continue
		}
		p, err := s.split(next, 2)
		if err != nil {
			continue
		}
		if a.events == nil {
			a.events = map[string]*eventsFetched{}
		}
		f := &eventsFetched{done: make(chan struct{})}
		a.events[next] = f
		s.EventsAskedAhead.Add(1)
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			defer close(f.done)
			f.texts, f.err = s.api.Events(a.ctx, s.cfg.Entity, p[0], p[1])
		}()
	}
}

// takeEvents returns (and forgets) the run's system-metrics rows asked
// for ahead, waiting for them; ok is false when they were not asked for
// ahead, or the request failed (the caller then asks, and meets the error
// itself).
func (s *Source) takeEvents(ctx context.Context, id string) (texts []string, ok bool) {
	s.mu.Lock()
	f := s.ahead.events[id]
	delete(s.ahead.events, id)
	s.mu.Unlock()
	if f == nil {
		return nil, false
	}
	select {
	case <-f.done:
		return f.texts, f.err == nil
	case <-ctx.Done():
		return nil, false
	}
}

// closeAhead stops the downloads ahead and removes what they left.
func (s *Source) closeAhead() {
	s.mu.Lock()
	a := &s.ahead
	if a.cancel != nil {
		a.cancel()
	}
	s.mu.Unlock()
	a.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range append(a.orphans, mapValues(a.runs)...) {
		for _, ef := range f.files {
			ef.close()
		}
	}
	a.runs, a.orphans, a.points, a.events = nil, nil, 0, nil
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
