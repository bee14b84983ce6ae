package wandbfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
)

// The conventions for W&B values (history rows, config, summary) as the
// sources hand them to the schema, shared by the run-folder and the cloud
// sources so that a run reads the same from either.

// ValueFloat converts a numeric or boolean value to a metric value.
func ValueFloat(v any) (float64, bool) {
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

// ValueInt returns v as an int64 when it is an integer (int64) or a
// float64 holding one, as steps and counts are read.
func ValueInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int64:
		return v, true
	case float64:
		if v == float64(int64(v)) {
			return int64(v), true
		}
	}
	return 0, false
}

// ValueKind names the JSON kind of a non-numeric value, the RichValue.Type of
// values that carry no "_type".
func ValueKind(v any) string {
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

// SchemaValue returns v with NaN and ±Inf replaced by the strings "NaN",
// "Infinity" and "-Infinity" (the schema's convention for JSON documents)
// and YAML-only types made JSON-friendly.
func SchemaValue(v any) any {
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
			out[i] = SchemaValue(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = SchemaValue(x)
		}
		return out
	case map[any]any: // YAML maps with non-string keys
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(k)] = SchemaValue(x)
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

// ValueToJSON renders v as compact JSON under the schema's conventions (see
// SchemaValue), with map keys sorted and without HTML escaping.
func ValueToJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(SchemaValue(v)); err != nil {
		// Only unsupported Go types fail; values from ParseValueJSON and
		// YAML never are. Keep the text rather than lose the value.
		b, _ := json.Marshal(fmt.Sprint(v))
		return string(b)
	}
	return string(bytes.TrimRight(buf.Bytes(), "\n"))
}

// MediaFiles lists the files (relative to files/) a media value refers to:
// the "path" of the value and of the media dicts nested in it (masks,
// boxes), sorted and unique.
func MediaFiles(obj map[string]any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, media := v["_type"].(string); media {
				if p, ok := v["path"].(string); ok && p != "" {
					out = append(out, p)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(obj)
	slices.Sort(out)
	return slices.Compact(out)
}

// SetPath stores v at path in tree, creating (or replacing non-object
// values with) the objects on the way, as W&B folds nested summary and
// config updates.
func SetPath(tree map[string]any, path []string, v any) {
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

// RemovePath deletes the value at path from tree, if there is one.
func RemovePath(tree map[string]any, path []string) {
	for _, k := range path[:len(path)-1] {
		next, ok := tree[k].(map[string]any)
		if !ok {
			return
		}
		tree = next
	}
	delete(tree, path[len(path)-1])
}
