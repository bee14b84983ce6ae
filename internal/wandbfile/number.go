package wandbfile

import (
	"errors"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"sync"
)

// The number parsing of the scanner (see scan.go). Nearly every history
// value is a bare number; ParseScalar reads one from the bytes of a
// value_json without allocating, and gives exactly what ParseValueJSON
// followed by ValueFloat or ValueInt gives for the same text (the
// equivalence tests and FuzzParseScalar compare them bit for bit).

// ScalarKind says what ParseScalar found.
type ScalarKind uint8

// The kinds of Scalar.
const (
	NotScalar   ScalarKind = iota // anything else: leave it to ParseValueJSON
	ScalarInt                     // an integer literal that fits in int64
	ScalarBig                     // an integer literal beyond int64 (json.Number)
	ScalarFloat                   // any other number, NaN or ±Infinity
	ScalarBool                    // true or false
)

// Scalar is a value_json that is a bare number or boolean, parsed
// without allocating. It stands for what ParseValueJSON returns for the
// same text: int64 (ScalarInt), json.Number (ScalarBig), float64
// (ScalarFloat) or bool (ScalarBool). The zero Scalar is NotScalar.
type Scalar struct {
	kind ScalarKind
	i    int64   // ScalarInt; ScalarBool: 1 for true
	f    float64 // ScalarFloat; ScalarBig: the literal as a float
	ok   bool    // ScalarBig: ValueFloat accepts the literal
}

// ParseScalar parses b when it is a number, NaN, ±Infinity, true or false,
// surrounded by optional JSON white space, following ParseValueJSON's
// grammar. Everything else, and everything ParseValueJSON would reject,
// is NotScalar: the caller then parses the text with ParseValueJSON. It
// does not keep b and does not allocate, except for numbers of more than
// 19 significant digits (strconv decides those).
func ParseScalar(b []byte) Scalar {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return Scalar{}
	}
	if c := b[0]; c != '-' && (c < '0' || c > '9') {
		switch string(b) {
		case "NaN":
			return Scalar{kind: ScalarFloat, f: math.NaN()}
		case "Infinity":
			return Scalar{kind: ScalarFloat, f: math.Inf(1)}
		case "true":
			return Scalar{kind: ScalarBool, i: 1}
		case "false":
			return Scalar{kind: ScalarBool}
		}
		return Scalar{}
	}
	if string(b) == "-Infinity" {
		return Scalar{kind: ScalarFloat, f: math.Inf(-1)}
	}
	return parseNumber(b)
}

// IsScalar reports whether ParseScalar(b) is a scalar (Kind() !=
// NotScalar) whose Float is ok, checking only the text's grammar: it
// converts no number, for passes that need to know a row holds only
// numbers and booleans but not their values. (Every JSON number ParseScalar
// accepts has a float value: strconv rounds what does not fit to ±Inf.)
func IsScalar(b []byte) bool {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return false
	}
	if c := b[0]; c != '-' && (c < '0' || c > '9') {
		switch string(b) {
		case "NaN", "Infinity", "true", "false":
			return true
		}
		return false
	}
	if string(b) == "-Infinity" {
		return true
	}
	return numberSyntax(b)
}

// numberSyntax reports whether b is exactly one JSON number: the grammar
// parseNumber accepts.
func numberSyntax(b []byte) bool {
	i := 0
	if b[0] == '-' {
		i++
	}
	digits := func() int {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - start
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		digits()
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(b)
}

// isSpace reports JSON white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// Kind says what the value is.
func (v Scalar) Kind() ScalarKind { return v.kind }

// Float is ValueFloat of the value ParseValueJSON gives for the same text:
// the metric value of a number or boolean. ok is false for NotScalar.
func (v Scalar) Float() (float64, bool) {
	switch v.kind {
	case ScalarInt, ScalarBool:
		return float64(v.i), true
	case ScalarFloat:
		return v.f, true
	case ScalarBig:
		return v.f, v.ok
	}
	return 0, false
}

// Int is ValueInt of the value ParseValueJSON gives for the same text:
// an integer, or a float holding one (a step). ok is false otherwise.
func (v Scalar) Int() (int64, bool) {
	switch v.kind {
	case ScalarInt:
		return v.i, true
	case ScalarFloat:
		return ValueInt(v.f)
	}
	return 0, false
}

// parseNumber parses b, stripped of white space, when it is exactly one
// JSON number, giving what ParseValueJSON gives for it: an int64 for an
// integer literal that fits, a json.Number (ScalarBig) for one that does
// not, else a float64 rounded as strconv.ParseFloat rounds (±Inf beyond
// the range). Anything else is NotScalar. It reads b once, gathering the
// significant digits as it checks the grammar, and converts the common
// numbers without strconv: integers up to 18 digits, and decimals of up
// to 19 significant digits by the two algorithms strconv itself tries
// first (exact float arithmetic, then Eisel-Lemire), falling back to
// strconv when they cannot decide.
func parseNumber(b []byte) Scalar {
	i := 0
	neg := b[0] == '-'
	if neg {
		i++
	}
	// mant holds the first 19 significant digits (those after the leading
	// zeros), sig counts them all, and exp is the power of ten of mant's
	// last digit.
	var mant uint64
	sig, exp := 0, 0
	intStart := i
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if sig < 19 {
				mant = mant*10 + uint64(b[i]-'0')
			} else {
				exp++
			}
			sig++
		}
	default:
		return Scalar{}
	}
	intDigits := i - intStart
	integral := true
	if i < len(b) && b[i] == '.' {
		integral = false
		i++
		fracStart := i
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			d := b[i] - '0'
			switch {
			case sig == 0 && d == 0: // a leading zero: not significant
				exp--
			case sig < 19:
				mant = mant*10 + uint64(d)
				exp--
				sig++
			default:
				sig++
			}
		}
		if i == fracStart {
			return Scalar{}
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integral = false
		i++
		sign := 1
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			if b[i] == '-' {
				sign = -1
			}
			i++
		}
		start, e := i, 0
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
			if e < 100000 {
				e = e*10 + int(b[i]-'0')
			}
		}
		if i == start {
			return Scalar{}
		}
		exp += sign * e
	}
	if i != len(b) {
		return Scalar{}
	}
	if integral {
		if intDigits <= 18 { // always fits in int64; mant holds them all
			n := int64(mant)
			if neg {
				n = -n
			}
			return Scalar{kind: ScalarInt, i: n}
		}
		if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			return Scalar{kind: ScalarInt, i: n}
		}
		f, err := strconv.ParseFloat(string(b), 64)
		return Scalar{kind: ScalarBig, f: f, ok: err == nil || math.IsInf(f, 0)}
	}
	if sig <= 19 {
		if f, ok := exactFloat(mant, exp, neg); ok {
			return Scalar{kind: ScalarFloat, f: f}
		}
		if f, ok := eiselLemire(mant, exp, neg); ok {
			return Scalar{kind: ScalarFloat, f: f}
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return Scalar{}
	}
	return Scalar{kind: ScalarFloat, f: f}
}

