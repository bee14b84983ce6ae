package tfevents

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/runferry/runferry/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// DataType values of tensorboard.DataType that this package reads.
const (
	DTFloat    = 1
	DTDouble   = 2
	DTInt32    = 3
	DTUint8    = 4
	DTInt16    = 5
	DTInt8     = 6
	DTString   = 7
	DTInt64    = 9
	DTBool     = 10
	DTBfloat16 = 14
	DTUint16   = 17
	DTHalf     = 19
	DTUint32   = 22
	DTUint64   = 23
)

// Tensor is a decoded TensorProto holding numbers or strings. Numbers are
// widened to float64 in row-major order; Strings are views of the record.
type Tensor struct {
	DType   int
	Shape   []int64
	Numbers []float64
	Strings [][]byte
}

// Len is the number of elements the shape holds (1 for a scalar).
func (t Tensor) Len() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Scalar returns the value of a numeric tensor holding one element.
func (t Tensor) Scalar() (float64, bool) {
	if t.Len() != 1 || len(t.Numbers) != 1 {
		return 0, false
	}
	return t.Numbers[0], true
}

// elemSize is the byte size of a numeric dtype in tensor_content, 0 if
// this package does not read it.
func elemSize(dt int) int {
	switch dt {
	case DTFloat, DTInt32, DTUint32:
		return 4
	case DTDouble, DTInt64, DTUint64:
		return 8
	case DTHalf, DTBfloat16, DTInt16, DTUint16:
		return 2
	case DTInt8, DTUint8, DTBool:
		return 1
	}
	return 0
}

// fromBits widens one little-endian element of dtype dt.
func fromBits(dt int, b []byte) float64 {
	switch dt {
	case DTFloat:
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b)))
	case DTDouble:
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	case DTInt32:
		return float64(int32(binary.LittleEndian.Uint32(b)))
	case DTUint32:
		return float64(binary.LittleEndian.Uint32(b))
	case DTInt64:
		return float64(int64(binary.LittleEndian.Uint64(b)))
	case DTUint64:
		return float64(binary.LittleEndian.Uint64(b))
	case DTHalf:
		return Half(binary.LittleEndian.Uint16(b))
	case DTBfloat16:
		return float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b)) << 16))
	case DTInt16:
		return float64(int16(binary.LittleEndian.Uint16(b)))
	case DTUint16:
		return float64(binary.LittleEndian.Uint16(b))
	case DTInt8:
		return float64(int8(b[0]))
	case DTUint8:
		return float64(b[0])
	case DTBool:
		if b[0] != 0 {
			return 1
		}
		return 0
	}
	return math.NaN()
}

// Half widens an IEEE 754 half-precision number.
func Half(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	frac := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 0x1f:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(1+frac/1024, exp-15)
}

// DecodeTensor decodes a serialized TensorProto. Values come from
// tensor_content when it is set, else from the typed repeated fields. A
// dtype this package does not read (complex, quantized, resource,
// variant) is an error naming it.
func DecodeTensor(b []byte) (Tensor, error) {
	var t Tensor
	var content []byte
	var hasContent bool
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			t.DType = int(f.Varint)
		case 2:
			if err := f.Want(protowire.BytesType, "tensor_shape"); err != nil {
				return err
			}
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num != 2 || f.Type != protowire.BytesType {
					return nil
				}
				var size int64
				if err := pbwire.Walk(f.Payload, func(f pbwire.Field) error {
					if f.Num == 1 && f.Type == protowire.VarintType {
						size = int64(f.Varint)
					}
					return nil
				}); err != nil {
					return err
				}
				t.Shape = append(t.Shape, size)
				return nil
			})
		case 4:
			if err := f.Want(protowire.BytesType, "tensor_content"); err != nil {
				return err
			}
			content, hasContent = f.Payload, true
		case 5: // float_val
			return pbwire.Packed(f, protowire.Fixed32Type, protowire.ConsumeFixed32, func(f pbwire.Field) uint32 { return uint32(f.Fixed) },
				func(v uint32) { t.Numbers = append(t.Numbers, float64(math.Float32frombits(v))) })
		case 6: // double_val
			return pbwire.Packed(f, protowire.Fixed64Type, protowire.ConsumeFixed64, func(f pbwire.Field) uint64 { return f.Fixed },
				func(v uint64) { t.Numbers = append(t.Numbers, math.Float64frombits(v)) })
		case 7, 10, 11, 13, 16, 17: // int_val, int64_val, bool_val, half_val, uint32_val, uint64_val
			num, dt := f.Num, t.DType
			return pbwire.Packed(f, protowire.VarintType, protowire.ConsumeVarint, func(f pbwire.Field) uint64 { return f.Varint },
				func(v uint64) { t.Numbers = append(t.Numbers, varintNumber(num, dt, v)) })
		case 8:
			if err := f.Want(protowire.BytesType, "string_val"); err != nil {
				return err
			}
			t.Strings = append(t.Strings, f.Payload)
		}
		return nil
	})
	if err != nil {
		return Tensor{}, err
	}
	if t.DType == DTString {
		t.Numbers = nil
		return t, nil
	}
	size := elemSize(t.DType)
	if size == 0 {
		return Tensor{}, fmt.Errorf("tensor dtype %d is not read", t.DType)
	}
	if hasContent {
		if len(content)%size != 0 {
			return Tensor{}, fmt.Errorf("tensor_content of %d bytes for elements of %d", len(content), size)
		}
		t.Numbers = t.Numbers[:0]
		for i := 0; i < len(content); i += size {
			t.Numbers = append(t.Numbers, fromBits(t.DType, content[i:i+size]))
		}
	}
	// TensorFlow stores one value for a tensor whose elements are all equal.
	if n := t.Len(); len(t.Numbers) == 1 && n > 1 && n < 1<<20 {
		for int64(len(t.Numbers)) < n {
			t.Numbers = append(t.Numbers, t.Numbers[0])
		}
	}
	if int64(len(t.Numbers)) != t.Len() {
		return Tensor{}, fmt.Errorf("tensor of shape %v holds %d values", t.Shape, len(t.Numbers))
	}
	return t, nil
}

