package wandbfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of arrays and objects ParseValueJSON
// accepts, so hostile input cannot exhaust the stack.
const maxJSONDepth = 10000

// ParseValueJSON parses one value written by W&B: a value_json string of a
// history, summary, config or stats item, or a whole wandb-summary.json file.
// Both are extended JSON: besides standard JSON, the bare tokens NaN,
// Infinity and -Infinity stand for the IEEE 754 values.
//
// The result uses these Go types:
//   - null: nil; true/false: bool; strings: string
//   - numbers written without fraction or exponent that fit in int64: int64
//     (so steps and counts stay exact)
//   - integers outside the int64 range: json.Number holding the literal, so
//     nothing is lost (callers may convert with its Float64 method)
//   - all other numbers, NaN and ±Infinity: float64 (a literal beyond the
//     float64 range becomes ±Inf)
//   - arrays: []any; objects: map[string]any (a repeated key keeps its last
//     value)
//
// Leading and trailing white space is allowed, anything else after the value
// is an error. Invalid UTF-8 inside strings is kept as is; a lone UTF-16
// surrogate escape becomes U+FFFD.
func ParseValueJSON(s string) (any, error) {
	p := valueParser{s: s}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected %q after value", p.s[p.i])
	}
	return v, nil
}

// valueParser is a recursive-descent parser over s; i is the next byte.
type valueParser struct {
	s string
	i int
}

// errorf returns a syntax error naming the current offset.
func (p *valueParser) errorf(format string, args ...any) error {
	return fmt.Errorf("value json: offset %d: "+format, append([]any{p.i}, args...)...)
}

// errUnexpectedEnd is wrapped by errors for input that stops mid-value.
var errUnexpectedEnd = errors.New("unexpected end of input")

func (p *valueParser) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// literal consumes word if the input continues with it.
func (p *valueParser) literal(word string) bool {
	if len(p.s)-p.i >= len(word) && p.s[p.i:p.i+len(word)] == word {
		p.i += len(word)
		return true
	}
	return false
}

// value parses any value at the current position.
func (p *valueParser) value(depth int) (any, error) {
	if p.i >= len(p.s) {
		return nil, p.errorf("%w", errUnexpectedEnd)
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		if p.literal("-Infinity") {
			return math.Inf(-1), nil
		}
		return p.number()
	case p.literal("null"):
		return nil, nil
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("NaN"):
		return math.NaN(), nil
	case p.literal("Infinity"):
		return math.Inf(1), nil
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

// object parses {"key": value, ...}.
func (p *valueParser) object(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nesting deeper than %d", maxJSONDepth)
	}
	p.i++ // '{'
	obj := map[string]any{}
	p.skipSpace()
	if p.literal("}") {
		return obj, nil
	}
	for {
		p.skipSpace()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return nil, p.expected("object key")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if !p.literal(":") {
			return nil, p.expected("':'")
		}
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		obj[key] = v
		p.skipSpace()
		if p.literal(",") {
			continue
		}
		if p.literal("}") {
			return obj, nil
		}
		return nil, p.expected("',' or '}'")
	}
}

// array parses [value, ...].
func (p *valueParser) array(depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, p.errorf("nesting deeper than %d", maxJSONDepth)
	}
	p.i++ // '['
	arr := []any{}
	p.skipSpace()
	if p.literal("]") {
		return arr, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		p.skipSpace()
		if p.literal(",") {
			continue
		}
		if p.literal("]") {
			return arr, nil
		}
		return nil, p.expected("',' or ']'")
	}
}

// expected reports a missing token.
func (p *valueParser) expected(what string) error {
	if p.i >= len(p.s) {
		return p.errorf("expected %s: %w", what, errUnexpectedEnd)
	}
	return p.errorf("expected %s, found %q", what, p.s[p.i])
}

// number parses a JSON number, following the JSON grammar strictly.
func (p *valueParser) number() (any, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.digits() == 0:
		return nil, p.expected("digit")
	}
	integral := true
	if p.literal(".") {
		integral = false
		if p.digits() == 0 {
			return nil, p.expected("digit after '.'")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		integral = false
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, p.expected("digit in exponent")
		}
	}
	text := p.s[start:p.i]
	if integral {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n, nil
		}
		return json.Number(text), nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, p.errorf("number %q: %v", text, err)
	}
	return f, nil // out of range: ±Inf (or 0 for underflow), like Python's float()
}

// digits consumes a run of decimal digits and returns how many there were.
func (p *valueParser) digits() int {
	start := p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// str parses a string literal starting at the opening quote.
func (p *valueParser) str() (string, error) {
	p.i++ // '"'
	start := p.i
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case '"':
			s := p.s[start:p.i]
			p.i++
			return s, nil
		case '\\':
			return p.escapedStr(start)
		}
		p.i++
	}
	return "", p.errorf("string: %w", errUnexpectedEnd)
}

// escapedStr continues a string that contains escapes, from the first
// backslash; start is the offset of the string's first byte.
func (p *valueParser) escapedStr(start int) (string, error) {
	buf := []byte(p.s[start:p.i])
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(buf), nil
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++ // '\\'
		if p.i >= len(p.s) {
			break
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := p.unicodeEscape()
			if err != nil {
				return "", err
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.i--
			return "", p.errorf("invalid escape '\\%c'", e)
		}
	}
	return "", p.errorf("string: %w", errUnexpectedEnd)
}

// unicodeEscape decodes the hex digits of a \u escape (the "\u" consumed),
// joining a UTF-16 surrogate pair when a second escape follows.
func (p *valueParser) unicodeEscape() (rune, error) {
	r, ok := p.hex4()
	if !ok {
		return 0, p.errorf("invalid \\u escape")
	}
	if !utf16.IsSurrogate(r) {
		return r, nil
	}
	save := p.i
	if p.literal(`\u`) {
		if r2, ok := p.hex4(); ok {
			if joined := utf16.DecodeRune(r, r2); joined != utf8.RuneError {
				return joined, nil
			}
		}
	}
	p.i = save
	return utf8.RuneError, nil
}

// hex4 consumes four hex digits.
func (p *valueParser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(p.s[p.i:p.i+4], 16, 16)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(v), true
}

// parseStep reads a "_step" value_json as an exact integer. A float with an
// integral value is accepted too.
func parseStep(valueJSON string) (int64, bool) {
	v, err := ParseValueJSON(valueJSON)
	if err != nil {
		return 0, false
	}
	switch n := v.(type) {
	case int64:
		return n, true
	case float64:
		if n == math.Trunc(n) && math.Abs(n) < 1<<63 {
			return int64(n), true
		}
	}
	return 0, false
}

// itoa formats an integer in base 10.
func itoa(n int64) string { return strconv.FormatInt(n, 10) }
