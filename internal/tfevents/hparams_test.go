package tfevents

import (
	"math"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func msg(fields ...func([]byte) []byte) []byte {
	var b []byte
	for _, f := range fields {
		b = f(b)
	}
	return b
}

func bytesField(num protowire.Number, v []byte) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		return protowire.AppendBytes(b, v)
	}
}

func doubleField(num protowire.Number, f float64) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.Fixed64Type)
		return protowire.AppendFixed64(b, math.Float64bits(f))
	}
}

func varintField(num protowire.Number, v uint64) func([]byte) []byte {
	return func(b []byte) []byte {
		b = protowire.AppendTag(b, num, protowire.VarintType)
		return protowire.AppendVarint(b, v)
	}
}

// TestDecodeHParams: session start values of every google.protobuf.Value
// kind become JSON (a struct's entry may give its value before its key),
// and session end keeps status and time.
func TestDecodeHParams(t *testing.T) {
	entry := func(k string, v []byte) func([]byte) []byte {
		return bytesField(1, msg(bytesField(1, []byte(k)), bytesField(2, v)))
	}
	structEntryValueFirst := msg(bytesField(2, msg(doubleField(2, 2))), bytesField(1, []byte("b")))
	value := map[string][]byte{
		"n":    msg(doubleField(2, 0.5)),
		"s":    msg(bytesField(3, []byte(`a"b`))),
		"t":    msg(varintField(4, 1)),
		"null": msg(varintField(1, 0)),
		"inf":  msg(doubleField(2, math.Inf(1))),
		"list": msg(bytesField(6, msg(bytesField(1, msg(doubleField(2, 1))), bytesField(1, msg(bytesField(3, []byte("x"))))))),
		"obj":  msg(bytesField(5, msg(bytesField(1, structEntryValueFirst)))),
	}
	var start []byte
	for _, k := range []string{"n", "s", "t", "null", "inf", "list", "obj"} {
		start = entry(k, value[k])(start)
	}
	start = bytesField(4, []byte("grp"))(start)
	start = doubleField(5, 12.5)(start)
	h, err := DecodeHParams(msg(varintField(1, 0), bytesField(3, start)))
	if err != nil {
		t.Fatal(err)
	}
	want := SessionStart{HParams: map[string]string{"n": "0.5", "s": `"a\"b"`, "t": "true", "null": "null", "inf": `"Infinity"`,
		"list": `[1,"x"]`, "obj": `{"b":2}`}, GroupName: "grp", StartTimeSecs: 12.5}
	if h.Start == nil || !reflect.DeepEqual(*h.Start, want) || h.End != nil || h.Experiment != nil {
		t.Fatalf("got %+v, want start %+v", h, want)
	}
	h, err = DecodeHParams(msg(bytesField(4, msg(varintField(1, StatusFailure), doubleField(2, 99)))))
	if err != nil || h.End == nil || *h.End != (SessionEnd{Status: StatusFailure, EndTimeSecs: 99}) {
		t.Fatalf("end: %+v %v", h.End, err)
	}
	exp := msg(bytesField(6, []byte("e")), bytesField(4, msg(bytesField(1, []byte("lr")))),
		bytesField(5, msg(bytesField(1, msg(bytesField(1, []byte("val")), bytesField(2, []byte("acc")))))))
	h, err = DecodeHParams(msg(bytesField(2, exp)))
	if err != nil || h.Experiment == nil || !reflect.DeepEqual(*h.Experiment, HPExperiment{Name: "e", HParamNames: []string{"lr"}, MetricTags: []string{"val/acc"}}) {
		t.Fatalf("experiment: %+v %v", h.Experiment, err)
	}
}
