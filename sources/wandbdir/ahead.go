package wandbdir

import (
	"runtime"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// Converting ahead: the Metrics pass spends most of its time converting
// history rows (parsing each value's JSON number, sorting the row's keys),
// work that depends on nothing but the row. A walk through ahead hands the
// rows, in batches of aheadRows, to other goroutines that convert them,
// up to aheadBatches batches at once, while the walk reads on; every
// handler call (rows, system metrics, records, damage, segment ends) is
// still made in file order on the walk's goroutine, with the rows already
// converted, so a pass yields exactly what it yields converting each row
// as it reads it (TestConvertAheadYieldsTheSame). Memory: at most
// aheadBatches+1 batches of rows and their points.
const (
	aheadRows    = 256
	aheadBatches = 4
)

// convertAhead turns the conversion ahead on or off (tests compare both).
var convertAhead = true

// pointSource is a converted row's points: a RowConverter after Convert,
// or a convertedRow.
type pointSource interface {
	NumPoints() int
	PutPoints(dst []schema.Metric, from int, step, time int64)
}

// convertedRow is a history row converted ahead: its values and its points
// (their Step and Time set by PutPoints).
type convertedRow struct {
	rv  wandbfile.RowValues
	pts []schema.Metric // at step and time
	// step and time are those of pts: the row's own step (0 without one)
	// and time, the step the pass gives the row whenever the row has one.
	step, time int64
}

func (c *convertedRow) NumPoints() int { return len(c.pts) }

func (c *convertedRow) PutPoints(dst []schema.Metric, from int, step, time int64) {
	if step == c.step && time == c.time {
		copy(dst, c.pts[from:from+len(dst)])
		return
	}
	for k, m := range c.pts[from : from+len(dst)] {
		m.Step, m.Time = step, time
		dst[k] = m
	}
}

type aheadKind uint8

const (
	aheadHistory aheadKind = iota
	aheadStats
	aheadRecord
	aheadDamage
	aheadCorrupt
)

// aheadEvent is one handler call held until its batch is converted.
type aheadEvent struct {
	kind  aheadKind
	seg   *segment
	row   wandbfile.Row // history: a copy of the row (CopyTo), or
	obj   map[string]any
	conv  convertedRow // history: filled by the batch's converter
	t     time.Time
	items []wandbfile.Value
	rec   *wandbfile.Record
	notes []string
}

// aheadBatch is a run of events in file order; done is closed once its
// rows are converted.
type aheadBatch struct {
	events []aheadEvent
	rows   int
	pts    []schema.Metric // the points of every row, in order
	done   chan struct{}
}

// ahead holds the walk's batches: cur is being filled, queue is sent for
// conversion and waits, oldest first, to be handed to the pass.
type ahead struct {
	inner handler
	row   func(seg *segment, r wandbfile.RowValues, pts pointSource) error
	cur   *aheadBatch
	queue []*aheadBatch
	free  []*aheadBatch
	convs chan *wandbfile.RowConverter
	err   error // the first error of a handler call: the walk stops
}

// aheadHandler returns the handler of a walk that converts history rows
// ahead and calls row with each (see the comment above), and inner's
// other functions for everything else, in file order. inner.history is not
// used. When the conversion ahead is off, or the machine has one core, it
// converts each row as it is read with a converter of its own.
func aheadHandler(inner handler, row func(seg *segment, r wandbfile.RowValues, pts pointSource) error) handler {
	if !convertAhead || runtime.GOMAXPROCS(0) < 2 {
		conv := newConverter()
		h := inner
		h.history = func(seg *segment, hr histRow) error {
			r := hr.convert(conv, true)
			return row(seg, r, conv)
		}
		return h
	}
	a := &ahead{inner: inner, row: row, convs: make(chan *wandbfile.RowConverter, aheadBatches)}
	keys := &wandbfile.KeyTable{}
	for range aheadBatches {
		conv := newConverter()
		conv.Keys = keys
		a.convs <- conv
	}
	h := handler{
		kinds:   inner.kinds,
		history: a.history,
		// segmentEnd hands on every event held: a segment's end sees
		// every call of the segment made, as without the conversion ahead.
		segmentEnd: a.segmentEnd,
	}
	if inner.record != nil {
		h.record = func(seg *segment, rec *wandbfile.Record) error {
			return a.add(aheadEvent{kind: aheadRecord, seg: seg, rec: rec})
		}
	}
	if inner.stats != nil {
		h.stats = func(seg *segment, t time.Time, items []wandbfile.Value) error {
			return a.add(aheadEvent{kind: aheadStats, seg: seg, t: t, items: items})
		}
	}
	if inner.damage != nil {
		h.damage = func(seg *segment, notes []string) {
			_ = a.add(aheadEvent{kind: aheadDamage, seg: seg, notes: notes})
		}
	}
	if inner.corrupt != nil {
		h.corrupt = func(seg *segment) {
			_ = a.add(aheadEvent{kind: aheadCorrupt, seg: seg})
		}
	}
	return h
}

// batch returns the batch being filled.
func (a *ahead) batch() *aheadBatch {
	if a.cur == nil {
		if n := len(a.free); n > 0 {
			a.cur, a.free = a.free[n-1], a.free[:n-1]
		} else {
			a.cur = &aheadBatch{}
		}
		a.cur.events, a.cur.rows, a.cur.pts = a.cur.events[:0], 0, a.cur.pts[:0]
		a.cur.done = make(chan struct{})
	}
	return a.cur
}

// add holds ev (not a history row) in the current batch.
func (a *ahead) add(ev aheadEvent) error {
	if a.err != nil {
		return a.err
	}
	b := a.batch()
	b.events = append(b.events, ev)
	return nil
}

// history holds a copy of the row in the current batch, and sends the
// batch for conversion once it holds aheadRows rows.
func (a *ahead) history(seg *segment, hr histRow) error {
	if a.err != nil {
		return a.err
	}
	b := a.batch()
	if len(b.events) < cap(b.events) {
		b.events = b.events[:len(b.events)+1]
	} else {
		b.events = append(b.events, aheadEvent{})
	}
	ev := &b.events[len(b.events)-1]
	row := ev.row // keep the event's buffers
	*ev = aheadEvent{kind: aheadHistory, seg: seg, row: row, obj: hr.obj}
	if hr.row != nil {
		hr.row.CopyTo(&ev.row)
	}
	b.rows++
	if b.rows < aheadRows {
		return nil
	}
	return a.send()
}

// send starts the conversion of the current batch, then, with
// aheadBatches batches out, hands on the oldest once converted.
func (a *ahead) send() error {
	b := a.cur
	if b == nil {
		return a.err
	}
	a.cur = nil
	a.queue = append(a.queue, b)
	conv := <-a.convs
	go func() {
		defer close(b.done)
		defer func() { a.convs <- conv }()
		b.convert(conv)
	}()
	for len(a.queue) >= aheadBatches && a.err == nil {
		a.apply()
	}
	return a.err
}

// convert converts the batch's rows with conv.
func (b *aheadBatch) convert(conv *wandbfile.RowConverter) {
	type span struct{ lo, hi int }
	spans := make([]span, 0, b.rows)
	for i := range b.events {
		ev := &b.events[i]
		if ev.kind != aheadHistory {
			continue
		}
		hr := histRow{obj: ev.obj}
		if ev.obj == nil {
			hr.row = &ev.row
		}
		rv := hr.convert(conv, true)
		ev.conv.rv, ev.conv.step, ev.conv.time = rv, 0, rv.Time
		if rv.HasStep {
			ev.conv.step = rv.Step
		}
		lo := len(b.pts)
		b.pts = conv.AppendPoints(b.pts, ev.conv.step, ev.conv.time)
		spans = append(spans, span{lo, len(b.pts)})
	}
	// The points' slices are cut once b.pts has stopped growing.
	k := 0
	for i := range b.events {
		if ev := &b.events[i]; ev.kind == aheadHistory {
			ev.conv.pts = b.pts[spans[k].lo:spans[k].hi:spans[k].hi]
			k++
		}
	}
}

// apply waits for the oldest batch sent and makes its handler calls.
func (a *ahead) apply() {
	b := a.queue[0]
	a.queue[0] = nil
	a.queue = a.queue[1:]
	<-b.done
	for i := range b.events {
		if a.err != nil {
			break
		}
		ev := &b.events[i]
		switch ev.kind {
		case aheadHistory:
			a.err = a.row(ev.seg, ev.conv.rv, &ev.conv)
		case aheadStats:
			a.err = a.inner.stats(ev.seg, ev.t, ev.items)
		case aheadRecord:
			a.err = a.inner.record(ev.seg, ev.rec)
		case aheadDamage:
			a.inner.damage(ev.seg, ev.notes)
		case aheadCorrupt:
			a.inner.corrupt(ev.seg)
		}
		// Let go of what the event holds but the row's buffers.
		ev.obj, ev.items, ev.rec, ev.notes, ev.conv = nil, nil, nil, nil, convertedRow{}
	}
	a.free = append(a.free, b)
}

// segmentEnd sends the current batch and hands on every batch held, then
// calls inner's segmentEnd.
func (a *ahead) segmentEnd(seg *segment) error {
	if a.cur != nil {
		if err := a.send(); err != nil {
			a.drain()
			return err
		}
	}
	for len(a.queue) > 0 && a.err == nil {
		a.apply()
	}
	if a.err != nil {
		a.drain()
		return a.err
	}
	if a.inner.segmentEnd != nil {
		return a.inner.segmentEnd(seg)
	}
	return nil
}

// drain waits for the batches still out after an error.
func (a *ahead) drain() {
	for _, b := range a.queue {
		<-b.done
	}
	a.queue = nil
}
