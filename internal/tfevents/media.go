package tfevents

import (
	"fmt"
	"math"

	"github.com/runferry/runferry/internal/pbwire"
	"google.golang.org/protobuf/encoding/protowire"
)

// Image is a decoded Summary.Image.
type Image struct {
	Height, Width, Colorspace int
	Encoded                   []byte // PNG (or JPEG, GIF) bytes: a view of the record
}

// DecodeImage decodes a serialized Summary.Image.
func DecodeImage(b []byte) (Image, error) {
	var im Image
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		switch f.Num {
		case 1:
			im.Height = int(int32(f.Varint))
		case 2:
			im.Width = int(int32(f.Varint))
		case 3:
			im.Colorspace = int(int32(f.Varint))
		case 4:
			if err := f.Want(protowire.BytesType, "encoded_image_string"); err != nil {
				return err
			}
			im.Encoded = f.Payload
		}
		return nil
	})
	return im, err
}

// Histogram is a decoded HistogramProto: bucket i counts the values in
// (BucketLimit[i-1], BucketLimit[i]].
type Histogram struct {
	Min, Max, Num, Sum, SumSquares float64
	BucketLimit, Bucket            []float64
}

// DecodeHistogram decodes a serialized HistogramProto.
func DecodeHistogram(b []byte) (Histogram, error) {
	var h Histogram
	err := pbwire.Walk(b, func(f pbwire.Field) error {
		if f.Num >= 1 && f.Num <= 5 {
			if err := f.Want(protowire.Fixed64Type, "histogram"); err != nil {
				return err
			}
			v := math.Float64frombits(f.Fixed)
			switch f.Num {
			case 1:
				h.Min = v
			case 2:
				h.Max = v
			case 3:
				h.Num = v
			case 4:
				h.Sum = v
			case 5:
				h.SumSquares = v
			}
			return nil
		}
		var dst *[]float64
		switch f.Num {
		case 6:
			dst = &h.BucketLimit
		case 7:
			dst = &h.Bucket
		default:
			return nil
		}
		return pbwire.Packed(f, protowire.Fixed64Type, protowire.ConsumeFixed64, func(f pbwire.Field) uint64 { return f.Fixed },
			func(v uint64) { *dst = append(*dst, math.Float64frombits(v)) })
	})
	if err == nil && len(h.BucketLimit) != len(h.Bucket) {
		err = fmt.Errorf("histogram has %d bucket limits and %d buckets", len(h.BucketLimit), len(h.Bucket))
	}
	return h, err
}
