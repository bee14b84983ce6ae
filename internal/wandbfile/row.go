package wandbfile

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// span is a part of a Row's body: the bytes body[off:off+n]. Rows keep
// offsets rather than slices so that their buffers hold no pointers, which
// spares the garbage collector's write barriers in the hottest loop.
type span struct{ off, n int32 }

// rawItem is one HistoryItem of a Row: key (field 1), nested_key (field
// 2, the segments segs[lo:hi] of the row) and value_json (field 16), each
// the last one written, as Decode keeps them.
type rawItem struct {
	key, value span
	lo, hi     int32
}

// Row is one history row (a HistoryRecord): the shape in which the
// scanner hands rows to RowConverter, whether they were scanned in place
// (Scan) or decoded (SetHistory). For each item it keeps the key, the
// nested_key segments and the value_json as they are on the wire, each
// the last one written, as Decode keeps them, and not parsed.
//
// A scanned Row is a view of the record's bytes, not a copy: it is valid
// only as long as they are (with Scanner, until the next Scanner.Next),
// and is overwritten by the next Scan or SetHistory. Callers copy what
// they keep; Items returns a copy. The zero Row is an empty row without a
// step. A Row is reused from record to record, so that scanning allocates
// nothing once its buffers have grown; it is not safe for concurrent use.
type Row struct {
	body    []byte
	items   []rawItem
	segs    []span
	step    int64 // HistoryRecord.step.num
	hasStep bool  // the record has a step field
}

// bytes returns the bytes of s.
func (r *Row) bytes(s span) []byte { return r.body[s.off : s.off+s.n] }

// path returns the key path of item i as spans: its nested_key segments
// when there are any, else its key, as Item.Path does. one is
// storage for the single-segment case.
func (r *Row) path(i int, one *[1]span) []span {
	it := &r.items[i]
	if it.hi > it.lo {
		return r.segs[it.lo:it.hi]
	}
	one[0] = it.key
	return one[:]
}

// isKey reports whether item i's path is the single segment name.
func (r *Row) isKey(i int, name string) bool {
	it := &r.items[i]
	switch it.hi - it.lo {
	case 0:
		return string(r.bytes(it.key)) == name
	case 1:
		return string(r.bytes(r.segs[it.lo])) == name
	}
	return false
}

// Len returns the number of items of the row.
func (r *Row) Len() int { return len(r.items) }

// Items returns the row's items, as Decode gives them for the same record
// (NestedKey nil when there is none). They are copies: they stay valid
// after the row changes.
func (r *Row) Items() []Item {
	out := make([]Item, len(r.items))
	for i, it := range r.items {
		out[i] = Item{Key: string(r.bytes(it.key)), ValueJSON: string(r.bytes(it.value))}
		if it.hi > it.lo {
			keys := make([]string, it.hi-it.lo)
			for j, s := range r.segs[it.lo:it.hi] {
				keys[j] = string(r.bytes(s))
			}
			out[i].NestedKey = keys
		}
	}
	return out
}

// Step returns HistoryRecord.step as History.Step carries it: nil when the
// record has no step field, else a new copy of the step.
func (r *Row) Step() *int64 {
	if !r.hasStep {
		return nil
	}
	s := r.step
	return &s
}

// SetHistory makes r the row of a decoded HistoryRecord, copying its items
// into r's own buffer (so r does not refer to h afterwards). It is how
// rows the scan declined reach the same converter as scanned ones.
func (r *Row) SetHistory(h *History) {
	r.body, r.items, r.segs = r.body[:0], r.items[:0], r.segs[:0]
	r.step, r.hasStep = 0, h.Step != nil
	if h.Step != nil {
		r.step = *h.Step
	}
	add := func(s string) span {
		r.body = append(r.body, s...)
		return span{int32(len(r.body) - len(s)), int32(len(s))}
	}
	for _, it := range h.Items {
		ri := rawItem{key: add(it.Key), lo: int32(len(r.segs))}
		for _, k := range it.NestedKey {
			r.segs = append(r.segs, add(k))
		}
		ri.hi = int32(len(r.segs))
		ri.value = add(it.ValueJSON)
		r.items = append(r.items, ri)
	}
}

