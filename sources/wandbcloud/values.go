package wandbcloud

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// decodeLenient decodes JSON text that may hold the bare words NaN,
// Infinity and -Infinity outside strings (W&B writes them), numbers kept
// as json.Number until toFloat or toJSON reads them.
func decodeLenient(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(quoteNonFinite(s)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return restore(v), nil
}

// The bare words are quoted as these sentinels, then turned into floats.
var nonFinite = map[string]float64{"\x00NaN": math.NaN(), "\x00Infinity": math.Inf(1), "\x00-Infinity": math.Inf(-1)}

func quoteNonFinite(s string) string {
	var b strings.Builder
	inStr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			b.WriteByte(c)
			continue
		}
		matched := false
		for _, w := range []string{"-Infinity", "Infinity", "NaN"} {
			if strings.HasPrefix(s[i:], w) {
				b.WriteString(`"\u0000` + w + `"`)
				i += len(w) - 1
				matched = true
				break
			}
		}
		if !matched {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func restore(v any) any {
	switch x := v.(type) {
	case string:
		if f, ok := nonFinite[x]; ok {
			return f
		}
	case map[string]any:
		for k, e := range x {
			x[k] = restore(e)
		}
	case []any:
		for i, e := range x {
			x[i] = restore(e)
		}
	}
	return v
}

// toFloat reads numbers and booleans (1, 0) as float64.
func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		return f, err == nil || math.IsInf(f, 0)
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "bool"
	case []any:
		return "list"
	case map[string]any:
		return "object"
	}
	return "number"
}

// schemaValue replaces NaN and ±Inf by the strings "NaN", "Infinity" and
// "-Infinity", the schema's convention for JSON documents.
func schemaValue(v any) any {
	switch x := v.(type) {
	case float64:
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 1):
			return "Infinity"
		case math.IsInf(x, -1):
			return "-Infinity"
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = schemaValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = schemaValue(e)
		}
		return out
	}
	return v
}

// toJSON renders v compactly, keys sorted, without HTML escaping.
func toJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(schemaValue(v)); err != nil {
		b, _ := json.Marshal(err.Error())
		return string(b)
	}
	return strings.TrimRight(buf.String(), "\n")
}
