package wandbfile

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// The zero-copy scanner: PeekRecord, Row and RowConverter.
//
// History rows are nearly all of a log's bytes, and most of them hold only
// numbers; decoding each one into Items (a string per key and value) and
// parsing every value into an interface costs far more than the framing.
// So a reader looks at each record's wire bytes first (PeekRecord), skips
// records it does not want without decoding them, scans history records
// in place (Row.Scan) into a view of the payload, and converts rows of
// numbers into metric points without allocating (RowConverter).
//
// The scanner never decides anything on its own when the bytes are
// unusual: whatever it does not fully understand (a malformed or oddly
// typed field, a protobuf group, several record types in one record, an
// unknown record type) is left to Decode, and rows holding anything but
// numbers and booleans to ConvertValues. So a record the scanner accepts
// is one Decode decodes without error, into the items the scan saw, and a
// row RowConverter converts on its fast path converts exactly as
// ConvertValues converts it (FuzzScan and the tests on real logs compare
// the two).

// PeekRecord looks at the top-level fields of a record payload, without
// copying or allocating. ok is true when the record is well formed,
// carries exactly one record type field and that type is a known one, with
// the wire types Decode expects for it and for num, control and uuid; kind
// is then the record type and body its message bytes, a subslice of p
// (valid as long as p is). Otherwise the caller must use Decode, which
// names what is wrong.
func PeekRecord(p []byte) (kind Kind, body []byte, ok bool) {
	seen := false
	for len(p) > 0 {
		num, typ, v, rest, valid := nextField(p)
		if !valid {
			return 0, nil, false
		}
		p = rest
		switch num {
		case 1: // num
			if typ != protowire.VarintType {
				return 0, nil, false
			}
		case 16: // control
			if typ != protowire.BytesType || !controlOK(v) {
				return 0, nil, false
			}
		case 19: // uuid
			if typ != protowire.BytesType {
				return 0, nil, false
			}
		case 200: // _info, ignored by Decode
		default:
			k := Kind(num)
			if seen || !k.Known() || typ != protowire.BytesType {
				return 0, nil, false
			}
			seen, kind, body = true, k, v
		}
	}
	return kind, body, seen
}

// controlOK reports whether a Record.control message decodes: well formed,
// with its field 2 (local) a varint.
func controlOK(b []byte) bool {
	for len(b) > 0 {
		num, typ, _, rest, ok := nextField(b)
		if !ok || (num == 2 && typ != protowire.VarintType) {
			return false
		}
		b = rest
	}
	return true
}

// nextField reads one field off the front of b: its number, wire type, the
// bytes of a length-delimited value (nil for other types) and the rest of
// b. ok is false for malformed bytes and for groups, which the fast path
// leaves to Decode.
func nextField(b []byte) (num protowire.Number, typ protowire.Type, v, rest []byte, ok bool) {
	num, typ, _, v, rest, ok = nextFieldVarint(b)
	return
}

// nextFieldVarint is nextField also returning the value of a varint field.
func nextFieldVarint(b []byte) (num protowire.Number, typ protowire.Type, x uint64, v, rest []byte, ok bool) {
	// Fast path: a length-delimited field with a tag of one or two bytes
	// (field numbers up to 2047) and a length of one byte, the shape of
	// nearly every field of a history row.
	if len(b) >= 3 {
		tag, n := uint64(b[0]), 1
		if tag >= 0x80 && b[1] < 0x80 {
			tag, n = tag&0x7f|uint64(b[1])<<7, 2
		}
		if tag < 0x80 || n == 2 {
			if l := int(b[n]); tag&7 == uint64(protowire.BytesType) && tag>>3 != 0 && l < 0x80 && n+1+l <= len(b) {
				return protowire.Number(tag >> 3), protowire.BytesType, 0, b[n+1 : n+1+l], b[n+1+l:], true
			}
		}
	}
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		return 0, 0, 0, nil, nil, false
	}
	b = b[n:]
	switch typ {
	case protowire.VarintType:
		x, n = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		_, n = protowire.ConsumeFixed32(b)
	case protowire.Fixed64Type:
		_, n = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		v, n = protowire.ConsumeBytes(b)
	default:
		return 0, 0, 0, nil, nil, false
	}
	if n < 0 {
		return 0, 0, 0, nil, nil, false
	}
	return num, typ, x, v, b[n:], true
}
