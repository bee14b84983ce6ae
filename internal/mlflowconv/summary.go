package mlflowconv

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// A W&B run's summary holds values its history may not: totals, best
// values, strings. MLflow shows metrics and tags, not the summary, so the
// sink writes each numeric summary value that history does not already end
// with as one metric point at the run's last step (recorded as a
// SummaryPoint, which the source leaves out again), and each string value
// as the tag SummaryTagPrefix+KEY. Other values (lists, media, null) are in
// the sidecar only.

// SummaryTagPrefix starts the tags holding a run's string summary values.
const SummaryTagPrefix = "wandb.summary."

// SummaryValue is one numeric summary value, under its flattened key.
type SummaryValue struct {
	Key   string
	Value float64
}

// SummaryValues flattens a run's summary: nested objects without "_type"
// join their keys with "/" (as history keys do); top-level keys beginning
// with "_" (W&B's own: _step, _runtime, _timestamp, _wandb) are left out.
// Numbers, booleans (0 and 1) and the strings "NaN", "Infinity" and
// "-Infinity" (how schema.Run writes non-finite numbers) are numeric; other
// strings are returned as strings; everything else is left out. Both lists
// are sorted by key. step is the summary's _step, when it is an integer.
func SummaryValues(summary json.RawMessage) (nums []SummaryValue, strs []schema.Tag, step int64, hasStep bool) {
	var obj map[string]json.RawMessage
	if len(bytes.TrimSpace(summary)) == 0 || json.Unmarshal(summary, &obj) != nil {
		return nil, nil, 0, false
	}
	if raw, ok := obj["_step"]; ok {
		var n json.Number
		if json.Unmarshal(raw, &n) == nil {
			if i, err := n.Int64(); err == nil {
				step, hasStep = i, true
			}
		}
	}
	var walk func(prefix string, obj map[string]json.RawMessage)
	walk = func(prefix string, obj map[string]json.RawMessage) {
		for k, raw := range obj {
			if prefix == "" && strings.HasPrefix(k, "_") {
				continue
			}
			key := prefix + k
			raw = bytes.TrimSpace(raw)
			if len(raw) == 0 {
				continue
			}
			switch raw[0] {
			case '{':
				var nested map[string]json.RawMessage
				if json.Unmarshal(raw, &nested) != nil {
					continue
				}
				if _, media := nested["_type"]; !media && len(nested) > 0 {
					walk(key+"/", nested)
				}
			case '"':
				var s string
				if json.Unmarshal(raw, &s) != nil {
					continue
				}
				switch s {
				case "NaN":
					nums = append(nums, SummaryValue{key, math.NaN()})
				case "Infinity":
					nums = append(nums, SummaryValue{key, math.Inf(1)})
				case "-Infinity":
					nums = append(nums, SummaryValue{key, math.Inf(-1)})
				default:
					strs = append(strs, schema.Tag{Key: key, Value: s})
				}
			case 't', 'f':
				var b bool
				if json.Unmarshal(raw, &b) == nil {
					nums = append(nums, SummaryValue{key, map[bool]float64{false: 0, true: 1}[b]})
				}
			case '[', 'n':
			default:
				var f float64
				if json.Unmarshal(raw, &f) == nil {
					nums = append(nums, SummaryValue{key, f})
				} else if len(raw) > 0 && raw[0] == '-' {
					nums = append(nums, SummaryValue{key, math.Inf(-1)}) // beyond float64
				} else {
					nums = append(nums, SummaryValue{key, math.Inf(1)})
				}
			}
		}
	}
	walk("", obj)
	slices.SortFunc(nums, func(a, b SummaryValue) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(strs, func(a, b schema.Tag) int { return strings.Compare(a.Key, b.Key) })
	return nums, strs, step, hasStep
}

// SummaryPoint is a metric point the sink derived from a summary value; the
// source leaves it out. Step and Time are as stored.
type SummaryPoint struct {
	Key   string          `json:"k"` // the source's metric key
	Step  int64           `json:"s"`
	Time  int64           `json:"t"`
	Value mlflowapi.Float `json:"v"`
}

// Is reports whether a point read back at key is this one.
func (p SummaryPoint) Is(m schema.Metric) bool {
	v, w := float64(p.Value), m.Value
	return m.Key == p.Key && m.Step == p.Step && m.Time == p.Time &&
		(math.Float64bits(v) == math.Float64bits(w) || math.IsNaN(v) && math.IsNaN(w) || v == w)
}

// viewTags are the tags the MLflow presentation derives from a run's
// define_metric definitions and string summary values.
func viewTags(r schema.Run) []mlflowapi.Tag {
	var out []mlflowapi.Tag
	if t, ok := StepAxesOf(r).Tag(); ok {
		out = append(out, t)
	}
	_, strs, _, _ := SummaryValues(r.Summary)
	for _, s := range strs {
		k, _ := MapKey(SummaryTagPrefix + s.Key)
		out = append(out, mlflowapi.Tag{Key: k, Value: s.Value})
	}
	return out
}
