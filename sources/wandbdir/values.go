package wandbdir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
)

// kv is one parsed history, summary, config or stats item: its key path and
// its value as returned by wandbfile.ParseValueJSON (nil, bool, int64,
// float64, json.Number, string, []any, map[string]any).
type kv struct {
	path  []string
	value any
	err   error // the value_json did not parse; value is nil
}

// parseItems parses the values of W&B items.
func parseItems(items []wandbfile.Item) []kv {
	out := make([]kv, len(items))
	for i, it := range items {
		v, err := wandbfile.ParseValueJSON(it.ValueJSON)
		out[i] = kv{path: it.Path(), value: v, err: err}
	}
	return out
}

// objectItems turns the top-level keys of an object (a row of a pre-0.10
// wandb-history.jsonl) into items, in key order.
func objectItems(m map[string]any) []kv {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]kv, len(keys))
	for i, k := range keys {
		out[i] = kv{path: []string{k}, value: m[k]}
	}
	return out
}

// setPath stores v at path in tree, creating (or replacing non-object
// values with) the objects on the way, as W&B folds nested summary and
// config updates.
func setPath(tree map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		next, ok := tree[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			tree[k] = next
		}
		tree = next
	}
	tree[path[len(path)-1]] = v
}

// removePath deletes the value at path from tree, if there is one.
func removePath(tree map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		next, ok := tree[k].(map[string]any)
		if !ok {
			return
		}
		tree = next
	}
	delete(tree, path[len(path)-1])
}

// toFloat converts a numeric or boolean value to a metric value.
func toFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case int64:
		return float64(v), true
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

// jsonKind names the JSON kind of a non-numeric value, the RichValue.Type of
// values that carry no "_type".
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

// schemaValue returns v with NaN and ±Inf replaced by the strings "NaN",
// "Infinity" and "-Infinity" (the schema's convention for JSON documents)
// and YAML-only types made JSON-friendly.
func schemaValue(v any) any {
	switch v := v.(type) {
	case float64:
		switch {
		case math.IsNaN(v):
			return "NaN"
		case math.IsInf(v, 1):
			return "Infinity"
		case math.IsInf(v, -1):
			return "-Infinity"
		}
		return v
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = schemaValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = schemaValue(x)
		}
		return out
	case map[any]any: // YAML maps with non-string keys
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(k)] = schemaValue(x)
		}
		return out
	case int:
		return int64(v)
	case uint64:
		return json.Number(strconv.FormatUint(v, 10))
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return v
}

// toJSON renders v as compact JSON under the schema's conventions (see
// schemaValue), with map keys sorted and without HTML escaping.
func toJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(schemaValue(v)); err != nil {
		// Only unsupported Go types fail; values from ParseValueJSON and
		// YAML never are. Keep the text rather than lose the value.
		b, _ := json.Marshal(fmt.Sprint(v))
		return string(b)
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n"))
}

// secondsToMillis converts a W&B `_timestamp` (float Unix seconds) to Unix
// milliseconds, rounding to the microsecond first so that 0.123 stays 123.
func secondsToMillis(v any) (int64, bool) {
	return floatSecondsToMillis(toFloat(v))
}

// floatSecondsToMillis is secondsToMillis of a value toFloat gave f and ok
// for.
func floatSecondsToMillis(f float64, ok bool) (int64, bool) {
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e15 {
		return 0, false
	}
	us := int64(math.Round(f * 1e6))
	ms := us / 1000
	if us < 0 && us%1000 != 0 {
		ms--
	}
	return ms, true
}

// unixMillis converts a time to Unix milliseconds, 0 for the zero time.
func unixMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