// float64pow10 are the powers of ten a float64 holds exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat returns mant×10^exp when both are exact float64 values
// (mant below 2^53, |exp| ≤ 22): one correctly rounded IEEE operation on
// exact operands is the correctly rounded result, strconv's own first try.
func exactFloat(mant uint64, exp int, neg bool) (float64, bool) {
	if mant>>53 != 0 || exp < -22 || exp > 22 {
		return 0, false
	}
	f := float64(mant)
	if exp < 0 {
		f /= float64pow10[-exp]
	} else {
		f *= float64pow10[exp]
	}
	if neg {
		f = -f
	}
	return f, true
}

// Decimal exponents the Eisel-Lemire table covers; strconv handles the
// rest.
const (
	pow10MinExp = -64
	pow10MaxExp = 64
)

// pow10Table holds, for each exponent e in [pow10MinExp, pow10MaxExp],
// the 128 most significant bits of 10^e, rounded down, as {low, high}:
// the values of strconv's detailedPowersOfTen table for those exponents.
var pow10Table = sync.OnceValue(func() [][2]uint64 {
	t := make([][2]uint64, pow10MaxExp-pow10MinExp+1)
	mask := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 64), big.NewInt(1))
	for e := pow10MinExp; e <= pow10MaxExp; e++ {
		p := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(e))), nil)
		var m *big.Int
		if e >= 0 {
			m = new(big.Int).Set(p)
			if n := m.BitLen(); n > 128 {
				m.Rsh(m, uint(n-128))
			} else {
				m.Lsh(m, uint(128-n))
			}
		} else {
			// floor(2^s / 10^-e) with s chosen so that the quotient has 128
			// bits.
			s := 128 + p.BitLen()
			m = new(big.Int).Quo(new(big.Int).Lsh(big.NewInt(1), uint(s)), p)
			if n := m.BitLen(); n > 128 {
				m.Rsh(m, uint(n-128))
			}
		}
		t[e-pow10MinExp] = [2]uint64{new(big.Int).And(m, mask).Uint64(), new(big.Int).Rsh(m, 64).Uint64()}
	}
	return t
})

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// eiselLemire is strconv's eiselLemire64 (Go's internal/strconv, after
// Daniel Lemire's "Number Parsing at a Gigabyte per Second"), limited to
// the exponents of pow10Table: mant×10^exp correctly rounded, or ok=false
// when the algorithm cannot tell (strconv then decides).
func eiselLemire(mant uint64, exp int, neg bool) (float64, bool) {
	if mant == 0 {
		if neg {
			return math.Copysign(0, -1), true
		}
		return 0, true
	}
	if exp < pow10MinExp || exp > pow10MaxExp {
		return 0, false
	}
	pow := pow10Table()[exp-pow10MinExp]
	clz := bits.LeadingZeros64(mant)
	mant <<= uint(clz)
	const float64ExponentBias = 1023
	retExp2 := uint64(217706*exp>>16+64+float64ExponentBias) - uint64(clz)
	xHi, xLo := bits.Mul64(mant, pow[1])
	if xHi&0x1FF == 0x1FF && xLo+mant < mant {
		yHi, yLo := bits.Mul64(mant, pow[0])
		mergedHi, mergedLo := xHi, xLo+yHi
		if mergedLo < xLo {
			mergedHi++
		}
		if mergedHi&0x1FF == 0x1FF && mergedLo+1 == 0 && yLo+mant < mant {
			return 0, false
		}
		xHi, xLo = mergedHi, mergedLo
	}
	msb := xHi >> 63
	retMant := xHi >> (msb + 9)
	retExp2 -= 1 ^ msb
	if xLo == 0 && xHi&0x1FF == 0 && retMant&3 == 1 {
		return 0, false
	}
	retMant += retMant & 1
	retMant >>= 1
	if retMant>>53 > 0 {
		retMant >>= 1
		retExp2++
	}
	if retExp2-1 >= 0x7FF-1 {
		return 0, false
	}
	bits := retExp2<<52 | retMant&0x000FFFFFFFFFFFFF
	if neg {
		bits |= 0x8000000000000000
	}
	return math.Float64frombits(bits), true
}
