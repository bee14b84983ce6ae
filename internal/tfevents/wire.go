package tfevents

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one protobuf field as read from the wire; which value member is
// meaningful depends on typ.
type field struct {
	num     protowire.Number
	typ     protowire.Type
	varint  uint64 // VarintType
	fixed   uint64 // Fixed32Type and Fixed64Type
	payload []byte // BytesType: a view of the message
}

// walk calls visit for each field of the serialized message b in wire
// order; groups are skipped. A malformed message, or visit's error, stops
// the walk and is returned.
func walk(b []byte, visit func(f field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.fixed = uint64(v)
		case protowire.Fixed64Type:
			f.fixed, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.payload, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := visit(f); err != nil {
			return err
		}
	}
	return nil
}

// want checks that f has wire type t.
func want(f field, t protowire.Type, what string) error {
	if f.typ != t {
		return fmt.Errorf("%s: wire type %d, want %d", what, f.typ, t)
	}
	return nil
}

// packed calls each for every element of a repeated scalar field, packed
// (BytesType) or not (one element per field). elem decodes one element
// from b, returning the value and bytes used (<0 on error).
func packed[T any](f field, scalar protowire.Type, elem func(b []byte) (T, int), one func(field) T, each func(T)) error {
	if f.typ == scalar {
		each(one(f))
		return nil
	}
	if f.typ != protowire.BytesType {
		return fmt.Errorf("field %d: wire type %d", f.num, f.typ)
	}
	b := f.payload
	for len(b) > 0 {
		v, n := elem(b)
		if n < 0 {
			return fmt.Errorf("field %d: %w", f.num, protowire.ParseError(n))
		}
		each(v)
		b = b[n:]
	}
	return nil
}
