package wandbdir

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// simpleKind says what parseSimple found.
type simpleKind uint8

const (
	notSimple   simpleKind = iota // anything else: leave it to ParseValueJSON
	simpleInt                     // an integer literal that fits in int64
	simpleBig                     // an integer literal beyond int64 (json.Number)
	simpleFloat                   // any other number, NaN or ±Infinity
	simpleBool                    // true or false
)

// simpleValue is a value_json that is a bare number or boolean, parsed
// without allocating. It stands for what ParseValueJSON returns for the
// same text: int64, json.Number, float64 or bool.
type simpleValue struct {
	kind simpleKind
	i    int64   // simpleInt; simpleBool: 1 for true
	f    float64 // simpleFloat; simpleBig: the literal as a float
	ok   bool    // simpleBig: toFloat accepts the literal
}

// parseSimple parses b when it is a number, NaN, ±Infinity, true or false,
// surrounded by optional JSON white space, following ParseValueJSON's
// grammar. Everything else, and everything ParseValueJSON would reject,
// is notSimple.
func parseSimple(b []byte) simpleValue {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return simpleValue{}
	}
	if c := b[0]; c != '-' && (c < '0' || c > '9') {
		switch string(b) {
		case "NaN":
			return simpleValue{kind: simpleFloat, f: math.NaN()}
		case "Infinity":
			return simpleValue{kind: simpleFloat, f: math.Inf(1)}
		case "true":
			return simpleValue{kind: simpleBool, i: 1}
		case "false":
			return simpleValue{kind: simpleBool}
		}
		return simpleValue{}
	}
	if string(b) == "-Infinity" {
		return simpleValue{kind: simpleFloat, f: math.Inf(-1)}
	}
	integral, ok := numberGrammar(b)
	if !ok {
		return simpleValue{}
	}
	if integral {
		digits := len(b)
		if b[0] == '-' {
			digits--
		}
		if digits <= 18 { // always fits in int64
			var n int64
			for _, c := range b[len(b)-digits:] {
				n = n*10 + int64(c-'0')
			}
			if b[0] == '-' {
				n = -n
			}
			return simpleValue{kind: simpleInt, i: n}
		}
		if n, err := strconv.ParseInt(string(b), 10, 64); err == nil {
			return simpleValue{kind: simpleInt, i: n}
		}
		f, err := strconv.ParseFloat(string(b), 64)
		return simpleValue{kind: simpleBig, f: f, ok: err == nil || math.IsInf(f, 0)}
	}
	if f, ok := exactFloat(b); ok {
		return simpleValue{kind: simpleFloat, f: f}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return simpleValue{}
	}
	return simpleValue{kind: simpleFloat, f: f}
}

