package tfevents

import (
	"fmt"
	"math"

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
	err := walk(b, func(f field) error {
		switch f.num {
		case 1:
			im.Height = int(int32(f.varint))
		case 2:
			im.Width = int(int32(f.varint))
		case 3:
			im.Colorspace = int(int32(f.varint))
		case 4:
			if err := want(f, protowire.BytesType, "encoded_image_string"); err != nil {
				return err
			}
			im.Encoded = f.payload
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
	err := walk(b, func(f field) error {
		if f.num >= 1 && f.num <= 5 {
			if err := want(f, protowire.Fixed64Type, "histogram"); err != nil {
				return err
			}
			v := math.Float64frombits(f.fixed)
			switch f.num {
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
		switch f.num {
		case 6:
			dst = &h.BucketLimit
		case 7:
			dst = &h.Bucket
		default:
			return nil
		}
		return packed(f, protowire.Fixed64Type, protowire.ConsumeFixed64, func(f field) uint64 { return f.fixed },
			func(v uint64) { *dst = append(*dst, math.Float64frombits(v)) })
	})
	if err == nil && len(h.BucketLimit) != len(h.Bucket) {
		err = fmt.Errorf("histogram has %d bucket limits and %d buckets", len(h.BucketLimit), len(h.Bucket))
	}
	return h, err
}
