package pbwire

import (
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// message builds a serialized message holding one field of every wire type
// Walk reports, plus a group it must skip.
func message() []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 300)
	b = protowire.AppendTag(b, 2, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, math.Float32bits(1.5))
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(-2.25))
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	b = protowire.AppendString(b, "hi")
	b = protowire.AppendTag(b, 5, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 5, protowire.EndGroupType)
	return b
}

func TestWalk(t *testing.T) {
	var got []Field
	if err := Walk(message(), func(f Field) error { got = append(got, f); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []Field{
		{Num: 1, Type: protowire.VarintType, Varint: 300},
		{Num: 2, Type: protowire.Fixed32Type, Fixed: uint64(math.Float32bits(1.5))},
		{Num: 3, Type: protowire.Fixed64Type, Fixed: math.Float64bits(-2.25)},
		{Num: 4, Type: protowire.BytesType, Payload: []byte("hi")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Walk fields = %+v, want %+v", got, want)
	}
}

func TestWalkErrors(t *testing.T) {
	b := message()
	for cut := 1; cut < len(b); cut++ {
		err := Walk(b[:cut], func(Field) error { return nil })
		// Cuts at a field boundary are whole, shorter messages.
		if err != nil && !strings.Contains(err.Error(), "field") {
			t.Errorf("cut at %d: error %q names no field", cut, err)
		}
	}
	if err := Walk(b[:len(b)-1], func(Field) error { return nil }); err == nil {
		t.Error("a message cut inside its group decoded without error")
	}
}

func TestAccessors(t *testing.T) {
	var ts []byte
	ts = protowire.AppendTag(ts, 1, protowire.VarintType)
	ts = protowire.AppendVarint(ts, 1700000000)
	ts = protowire.AppendTag(ts, 2, protowire.VarintType)
	ts = protowire.AppendVarint(ts, 5)
	tsField := Field{Num: 9, Type: protowire.BytesType, Payload: ts}
	got, err := tsField.Timestamp()
	if want := time.Unix(1700000000, 5).UTC(); err != nil || !got.Equal(want) {
		t.Errorf("Timestamp = %v, %v; want %v", got, err, want)
	}
	neg := Field{Num: 1, Type: protowire.VarintType, Varint: math.MaxUint64}
	if v, err := neg.Int32(); v != -1 || err != nil {
		t.Errorf("Int32 = %d, %v; want -1", v, err)
	}
	if _, err := neg.Str(); err == nil || err.Error() != "field 1: wire type 0, want 2" {
		t.Errorf("Str on a varint: %v", err)
	}
	if err := neg.Want(protowire.Fixed64Type, "wall_time"); err == nil || err.Error() != "wall_time: wire type 0, want 1" {
		t.Errorf("Want: %v", err)
	}
}

func TestPacked(t *testing.T) {
	var payload []byte
	for _, v := range []uint64{1, 2, 1 << 40} {
		payload = protowire.AppendVarint(payload, v)
	}
	var got []uint64
	each := func(v uint64) { got = append(got, v) }
	one := func(f Field) uint64 { return f.Varint }
	if err := Packed(Field{Num: 3, Type: protowire.BytesType, Payload: payload}, protowire.VarintType, protowire.ConsumeVarint, one, each); err != nil {
		t.Fatal(err)
	}
	if err := Packed(Field{Num: 3, Type: protowire.VarintType, Varint: 9}, protowire.VarintType, protowire.ConsumeVarint, one, each); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1, 2, 1 << 40, 9}; !reflect.DeepEqual(got, want) {
		t.Errorf("Packed = %v, want %v", got, want)
	}
	bad := Field{Num: 3, Type: protowire.BytesType, Payload: []byte{0x80}}
	if err := Packed(bad, protowire.VarintType, protowire.ConsumeVarint, one, each); err == nil {
		t.Error("a truncated packed varint decoded without error")
	}
}

// FuzzWalk checks that Walk never panics on outside bytes and that every
// field it reports lies within the message.
func FuzzWalk(f *testing.F) {
	f.Add(message())
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = Walk(b, func(g Field) error {
			if len(g.Payload) > len(b) {
				t.Fatalf("field %d payload of %d bytes from a %d-byte message", g.Num, len(g.Payload), len(b))
			}
			_, _ = g.Timestamp()
			return nil
		})
	})
}