// Scan reads b, the body of a HistoryRecord (the body PeekRecord returns
// for a KindHistory record), into r in place: r then views b (see Row),
// reusing r's buffers. It returns false when the body is anything Decode
// might read differently or reject, or is larger than MaxRecordSize; r is
// then not usable, and the caller must Decode the record (and may use
// SetHistory). It allocates nothing once r's buffers have grown.
func (r *Row) Scan(b []byte) bool {
	if len(b) > MaxRecordSize {
		return false // offsets are int32
	}
	r.body = b
	r.items, r.segs = r.items[:0], r.segs[:0]
	r.step, r.hasStep = 0, false
	for len(b) > 0 {
		num, typ, v, rest, ok := nextField(b)
		if !ok {
			return false
		}
		b = rest
		switch num {
		case 1:
			// v ends where rest starts, and rest ends the body.
			if typ != protowire.BytesType || !r.scanItem(v, len(r.body)-len(rest)-len(v)) {
				return false
			}
		case 2:
			if typ != protowire.BytesType || !r.scanStep(v) {
				return false
			}
		}
	}
	return true
}

// scanItem appends the HistoryItem message b, the bytes of r.body at
// offset base.
func (r *Row) scanItem(b []byte, base int) bool {
	it := rawItem{lo: int32(len(r.segs))}
	end := base + len(b) // b is always the tail of the item
	for len(b) > 0 {
		// Inline fast path for the usual fields: nested_key and key (tags
		// 0x12, 0x0a) and value_json (tag 0x82 0x01), under 128 bytes.
		if len(b) >= 3 {
			switch {
			case (b[0] == 0x12 || b[0] == 0x0a) && b[1] < 0x80 && int(b[1])+2 <= len(b):
				s := span{int32(end - len(b) + 2), int32(b[1])}
				if b[0] == 0x12 {
					r.segs = append(r.segs, s)
				} else {
					it.key = s
				}
				b = b[2+s.n:]
				continue
			case b[0] == 0x82 && b[1] == 0x01 && b[2] < 0x80 && int(b[2])+3 <= len(b):
				it.value = span{int32(end - len(b) + 3), int32(b[2])}
				b = b[3+it.value.n:]
				continue
			}
		}
		num, typ, v, rest, ok := nextField(b)
		if !ok {
			return false
		}
		b = rest
		switch num {
		case 1, 2, 16:
			if typ != protowire.BytesType {
				return false
			}
			s := span{int32(end - len(rest) - len(v)), int32(len(v))}
			switch num {
			case 1:
				it.key = s
			case 2:
				r.segs = append(r.segs, s)
			case 16:
				it.value = s
			}
		}
	}
	it.hi = int32(len(r.segs))
	r.items = append(r.items, it)
	return true
}

// scanStep reads a HistoryStep message: its last num field, 0 if none.
func (r *Row) scanStep(b []byte) bool {
	r.step, r.hasStep = 0, true
	for len(b) > 0 {
		num, typ, x, _, rest, ok := nextFieldVarint(b)
		if !ok {
			return false
		}
		if num == 1 {
			if typ != protowire.VarintType {
				return false
			}
			r.step = int64(x)
		}
		b = rest
	}
	return true
}

// CopyTo makes dst a copy of r that owns its bytes (a Row from Scan views
// the reader's buffer, valid only until the next record), reusing dst's
// buffers: a history row can then be converted later, on another
// goroutine, exactly as r would have been.
func (r *Row) CopyTo(dst *Row) {
	dst.body = append(dst.body[:0], r.body...)
	dst.items = append(dst.items[:0], r.items...)
	dst.segs = append(dst.segs[:0], r.segs...)
	dst.step, dst.hasStep = r.step, r.hasStep
}
