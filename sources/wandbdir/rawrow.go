package wandbdir

import (
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/runferry/runferry/internal/wandbfile"
)

// span is a part of a rawRow's body: the bytes body[off:off+n]. Rows keep
// offsets rather than slices so that their buffers hold no pointers, which
// spares the garbage collector's write barriers in the hottest loop.
type span struct{ off, n int32 }

// rawItem is one HistoryItem of a rawRow: key (field 1), nested_key (field
// 2, the segments segs[lo:hi] of the row) and value_json (field 16), each
// the last one written, as Decode keeps them.
type rawItem struct {
	key, value span
	lo, hi     int32
}

// rawRow is one HistoryRecord scanned in place. It views the payload of the
// record and is reused for the next row: handlers must copy what they keep.
type rawRow struct {
	body    []byte
	items   []rawItem
	segs    []span
	step    int64 // HistoryRecord.step.num
	hasStep bool  // the record has a step field
}

// bytes returns the bytes of s.
func (r *rawRow) bytes(s span) []byte { return r.body[s.off : s.off+s.n] }

// path returns the key path of item i as spans: its nested_key segments
// when there are any, else its key, as wandbfile.Item.Path does. one is
// storage for the single-segment case.
func (r *rawRow) path(i int, one *[1]span) []span {
	it := &r.items[i]
	if it.hi > it.lo {
		return r.segs[it.lo:it.hi]
	}
	one[0] = it.key
	return one[:]
}

// isKey reports whether item i's path is the single segment name.
func (r *rawRow) isKey(i int, name string) bool {
	it := &r.items[i]
	switch it.hi - it.lo {
	case 0:
		return string(r.bytes(it.key)) == name
	case 1:
		return string(r.bytes(r.segs[it.lo])) == name
	}
	return false
}

// wandbItems converts the row into the items Decode would have given.
func (r *rawRow) wandbItems() []wandbfile.Item {
	out := make([]wandbfile.Item, len(r.items))
	for i, it := range r.items {
		out[i] = wandbfile.Item{Key: string(r.bytes(it.key)), ValueJSON: string(r.bytes(it.value))}
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

// recStep returns HistoryRecord.step as histRow carries it.
func (r *rawRow) recStep() *int64 {
	if !r.hasStep {
		return nil
	}
	s := r.step
	return &s
}

// scanHistory scans the body of a HistoryRecord into r, reusing its
// buffers. It returns false when the body is anything Decode might read
// differently or reject (see peekRecord); r is then not usable.
func (r *rawRow) scanHistory(b []byte) bool {
	if len(b) > wandbfile.MaxRecordSize {
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
func (r *rawRow) scanItem(b []byte, base int) bool {
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
func (r *rawRow) scanStep(b []byte) bool {
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
