package wandbfile

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// field is one protobuf field as read from the wire. Exactly one of the
// value members is meaningful, chosen by typ.
type field struct {
	num     protowire.Number
	typ     protowire.Type
	varint  uint64 // VarintType
	fixed   uint64 // Fixed32Type and Fixed64Type
	payload []byte // BytesType
}

// walkFields calls visit for each field of the serialized message b, in wire
// order. Groups are skipped. A malformed message, or an error from visit,
// stops the walk and is returned.
func walkFields(b []byte, visit func(f field) error) error {
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
			continue // no W&B message uses groups; skip them like unknown fields
		}
		if err := visit(f); err != nil {
			return err
		}
	}
	return nil
}

// wireTypeError reports a known field carrying an unexpected wire type.
func (f field) wireTypeError(want protowire.Type) error {
	return fmt.Errorf("field %d: wire type %d, want %d", f.num, f.typ, want)
}

// str returns a string field's bytes as a Go string (not checked for UTF-8).
func (f field) str() (string, error) {
	if f.typ != protowire.BytesType {
		return "", f.wireTypeError(protowire.BytesType)
	}
	return string(f.payload), nil
}

// message returns the serialized bytes of an embedded message field.
func (f field) message() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, f.wireTypeError(protowire.BytesType)
	}
	return f.payload, nil
}

// int64 returns an int64, int32 or enum field (proto3 varint encoding).
func (f field) int64() (int64, error) {
	if f.typ != protowire.VarintType {
		return 0, f.wireTypeError(protowire.VarintType)
	}
	return int64(f.varint), nil
}

// int32 returns an int32 or enum field. Values are truncated to 32 bits the
// way protobuf does.
func (f field) int32() (int32, error) {
	v, err := f.int64()
	return int32(v), err
}

// uint64 returns a uint32 or uint64 field.
func (f field) uint64() (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, f.wireTypeError(protowire.VarintType)
	}
	return f.varint, nil
}

// bool returns a bool field; any non-zero varint is true.
func (f field) bool() (bool, error) {
	if f.typ != protowire.VarintType {
		return false, f.wireTypeError(protowire.VarintType)
	}
	return f.varint != 0, nil
}

// double returns a double field.
func (f field) double() (float64, error) {
	if f.typ != protowire.Fixed64Type {
		return 0, f.wireTypeError(protowire.Fixed64Type)
	}
	return math.Float64frombits(f.fixed), nil
}

// timestamp decodes a google.protobuf.Timestamp field as a UTC time.
func (f field) timestamp() (time.Time, error) {
	b, err := f.message()
	if err != nil {
		return time.Time{}, err
	}
	var seconds, nanos int64
	err = walkFields(b, func(g field) error {
		var err error
		switch g.num {
		case 1:
			seconds, err = g.int64()
		case 2:
			nanos, err = g.int64()
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp: %w", err)
	}
	return time.Unix(seconds, int64(int32(nanos))).UTC(), nil
}

// appendStr decodes a repeated string field value and appends it.
func (f field) appendStr(list *[]string) error {
	s, err := f.str()
	if err != nil {
		return err
	}
	*list = append(*list, s)
	return nil
}

// setters assign a decoded value to a destination, so the per-message
// switches stay one line per field.

func (f field) setStr(dst *string) (err error)     { *dst, err = f.str(); return }
func (f field) setInt64(dst *int64) (err error)    { *dst, err = f.int64(); return }
func (f field) setInt32(dst *int32) (err error)    { *dst, err = f.int32(); return }
func (f field) setBool(dst *bool) (err error)      { *dst, err = f.bool(); return }
func (f field) setUint64(dst *uint64) (err error)  { *dst, err = f.uint64(); return }
func (f field) setDouble(dst *float64) (err error) { *dst, err = f.double(); return }
func (f field) setTime(dst *time.Time) (err error) { *dst, err = f.timestamp(); return }

// within wraps err with the name of the message it occurred in.
func within(name string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}
