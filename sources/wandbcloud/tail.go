package wandbcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strings"

	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// Appending to a grown run (sources.TailReader): only the history rows
// from the last step the destination holds are asked for, with the paged
// history scan from that step (minStep), or, for a tail longer than
// TailPagedMax steps, from the parquet exports and their live tail with
// the rows before it skipped. The row at the held step is read again and
// must hold exactly the keys held there (their times are compared by the
// engine), else the history changed and the run is written whole. System
// metrics (one events request) go on from the last row index held.
//
// A run whose listing shows a non-numeric history value (a history key
// whose last value is media, a table, a string, a list or null), or a key
// named system…, or more system-metrics rows than one request gets
// unsampled, is read whole: its rich values are written whole at every
// append, and need the whole history read anyway. A tail row that holds a
// non-numeric value makes the run read and written whole too.

var _ sources.TailReader = (*Source)(nil)

// TailPagedMax is the longest tail, in steps, read with the paged history
// scan; a longer one is read from the parquet exports when the run has
// them.
var TailPagedMax int64 = 100_000

// tailInfo is what the listing tells of a run's tail.
type tailInfo struct {
	ok bool // the tail can be read alone
}

// tailOf decides from the listed run r whether its tail can be read alone.
func tailOf(r wandbapi.Run) tailInfo {
	if r.EventsLineCount != nil && *r.EventsLineCount > int64(wandbapi.EventsSamples) {
		return tailInfo{}
	}
	if len(r.HistoryKeys) == 0 || string(r.HistoryKeys) == "null" {
		return tailInfo{ok: true}
	}
	var hk struct {
		Keys map[string]struct {
			PreviousValue json.RawMessage `json:"previousValue"`
		} `json:"keys"`
	}
	if json.Unmarshal(r.HistoryKeys, &hk) != nil {
		return tailInfo{}
	}
	for k, v := range hk.Keys {
		if strings.HasPrefix(k, "_") {
			continue
		}
		if strings.HasPrefix(k, "system") {
			return tailInfo{} // its steps would be taken for system-metrics rows
		}
		val, err := decodeLenient(string(v.PreviousValue))
		if err != nil || !numeric(val) {
			return tailInfo{}
		}
	}
	return tailInfo{ok: true}
}

// numeric reports whether v, a history value as decodeLenient gives it,
// converts to metric points only: a number, a boolean, a non-finite word,
// or a dict (not media) of those.
func numeric(v any) bool {
	switch x := v.(type) {
	case json.Number, float64, bool:
		return true
	case string:
		return x == "NaN" || x == "Infinity" || x == "-Infinity"
	case map[string]any:
		if _, media := x["_type"]; media || len(x) == 0 {
			return false
		}
		for _, e := range x {
			if !numeric(e) {
				return false
			}
		}
		return true
	}
	return false
}

// MetricsTail yields the points of the run's history and system metrics
// that held does not cover (see sources.TailReader and above). ok is
// false for a run this source did not list, or whose tail cannot be read
// alone; it does no I/O until ranged over.
func (s *Source) MetricsTail(ctx context.Context, run schema.Ref, held map[string]sources.HeldKey) (iter.Seq2[[]schema.Metric, error], bool) {
	s.mu.Lock()
	info, listed := s.tails[run.ID]
	last, hasLast := s.lastSteps[run.ID]
	s.mu.Unlock()
	if !listed || !hasLast || !info.ok {
		return nil, false
	}
	hist, sys := map[string]sources.HeldKey{}, map[string]sources.HeldKey{}
	for key, h := range held {
		if strings.HasPrefix(key, "system/") {
			sys[key] = h
		} else {
			hist[key] = h
		}
	}
	return func(yield func([]schema.Metric, error) bool) {
		var page []schema.Metric
		stopped := false
		emit := func(r row) error {
			if len(r.rich) > 0 {
				return fmt.Errorf("%w: run %s: step %d holds non-numeric values (the run is read whole)", sources.ErrTailChanged, run.ID, r.step)
			}
			page = append(page, r.points...)
			if len(page) >= PageSize {
				if !yield(page, nil) {
					stopped = true
					return errStop
				}
				page = nil
			}
			return nil
		}
		p, err := s.split(run.ID, 2)
		if err == nil {
			err = tailRows(run, "history step", hist, last, emit, func(from int64, fn func(row) error) error {
				if s.cfg.PagedHistory || last-from+1 <= TailPagedMax {
					return s.pagedHistory(ctx, run, p[0], p[1], from, last, fn)
				}
				handled, err := s.exportHistory(ctx, run, p[0], p[1], last, func(r row) error {
					if r.step < from {
						return nil
					}
					return fn(r)
				})
				if handled || err != nil {
					return err
				}
				return s.pagedHistory(ctx, run, p[0], p[1], from, last, fn)
			})
		}
		if err == nil {
			err = tailRows(run, "system-metrics row", sys, -2, emit, func(from int64, fn func(row) error) error {
				return s.systemMetricsFrom(ctx, run, from, fn)
			})
		}
		if stopped {
			return
		}
		if err != nil {
			yield(nil, err)
			return
		}
		s.keepSpool(run.ID, &spool{}) // a run read so holds no rich values
		if len(page) > 0 {
			yield(page, nil)
		}
	}, true
}

// tailRows reads, with read, the rows from the last step held holds on
// (from 0 when it holds none) and hands each to emit, after checking that
// the row at that step holds exactly the keys held there. last is the
// run's last step as listed (-1: none; -2: not known, the rows tell).
func tailRows(run schema.Ref, what string, held map[string]sources.HeldKey, last int64, emit func(row) error, read func(from int64, fn func(row) error) error) error {
	from := int64(-1)
	for _, h := range held {
		from = max(from, h.LastStep)
	}
	changed := func(format string, args ...any) error {
		return fmt.Errorf("%w: run %s: %s", sources.ErrTailChanged, run.ID, fmt.Sprintf(format, args...))
	}
	if last == -1 && from < 0 {
		return nil
	}
	if last != -2 && from > last {
		return changed("its last %s is %d, the copy holds up to %d", what, last, from)
	}
	sawHeld := from < 0
	atHeld := map[string]bool{}
	err := read(max(from, 0), func(r row) error {
		if r.step == from {
			sawHeld = true
			for _, pt := range r.points {
				if h, ok := held[pt.Key]; !ok || h.LastStep != from {
					return changed("%s %d, copied earlier, now holds %q", what, from, pt.Key)
				}
				atHeld[pt.Key] = true
			}
		}
		return emit(r)
	})
	if err != nil {
		return err
	}
	if !sawHeld {
		return changed("%s %d, copied earlier, is gone", what, from)
	}
	for key, h := range held {
		if h.LastStep == from && !atHeld[key] {
			return changed("%q at %s %d, copied earlier, is gone", key, what, from)
		}
	}
	return nil
}
