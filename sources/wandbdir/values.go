package wandbdir

import (
	"math"
	"slices"
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

// secondsToMillis converts a W&B `_timestamp` (float Unix seconds) to Unix
// milliseconds, rounding to the microsecond first so that 0.123 stays 123.
func secondsToMillis(v any) (int64, bool) {
	return floatSecondsToMillis(wandbfile.ValueFloat(v))
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