// float64pow10 are the powers of ten a float64 holds exactly.
var float64pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// exactFloat converts a JSON number (already checked by numberGrammar)
// the quick way when the result is exact: a decimal mantissa below 2^53
// times or divided by a power of ten up to 1e22 is one correctly rounded
// IEEE operation on exact operands, so it equals strconv.ParseFloat's
// result. ok is false for every other number.
func exactFloat(b []byte) (float64, bool) {
	neg := b[0] == '-'
	if neg {
		b = b[1:]
	}
	var mant uint64
	digits, exp, dot := 0, 0, -1
	i := 0
	for ; i < len(b) && b[i] != 'e' && b[i] != 'E'; i++ {
		c := b[i]
		if c == '.' {
			dot = i
			continue
		}
		if digits > 0 || c != '0' {
			digits++
		}
		if digits > 16 {
			return 0, false
		}
		mant = mant*10 + uint64(c-'0')
	}
	if dot >= 0 {
		exp = -(i - dot - 1) // digits after the point
	}
	if i < len(b) { // exponent
		e, sign := 0, 1
		j := i + 1
		switch b[j] {
		case '-':
			sign = -1
			j++
		case '+':
			j++
		}
		if len(b)-j > 3 {
			return 0, false
		}
		for ; j < len(b); j++ {
			e = e*10 + int(b[j]-'0')
		}
		exp += sign * e
	}
	if mant >= 1<<53 || exp < -22 || exp > 22 {
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

// isSpace reports JSON white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// numberGrammar reports whether b is exactly one JSON number, and whether
// it is written without fraction or exponent.
func numberGrammar(b []byte) (integral, ok bool) {
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
	case digits() == 0:
		return false, false
	}
	integral = true
	if i < len(b) && b[i] == '.' {
		i++
		integral = false
		if digits() == 0 {
			return false, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		integral = false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false, false
		}
	}
	return integral, i == len(b)
}

// float is toFloat of the value ParseValueJSON gives for the same text.
func (v simpleValue) float() (float64, bool) {
	switch v.kind {
	case simpleInt, simpleBool:
		return float64(v.i), true
	case simpleFloat:
		return v.f, true
	case simpleBig:
		return v.f, v.ok
	}
	return 0, false
}

// integral is integral() of the value ParseValueJSON gives for the same
// text.
func (v simpleValue) integral() (int64, bool) {
	switch v.kind {
	case simpleInt:
		return v.i, true
	case simpleFloat:
		return integral(v.f)
	}
	return 0, false
}

// header is histRow.header for a scanned row: the step and time of the
// row from its `_step` and `_timestamp` items, with convertRow's rules.
func (r *rawRow) header() row {
	var out row
	if r.hasStep {
		out.step, out.hasStep = r.step, true
	}
	for i := range r.items {
		switch {
		case r.isKey(i, keyStep):
			v := parseSimple(r.items[i].value)
			if v.kind == notSimple {
				x, err := wandbfile.ParseValueJSON(string(r.items[i].value))
				if err != nil {
					continue
				}
				if n, ok := integral(x); ok {
					out.step, out.hasStep = n, true
				}
				continue
			}
			if n, ok := v.integral(); ok {
				out.step, out.hasStep = n, true
			}
		case r.isKey(i, keyTimestamp):
			v := parseSimple(r.items[i].value)
			if v.kind == notSimple {
				x, err := wandbfile.ParseValueJSON(string(r.items[i].value))
				if err == nil {
					out.time, _ = secondsToMillis(x)
				}
				continue
			}
			f, ok := v.float()
			out.time, _ = floatSecondsToMillis(f, ok)
		}
	}
	return out
}

// maxInterned bounds the key strings a rowConverter keeps for reuse.
const maxInterned = 1 << 16

// rowConverter turns scanned rows made only of numbers and booleans into
// sorted metric points without allocating per point: keys are interned,
// and the sort order of a row's keys is reused for the next row when it
// has the same keys (the usual case: every row logs the same metrics).
// It computes what convertRow computes for such rows. Not safe for
// concurrent use.
type rowConverter struct {
	intern map[string]string
	keyBuf []byte
	keys   []string  // metric keys of the current row, in item order
	vals   []float64 // their values
	prev   []string  // keys of the row perm was computed for
	perm   []int     // sorted position → index in keys
	valid  bool      // perm holds the order of prev
	out    []schema.Metric
}

// convert converts r. ok is false when the row holds anything but numbers
// and booleans (or an item whose value does not parse): the caller must
// then use histRow.convert. With points false, only the step and time are
// set. The metrics of the returned row are valid until the next call.
func (c *rowConverter) convert(r *rawRow, points bool) (out row, ok bool) {
	if r.hasStep {
		out.step, out.hasStep = r.step, true
	}
	c.keys, c.vals = c.keys[:0], c.vals[:0]
	for i := range r.items {
		v := parseSimple(r.items[i].value)
		if v.kind == notSimple {
			return row{}, false
		}
		path := r.path(i)
		if len(path) == 1 {
			switch string(path[0]) {
			case keyStep:
				if n, ok := v.integral(); ok {
					out.step, out.hasStep = n, true
				}
				continue
			case keyTimestamp:
				f, ok := v.float()
				out.time, _ = floatSecondsToMillis(f, ok)
				continue
			case keyRuntime:
				continue
			}
		}
		if string(path[0]) == keyWandb {
			continue
		}
		f, fok := v.float()
		if !fok {
			return row{}, false
		}
		if points {
			c.keys = append(c.keys, c.key(path))
			c.vals = append(c.vals, f)
		}
	}
	if points {
		out.metrics = c.sorted()
	}
	return out, true
}

// key returns the metric key of a path, the segments joined with "/".
func (c *rowConverter) key(path [][]byte) string {
	b := path[0]
	if len(path) > 1 {
		c.keyBuf = append(c.keyBuf[:0], path[0]...)
		for _, s := range path[1:] {
			c.keyBuf = append(append(c.keyBuf, '/'), s...)
		}
		b = c.keyBuf
	}
	if s, ok := c.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if c.intern == nil {
		c.intern = map[string]string{}
	}
	if len(c.intern) < maxInterned {
		c.intern[s] = s
	}
	return s
}

// sorted returns the current row's points sorted as convertRow sorts them
// (schema.CompareMetrics, before step and time are set).
func (c *rowConverter) sorted() []schema.Metric {
	c.out = c.out[:0]
	if !c.valid || !slices.Equal(c.keys, c.prev) {
		c.perm = c.perm[:0]
		for i := range c.keys {
			c.perm = append(c.perm, i)
		}
		slices.SortFunc(c.perm, func(a, b int) int { return strings.Compare(c.keys[a], c.keys[b]) })
		distinct := true
		for i := 1; i < len(c.perm); i++ {
			if c.keys[c.perm[i]] == c.keys[c.perm[i-1]] {
				distinct = false
				break
			}
		}
		if !distinct {
			// Repeated keys are ordered by value too: sort the points
			// themselves, as convertRow does, and keep no order.
			c.valid = false
			for i, k := range c.keys {
				c.out = append(c.out, schema.Metric{Key: k, Value: c.vals[i]})
			}
			slices.SortFunc(c.out, schema.CompareMetrics)
			return c.out
		}
		c.prev = append(c.prev[:0], c.keys...)
		c.valid = true
	}
	for _, i := range c.perm {
		c.out = append(c.out, schema.Metric{Key: c.keys[i], Value: c.vals[i]})
	}
	return c.out
}