// varintNumber converts one varint element of the repeated field num.
func varintNumber(num protowire.Number, dt int, v uint64) float64 {
	switch num {
	case 7: // int_val: int32 (also int8/16, uint8/16)
		return float64(int32(v))
	case 10:
		return float64(int64(v))
	case 11:
		if v != 0 {
			return 1
		}
		return 0
	case 13: // half_val: half bits (or bfloat16 bits) in an int32
		if dt == DTBfloat16 {
			return float64(math.Float32frombits(uint32(uint16(v)) << 16))
		}
		return Half(uint16(v))
	case 16:
		return float64(uint32(v))
	}
	return float64(v)
}

// ScalarTensor is DecodeTensor's fast path for a tensor holding one
// number (shape [] or all dimensions 1), the TF2 scalar summary: it
// allocates nothing. ok is false for anything else (strings, several
// elements, dtypes not read, malformed input); DecodeTensor then says
// what it holds. Where ok, v equals DecodeTensor's only number.
func ScalarTensor(b []byte) (v float64, dtype int, ok bool) {
	var content []byte
	var hasContent, hasValue, bad bool
	count := 0
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			dtype = int(f.Varint)
		case 2:
			if f.Type != protowire.BytesType {
				bad = true
				return nil
			}
			return pbwire.Walk(f.Payload, func(f pbwire.Field) error {
				if f.Num != 2 || f.Type != protowire.BytesType {
					return nil
				}
				var size int64
				err := pbwire.Walk(f.Payload, func(f pbwire.Field) error {
					if f.Num == 1 && f.Type == protowire.VarintType {
						size = int64(f.Varint)
					}
					return nil
				})
				if size != 1 {
					bad = true
				}
				return err
			})
		case 4:
			if f.Type != protowire.BytesType {
				bad = true
				return nil
			}
			content, hasContent = f.Payload, true
		case 5:
			if f.Type == protowire.Fixed32Type {
				v, hasValue = float64(math.Float32frombits(uint32(f.Fixed))), true
				count++
			} else if f.Type == protowire.BytesType && len(f.Payload) == 4 {
				v, hasValue = float64(math.Float32frombits(binary.LittleEndian.Uint32(f.Payload))), true
				count++
			} else {
				bad = true
			}
		case 6:
			if f.Type == protowire.Fixed64Type {
				v, hasValue = math.Float64frombits(f.Fixed), true
				count++
			} else if f.Type == protowire.BytesType && len(f.Payload) == 8 {
				v, hasValue = math.Float64frombits(binary.LittleEndian.Uint64(f.Payload)), true
				count++
			} else {
				bad = true
			}
		case 7, 10, 11, 13, 16, 17:
			x := f.Varint
			if f.Type == protowire.BytesType {
				var n int
				x, n = protowire.ConsumeVarint(f.Payload)
				if n < 0 || n != len(f.Payload) {
					bad = true
					return nil
				}
			} else if f.Type != protowire.VarintType {
				bad = true
				return nil
			}
			v, hasValue = varintNumber(f.Num, dtype, x), true
			count++
		case 8:
			bad = true
		}
		return nil
	})
	if err != nil || bad || dtype == DTString {
		return 0, dtype, false
	}
	size := elemSize(dtype)
	switch {
	case size == 0:
		return 0, dtype, false
	case hasContent:
		if len(content) != size {
			return 0, dtype, false
		}
		return fromBits(dtype, content), dtype, true
	case hasValue && count == 1:
		return v, dtype, true
	}
	return 0, dtype, false
}
