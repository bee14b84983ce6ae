package wandbdir

import (
	"slices"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
)

// objectItems turns the top-level keys of an object (a row of a pre-0.10
// wandb-history.jsonl) into values, in key order.
func objectItems(m map[string]any) []wandbfile.Value {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]wandbfile.Value, len(keys))
	for i, k := range keys {
		out[i] = wandbfile.Value{Path: []string{k}, Value: m[k]}
	}
	return out
}

// unixMillis converts a time to Unix milliseconds, 0 for the zero time.
func unixMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}
