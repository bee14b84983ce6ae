// Package pbwire decodes serialized protobuf messages field by field on top
// of protowire, for readers of outside formats (TensorBoard event files, W&B
// .wandb files) that have no generated code. It holds no message knowledge:
// callers switch on Field.Num and pick the accessor their schema expects.
package pbwire

import (
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field is one protobuf field as read from the wire. Which value member is
// meaningful depends on Type.
type Field struct {
	Num     protowire.Number
	Type    protowire.Type
	Varint  uint64 // VarintType
	Fixed   uint64 // Fixed32Type and Fixed64Type
	Payload []byte // BytesType: a view of the message, not a copy
}

// Walk calls visit for each field of the serialized message b, in wire
// order. Groups are skipped like unknown fields. A malformed message, or an
// error from visit, stops the walk and is returned.
func Walk(b []byte, visit func(f Field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		f := Field{Num: num, Type: typ}
		switch typ {
		case protowire.VarintType:
			f.Varint, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.Fixed = uint64(v)
		case protowire.Fixed64Type:
			f.Fixed, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			f.Payload, n = protowire.ConsumeBytes(b)
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

// WireTypeError reports a known field carrying an unexpected wire type,
// naming the field by number.
func (f Field) WireTypeError(want protowire.Type) error {
	return fmt.Errorf("field %d: wire type %d, want %d", f.Num, f.Type, want)
}

// Want checks that f has wire type t; the error names the field as what.
func (f Field) Want(t protowire.Type, what string) error {
	if f.Type != t {
		return fmt.Errorf("%s: wire type %d, want %d", what, f.Type, t)
	}
	return nil
}

// Str returns a string field's bytes as a Go string (not checked for UTF-8).
func (f Field) Str() (string, error) {
	if f.Type != protowire.BytesType {
		return "", f.WireTypeError(protowire.BytesType)
	}
	return string(f.Payload), nil
}

// Message returns the serialized bytes of an embedded message field.
func (f Field) Message() ([]byte, error) {
	if f.Type != protowire.BytesType {
		return nil, f.WireTypeError(protowire.BytesType)
	}
	return f.Payload, nil
}

// Int64 returns an int64, int32 or enum field (proto3 varint encoding).
func (f Field) Int64() (int64, error) {
	if f.Type != protowire.VarintType {
		return 0, f.WireTypeError(protowire.VarintType)
	}
	return int64(f.Varint), nil
}

// Int32 returns an int32 or enum field. Values are truncated to 32 bits the
// way protobuf does.
func (f Field) Int32() (int32, error) {
	v, err := f.Int64()
	return int32(v), err
}

// Uint64 returns a uint32 or uint64 field.
func (f Field) Uint64() (uint64, error) {
	if f.Type != protowire.VarintType {
		return 0, f.WireTypeError(protowire.VarintType)
	}
	return f.Varint, nil
}

// Bool returns a bool field; any non-zero varint is true.
func (f Field) Bool() (bool, error) {
	if f.Type != protowire.VarintType {
		return false, f.WireTypeError(protowire.VarintType)
	}
	return f.Varint != 0, nil
}

// Double returns a double field.
func (f Field) Double() (float64, error) {
	if f.Type != protowire.Fixed64Type {
		return 0, f.WireTypeError(protowire.Fixed64Type)
	}
	return math.Float64frombits(f.Fixed), nil
}

// Timestamp decodes a google.protobuf.Timestamp field as a UTC time.
func (f Field) Timestamp() (time.Time, error) {
	b, err := f.Message()
	if err != nil {
		return time.Time{}, err
	}
	var seconds, nanos int64
	err = Walk(b, func(g Field) error {
		var err error
		switch g.Num {
		case 1:
			seconds, err = g.Int64()
		case 2:
			nanos, err = g.Int64()
		}
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("timestamp: %w", err)
	}
	return time.Unix(seconds, int64(int32(nanos))).UTC(), nil
}

// AppendStr decodes one value of a repeated string field and appends it.
func (f Field) AppendStr(list *[]string) error {
	s, err := f.Str()
	if err != nil {
		return err
	}
	*list = append(*list, s)
	return nil
}

// Setters assign a decoded value to a destination, so per-message switches
// stay one line per field.

func (f Field) SetStr(dst *string) (err error)     { *dst, err = f.Str(); return }
func (f Field) SetInt64(dst *int64) (err error)    { *dst, err = f.Int64(); return }
func (f Field) SetInt32(dst *int32) (err error)    { *dst, err = f.Int32(); return }
func (f Field) SetBool(dst *bool) (err error)      { *dst, err = f.Bool(); return }
func (f Field) SetUint64(dst *uint64) (err error)  { *dst, err = f.Uint64(); return }
func (f Field) SetDouble(dst *float64) (err error) { *dst, err = f.Double(); return }
func (f Field) SetTime(dst *time.Time) (err error) { *dst, err = f.Timestamp(); return }

// Packed calls each for every element of a repeated scalar field, packed
// (BytesType) or not (one element per field, of wire type scalar). elem
// decodes one packed element from b, returning the value and bytes used
// (<0 on error); one takes the value of an unpacked field.
func Packed[T any](f Field, scalar protowire.Type, elem func(b []byte) (T, int), one func(Field) T, each func(T)) error {
	if f.Type == scalar {
		each(one(f))
		return nil
	}
	if f.Type != protowire.BytesType {
		return fmt.Errorf("field %d: wire type %d", f.Num, f.Type)
	}
	b := f.Payload
	for len(b) > 0 {
		v, n := elem(b)
		if n < 0 {
			return fmt.Errorf("field %d: %w", f.Num, protowire.ParseError(n))
		}
		each(v)
		b = b[n:]
	}
	return nil
}
