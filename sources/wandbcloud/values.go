package wandbcloud

import (
	"encoding/json"
	"math"
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
