package wandbdir

import (
	"math"
	"slices"
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
	return parseNumber(b)
}

// isSpace reports JSON white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

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
	byPos  []string  // the key of each item position in the last rows
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
			c.keys = append(c.keys, c.keyAt(i, path))
			c.vals = append(c.vals, f)
		}
	}
	if points {
		out.metrics = c.sorted()
	}
	return out, true
}

// keyAt returns the metric key of path, the path of item i of the row.
// Rows usually repeat the keys of the row before in the same order, so the
// key item i had last time is tried first, which saves hashing.
func (c *rowConverter) keyAt(i int, path [][]byte) string {
	if i < len(c.byPos) && pathIs(c.byPos[i], path) {
		return c.byPos[i]
	}
	k := c.key(path)
	for len(c.byPos) <= i {
		c.byPos = append(c.byPos, "")
	}
	c.byPos[i] = k
	return k
}

// pathIs reports whether key is the segments of path joined with "/".
func pathIs(key string, path [][]byte) bool {
	if len(path) == 1 {
		return key == string(path[0])
	}
	for j, s := range path {
		if j > 0 {
			if key == "" || key[0] != '/' {
				return false
			}
			key = key[1:]
		}
		if len(key) < len(s) || key[:len(s)] != string(s) {
			return false
		}
		key = key[len(s):]
	}
	return key == ""
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
