package wandbdir

import (
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// History keys W&B adds to every row. They become the points' step and
// time, not metrics of their own (see doc.go).
const (
	keyStep      = "_step"
	keyTimestamp = "_timestamp"
	keyRuntime   = "_runtime"
	keyWandb     = "_wandb"
	// SystemPrefix starts the key of every system metric (stats records).
	SystemPrefix = "system/"
)

// row is one history record converted to the schema.
type row struct {
	step    int64
	hasStep bool  // the row carried `_step` (or HistoryRecord.step)
	time    int64 // Unix ms from `_timestamp`; 0 if absent
	metrics []schema.Metric
	rich    []schema.RichValue
	bad     []string // keys whose value_json did not parse
}

// convertRow turns the items of one history row into metric points and rich
// values, sorted by key. recStep is HistoryRecord.step (nil if absent); the
// `_step` item wins over it. Step and Time of the results are left for the
// caller to set (see stepper).
//
// Keys are the item paths joined with "/". Both encodings are accepted: the
// legacy one (a whole dict in one item's value) and wandb-core's (one item
// per leaf, nested_key): dicts are flattened, except media dicts (those with
// a "_type"), which become one rich value each, rebuilt from their leaves.
func convertRow(items []kv, recStep *int64) row {
	var r row
	if recStep != nil {
		r.step, r.hasStep = *recStep, true
	}
	roots := mediaRoots(items)
	media := map[string]map[string]any{}
	for _, it := range items {
		if len(it.path) == 0 {
			continue
		}
		if it.err != nil {
			r.bad = append(r.bad, strings.Join(it.path, "/"))
			continue
		}
		if len(it.path) == 1 {
			switch it.path[0] {
			case keyStep:
				if n, ok := wandbfile.ValueInt(it.value); ok {
					r.step, r.hasStep = n, true
				}
				continue
			case keyTimestamp:
				r.time, _ = secondsToMillis(it.value)
				continue
			case keyRuntime:
				continue
			}
		}
		if it.path[0] == keyWandb {
			continue
		}
		if n := rootLen(it.path, roots); n > 0 {
			key := strings.Join(it.path[:n], "/")
			if media[key] == nil {
				media[key] = map[string]any{}
			}
			setPath(media[key], it.path[n:], it.value)
			continue
		}
		r.emit(strings.Join(it.path, "/"), it.value)
	}
	for key, obj := range media {
		r.emit(key, obj)
	}
	slices.SortFunc(r.metrics, schema.CompareMetrics)
	slices.SortStableFunc(r.rich, func(a, b schema.RichValue) int { return strings.Compare(a.Key, b.Key) })
	return r
}

// emit adds value under key: numbers and booleans (as 0/1) as metric points,
// media dicts and other non-numeric values as rich values, plain dicts
// flattened into their leaves.
func (r *row) emit(key string, value any) {
	if f, ok := wandbfile.ValueFloat(value); ok {
		r.metrics = append(r.metrics, schema.Metric{Key: key, Value: f})
		return
	}
	if obj, ok := value.(map[string]any); ok {
		if typ, ok := obj["_type"].(string); ok {
			r.rich = append(r.rich, schema.RichValue{Key: key, Type: typ, JSON: wandbfile.ValueToJSON(obj), Files: wandbfile.MediaFiles(obj)})
			return
		}
		if len(obj) > 0 {
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				r.emit(key+"/"+k, obj[k])
			}
			return
		}
	}
	r.rich = append(r.rich, schema.RichValue{Key: key, Type: wandbfile.ValueKind(value), JSON: wandbfile.ValueToJSON(value)})
}

// mediaRoots returns the paths (joined with NUL) of the media dicts that
// wandb-core split into leaves: every path P with a string leaf P+"_type".
func mediaRoots(items []kv) map[string]bool {
	var roots map[string]bool
	for _, it := range items {
		n := len(it.path)
		if n < 2 || it.path[n-1] != "_type" {
			continue
		}
		if _, ok := it.value.(string); !ok {
			continue
		}
		if roots == nil {
			roots = map[string]bool{}
		}
		roots[strings.Join(it.path[:n-1], "\x00")] = true
	}
	return roots
}

// rootLen returns the length of the shortest proper prefix of path that is
// a media root, or 0.
func rootLen(path []string, roots map[string]bool) int {
	if roots == nil {
		return 0
	}
	for n := 1; n < len(path); n++ {
		if roots[strings.Join(path[:n], "\x00")] {
			return n
		}
	}
	return 0
}

// stepper assigns steps to the rows of a run in file order, across its
// segments. Rows without a step get the previous step plus one (W&B's shared
// mode leaves steps to the server); rows whose step is lower than one
// already seen are dropped (as W&B's own handler does), which keeps every
// key's steps non-decreasing.
type stepper struct {
	last    int64
	seen    bool
	dropped int // rows dropped for going backwards
}

// next returns the step to give a row, or ok=false when the row is dropped.
func (s *stepper) next(r *row) (step int64, ok bool) {
	step = r.step
	if !r.hasStep {
		step = 0
		if s.seen {
			step = s.last + 1
		}
	}
	if s.seen && step < s.last {
		s.dropped++
		return 0, false
	}
	s.last, s.seen = step, true
	return step, true
}

// place sets the step and time of the row's points and values.
func (r *row) place(step int64) {
	for i := range r.metrics {
		r.metrics[i].Step, r.metrics[i].Time = step, r.time
	}
	for i := range r.rich {
		r.rich[i].Step, r.rich[i].Time = step, r.time
	}
}
