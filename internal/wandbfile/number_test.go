package wandbfile

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

// ParseScalar must give exactly what ParseValueJSON followed by ValueFloat
// and ValueInt give, wherever it accepts its input.

// scalarSeeds are value_json texts around the edges of ParseScalar.
var scalarSeeds = []string{
	"0", "-0", "1", "-1", "007", "0.5", "-0.0", ".5", "5.", "1e5", "1E+5", "1e-5", "-1.5e-300", "1e400", "-1e400",
	"1e-400", "123456789012345678", "1234567890123456789", "9223372036854775807", "9223372036854775808",
	"-9223372036854775808", "-9223372036854775809", "99999999999999999999999", "0.1", "0.30000000000000004",
	"9007199254740993", "9007199254740993.0", "1.7976931348623157e308", "4.9e-324", "2.2250738585072014e-308",
	"123.456e-7", "1e22", "1e23", "0.000000000000000000001", "12345678901234567.5", " 1 ", "\t\n2.5\r ", "1 2",
	"NaN", "Infinity", "-Infinity", "-Infinityx", "nan", "true", "false", "null", `"1"`, "[1]", `{"a":1}`, "",
	"-", "+1", "1e", "1e+", "0x10", "1_0", "Infinity ", " -Infinity", "-NaN", "1.0e+02", "00", "-01", "1.e5",
}

// sameFloat compares floats bit for bit, all NaNs equal.
func sameFloat(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// checkScalar compares ParseScalar with ParseValueJSON on s, and with
// strconv and encoding/json directly.
func checkScalar(t *testing.T, s string) {
	v := ParseScalar([]byte(s))
	checkStd(t, s, v)
	if _, ok := v.Float(); IsScalar([]byte(s)) != ok {
		t.Errorf("%q: IsScalar %v; ParseScalar kind %d, Float ok %v", s, !ok, v.Kind(), ok)
	}
	if v.Kind() == NotScalar {
		return
	}
	x, err := ParseValueJSON(s)
	if err != nil {
		t.Fatalf("%q: ParseScalar accepts it, ParseValueJSON: %v", s, err)
	}
	var kind ScalarKind
	switch x.(type) {
	case int64:
		kind = ScalarInt
	case json.Number:
		kind = ScalarBig
	case float64:
		kind = ScalarFloat
	case bool:
		kind = ScalarBool
	}
	if v.Kind() != kind {
		t.Errorf("%q: kind %d; ParseValueJSON gives %T", s, v.Kind(), x)
	}
	f1, ok1 := v.Float()
	f2, ok2 := ValueFloat(x)
	if ok1 != ok2 || !sameFloat(f1, f2) {
		t.Errorf("%q: float %v,%v; ValueFloat(ParseValueJSON) %v,%v", s, f1, ok1, f2, ok2)
	}
	n1, iok1 := v.Int()
	n2, iok2 := ValueInt(x)
	if iok1 != iok2 || n1 != n2 {
		t.Errorf("%q: integral %v,%v; want %v,%v", s, n1, iok1, n2, iok2)
	}
}

// checkStd compares v, ParseScalar's reading of s, with the standard
// library: a JSON number (encoding/json's grammar) is a scalar, and
// nothing else but NaN, ±Infinity, true and false is; an integer's value
// is strconv.ParseInt's, a float's is strconv.ParseFloat's, bit for bit.
func checkStd(t *testing.T, s string, v Scalar) {
	text := strings.Trim(s, " \t\n\r")
	number := text != "" && (text[0] == '-' || (text[0] >= '0' && text[0] <= '9')) && json.Valid([]byte(text))
	switch text {
	case "NaN", "Infinity", "-Infinity", "true", "false":
		if v.Kind() == NotScalar {
			t.Errorf("%q: not a scalar", s)
		}
		return
	}
	if number != (v.Kind() != NotScalar) {
		t.Errorf("%q: encoding/json number %v, ParseScalar kind %d", s, number, v.Kind())
		return
	}
	switch v.Kind() {
	case ScalarInt:
		n, err := strconv.ParseInt(text, 10, 64)
		if got, _ := v.Int(); err != nil || got != n {
			t.Errorf("%q: int %d; strconv.ParseInt %d, %v", s, got, n, err)
		}
	case ScalarFloat, ScalarBig:
		f, err := strconv.ParseFloat(text, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			t.Errorf("%q: strconv.ParseFloat: %v", s, err)
		}
		if got, _ := v.Float(); !sameFloat(got, f) {
			t.Errorf("%q: float %v (%#x); strconv.ParseFloat %v (%#x)", s, got, math.Float64bits(got), f, math.Float64bits(f))
		}
	}
}

func TestParseScalar(t *testing.T) {
	for _, s := range scalarSeeds {
		checkScalar(t, s)
	}
	for _, s := range []string{"0", "-84.14709848078965", "1717243200.0123", "NaN", "true", "12", "1e5"} {
		if ParseScalar([]byte(s)).Kind() == NotScalar {
			t.Errorf("%q: not simple", s)
		}
	}
}

// TestParseScalarRandom compares ParseScalar with ParseValueJSON (strconv)
// on many numbers: random float64s printed in several ways, and random
// decimal strings around the 19-digit and exponent limits of the fast
// conversions.
func TestParseScalarRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n := 100000
	if testing.Short() {
		n = 10000
	}
	var buf []byte
	for range n {
		f := math.Float64frombits(rng.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		if rng.IntN(2) == 0 { // values of a usual size
			f = (rng.Float64() - 0.5) * math.Pow(10, float64(rng.IntN(40)-20))
		}
		checkScalar(t, strconv.FormatFloat(f, 'g', -1, 64))
		checkScalar(t, strconv.FormatFloat(f, 'e', rng.IntN(22), 64))
		checkScalar(t, strconv.FormatFloat(f, 'f', rng.IntN(25), 64))
		buf = buf[:0]
		if rng.IntN(2) == 0 {
			buf = append(buf, '-')
		}
		digits := 1 + rng.IntN(24)
		point := rng.IntN(digits + 1)
		for i := range digits {
			if i == point && i > 0 {
				buf = append(buf, '.')
			}
			buf = append(buf, byte('0'+rng.IntN(10)))
		}
		if rng.IntN(2) == 0 {
			buf = strconv.AppendInt(append(buf, 'e'), int64(rng.IntN(140)-70), 10)
		}
		checkScalar(t, string(buf))
	}
}

func FuzzParseScalar(f *testing.F) {
	for _, s := range scalarSeeds {
		f.Add(s)
	}
	f.Fuzz(checkScalar)
}
