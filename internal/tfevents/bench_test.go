package tfevents

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// BenchmarkReadDecode frames and decodes 100,000 scalar events (one
// simple_value each, as tensorboardX writes them) from memory.
func BenchmarkReadDecode(b *testing.B) {
	var file []byte
	for i := range 100000 {
		var v, s, ev []byte
		v = protowire.AppendTag(v, 1, protowire.BytesType)
		v = protowire.AppendString(v, "train/loss")
		v = protowire.AppendTag(v, 2, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(float32(i)))
		s = protowire.AppendTag(s, 1, protowire.BytesType)
		s = protowire.AppendBytes(s, v)
		ev = protowire.AppendTag(ev, 1, protowire.Fixed64Type)
		ev = binary.LittleEndian.AppendUint64(ev, math.Float64bits(1.75e9+float64(i)))
		ev = protowire.AppendTag(ev, 2, protowire.VarintType)
		ev = protowire.AppendVarint(ev, uint64(i))
		ev = protowire.AppendTag(ev, 5, protowire.BytesType)
		ev = protowire.AppendBytes(ev, s)
		file = AppendRecord(file, ev)
	}
	b.SetBytes(int64(len(file)))
	b.ReportAllocs()
	var e Event
	for b.Loop() {
		r := NewReader(bytes.NewReader(file), "bench")
		var sum float64
		for {
			data, _, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err := DecodeEvent(data, &e); err != nil {
				b.Fatal(err)
			}
			sum += float64(e.Values[0].Simple)
		}
		if sum == 0 {
			b.Fatal("nothing read")
		}
	}
}
