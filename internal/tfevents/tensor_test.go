package tfevents

import (
	"encoding/binary"
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestHalf(t *testing.T) {
	for bits, want := range map[uint16]float64{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x3555: 0.333251953125, 0x7bff: 65504,
		0x0001: math.Ldexp(1, -24), 0x7c00: math.Inf(1), 0xfc00: math.Inf(-1),
	} {
		if got := Half(bits); got != want {
			t.Errorf("Half(%#04x) = %v, want %v", bits, got, want)
		}
	}
	if !math.IsNaN(Half(0x7e00)) {
		t.Error("Half(0x7e00) is not NaN")
	}
}

// tensorProto builds a TensorProto: dtype, shape, then the raw fields.
func tensorProto(dtype int, shape []int64, fields ...func([]byte) []byte) []byte {
	var b, sh []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(dtype))
	for _, d := range shape {
		var dim []byte
		dim = protowire.AppendTag(dim, 1, protowire.VarintType)
		dim = protowire.AppendVarint(dim, uint64(d))
		sh = protowire.AppendTag(sh, 2, protowire.BytesType)
		sh = protowire.AppendBytes(sh, dim)
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, sh)
	for _, f := range fields {
		b = f(b)
	}
	return b
}

func TestDecodeTensor(t *testing.T) {
	content := func(c []byte) func([]byte) []byte {
		return func(b []byte) []byte {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			return protowire.AppendBytes(b, c)
		}
	}
	packedVarints := func(num protowire.Number, vs ...uint64) func([]byte) []byte {
		return func(b []byte) []byte {
			var p []byte
			for _, v := range vs {
				p = protowire.AppendVarint(p, v)
			}
			b = protowire.AppendTag(b, num, protowire.BytesType)
			return protowire.AppendBytes(b, p)
		}
	}
	le64 := binary.LittleEndian.AppendUint64(nil, math.Float64bits(2.5))
	for name, tc := range map[string]struct {
		proto []byte
		want  []float64
	}{
		"double content":         {tensorProto(DTDouble, nil, content(le64)), []float64{2.5}},
		"int64 val":              {tensorProto(DTInt64, nil, packedVarints(10, uint64(1<<62))), []float64{1 << 62}},
		"negative int32 val":     {tensorProto(DTInt32, nil, packedVarints(7, uint64(0xffffffffffffffff))), []float64{-1}},
		"half val":               {tensorProto(DTHalf, nil, packedVarints(13, 0x3c00)), []float64{1}},
		"bfloat16 val":           {tensorProto(DTBfloat16, nil, packedVarints(13, 0x3fc0)), []float64{1.5}},
		"bool content":           {tensorProto(DTBool, []int64{2}, content([]byte{1, 0})), []float64{1, 0}},
		"one value fills shape":  {tensorProto(DTInt64, []int64{3}, packedVarints(10, 4)), []float64{4, 4, 4}},
		"uint8 content, 2x2":     {tensorProto(DTUint8, []int64{2, 2}, content([]byte{1, 2, 3, 255})), []float64{1, 2, 3, 255}},
		"half content":           {tensorProto(DTHalf, nil, content([]byte{0x00, 0xc0})), []float64{-2}},
		"empty shape, no values": {tensorProto(DTFloat, []int64{0}), nil},
	} {
		got, err := DecodeTensor(tc.proto)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got.Numbers, tc.want) {
			t.Errorf("%s: %v, want %v", name, got.Numbers, tc.want)
		}
	}
	if _, err := DecodeTensor(tensorProto(8, nil, content(make([]byte, 8)))); err == nil || err.Error() != "tensor dtype 8 is not read" {
		t.Errorf("complex64: err %v", err)
	}
	if _, err := DecodeTensor(tensorProto(DTFloat, []int64{3}, content(make([]byte, 8)))); err == nil {
		t.Error("a shape of 3 holding 2 values decodes")
	}
}

// checkScalarTensor: where ScalarTensor accepts b, DecodeTensor decodes it
// to the same single number.
func checkScalarTensor(t *testing.T, b []byte) {
	t.Helper()
	v, dt, ok := ScalarTensor(b)
	full, err := DecodeTensor(b)
	if !ok {
		return
	}
	f, isScalar := full.Scalar()
	if err != nil || !isScalar || math.Float64bits(f) != math.Float64bits(v) || full.DType != dt {
		t.Fatalf("ScalarTensor(%x) = %v, %d; DecodeTensor = %+v, %v", b, v, dt, full, err)
	}
}

// FuzzScalarTensor: the fast path never disagrees with DecodeTensor.
func FuzzScalarTensor(f *testing.F) {
	le := func(v uint32) func([]byte) []byte {
		return func(b []byte) []byte {
			b = protowire.AppendTag(b, 4, protowire.BytesType)
			return protowire.AppendBytes(b, binary.LittleEndian.AppendUint32(nil, v))
		}
	}
	f.Add(tensorProto(DTFloat, nil, le(math.Float32bits(1.5))))
	f.Add(tensorProto(DTFloat, []int64{1, 1}, le(math.Float32bits(-2))))
	f.Add(tensorProto(DTInt32, []int64{0}, le(7)))
	f.Add(tensorProto(DTHalf, nil, func(b []byte) []byte {
		b = protowire.AppendTag(b, 13, protowire.VarintType)
		return protowire.AppendVarint(b, 0x3c00)
	}))
	f.Fuzz(func(t *testing.T, b []byte) { checkScalarTensor(t, b) })
}

func TestScalarTensor(t *testing.T) {
	le := func(b []byte) []byte {
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		return protowire.AppendBytes(b, binary.LittleEndian.AppendUint32(nil, math.Float32bits(1.5)))
	}
	for name, tc := range map[string]struct {
		proto []byte
		ok    bool
	}{
		"scalar":            {tensorProto(DTFloat, nil, le), true},
		"shape 1x1":         {tensorProto(DTFloat, []int64{1, 1}, le), true},
		"shape 0":           {tensorProto(DTFloat, []int64{0}, le), false},
		"shape 2":           {tensorProto(DTFloat, []int64{2}, le), false},
		"string":            {tensorProto(DTString, nil), false},
		"complex, not read": {tensorProto(8, nil, le), false},
	} {
		_, _, ok := ScalarTensor(tc.proto)
		if ok != tc.ok {
			t.Errorf("%s: ok %v, want %v", name, ok, tc.ok)
		}
		checkScalarTensor(t, tc.proto)
	}
}
