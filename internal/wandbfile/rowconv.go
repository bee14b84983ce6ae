package wandbfile

import (
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/runferry/runferry/schema"
)

// The conversion of history rows into the schema's metric points and rich
// values: ConvertValues is the reference, RowConverter converts Rows with
// it or, for rows of numbers, by a fast path that gives the same result
// (see peek.go).

// History keys W&B adds to every row. They become the points' step and
// time, not metrics of their own.
const (
	KeyStep      = "_step"
	KeyTimestamp = "_timestamp"
	KeyRuntime   = "_runtime"
	KeyWandb     = "_wandb"
)

// Value is one parsed history, summary, config or stats item: its key path
// and its value as ParseValueJSON returns it (nil, bool, int64, float64,
// json.Number, string, []any, map[string]any).
type Value struct {
	Path  []string
	Value any
	Err   error // the value_json did not parse; Value is nil
}

// ParseItems parses the values of items.
func ParseItems(items []Item) []Value {
	out := make([]Value, len(items))
	for i, it := range items {
		v, err := ParseValueJSON(it.ValueJSON)
		out[i] = Value{Path: it.Path(), Value: v, Err: err}
	}
	return out
}

// TimestampMillis converts a W&B `_timestamp` (float Unix seconds) to Unix
// milliseconds, rounding to the microsecond first so that 0.123 stays 123.
// ok is false for values that are not numbers, not finite, or beyond
// ±1e15 s.
func TimestampMillis(v any) (int64, bool) {
	return floatSecondsToMillis(ValueFloat(v))
}

// floatSecondsToMillis is TimestampMillis of a value ValueFloat gave f and
// ok for.
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

// RowValues is one history row converted to the schema, but for its
// metric points (which RowConverter keeps, see NumPoints). The Step and
// Time of the rich values are left for the caller to set, once it has
// decided the row's step.
type RowValues struct {
	Step    int64
	HasStep bool  // the row carried `_step` (or HistoryRecord.step)
	Time    int64 // Unix ms from `_timestamp`; 0 if absent
	Rich    []schema.RichValue
	Bad     []string // keys whose value_json did not parse
}

// ConvertValues is the reference conversion of one history row: its
// values into metric points and rich values, sorted by key (points by
// schema.CompareMetrics). recStep is HistoryRecord.step (nil if absent);
// the `_step` item wins over it. Step and Time of the points and rich
// values are left for the caller to set: W&B rows without a step get
// theirs from the rows before.
//
// Keys are the item paths joined with "/". Both encodings are accepted: the
// legacy one (a whole dict in one item's value) and wandb-core's (one item
// per leaf, nested_key): dicts are flattened, except media dicts (those with
// a "_type"), which become one rich value each, rebuilt from their leaves.
func ConvertValues(items []Value, recStep *int64) (RowValues, []schema.Metric) {
	var r convRow
	if recStep != nil {
		r.Step, r.HasStep = *recStep, true
	}
	roots := mediaRoots(items)
	media := map[string]map[string]any{}
	for _, it := range items {
		if len(it.Path) == 0 {
			continue
		}
		if it.Err != nil {
			r.Bad = append(r.Bad, strings.Join(it.Path, "/"))
			continue
		}
		if len(it.Path) == 1 {
			switch it.Path[0] {
			case KeyStep:
				if n, ok := ValueInt(it.Value); ok {
					r.Step, r.HasStep = n, true
				}
				continue
			case KeyTimestamp:
				r.Time, _ = TimestampMillis(it.Value)
				continue
			case KeyRuntime:
				continue
			}
		}
		if it.Path[0] == KeyWandb {
			continue
		}
		if n := rootLen(it.Path, roots); n > 0 {
			key := strings.Join(it.Path[:n], "/")
			if media[key] == nil {
				media[key] = map[string]any{}
			}
			SetPath(media[key], it.Path[n:], it.Value)
			continue
		}
		r.emit(strings.Join(it.Path, "/"), it.Value)
	}
	for key, obj := range media {
		r.emit(key, obj)
	}
	slices.SortFunc(r.metrics, schema.CompareMetrics)
	slices.SortStableFunc(r.Rich, func(a, b schema.RichValue) int { return strings.Compare(a.Key, b.Key) })
	return r.RowValues, r.metrics
}

// convRow is a row being converted by ConvertValues.
type convRow struct {
	RowValues
	metrics []schema.Metric
}

// emit adds value under key: numbers and booleans (as 0/1) as metric points,
// media dicts and other non-numeric values as rich values, plain dicts
// flattened into their leaves.
func (r *convRow) emit(key string, value any) {
	if f, ok := ValueFloat(value); ok {
		r.metrics = append(r.metrics, schema.Metric{Key: key, Value: f})
		return
	}
	if obj, ok := value.(map[string]any); ok {
		if typ, ok := obj["_type"].(string); ok {
			r.Rich = append(r.Rich, schema.RichValue{Key: key, Type: typ, JSON: ValueToJSON(obj), Files: MediaFiles(obj)})
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
	r.Rich = append(r.Rich, schema.RichValue{Key: key, Type: ValueKind(value), JSON: ValueToJSON(value)})
}

// mediaRoots returns the paths (joined with NUL) of the media dicts that
// wandb-core split into leaves: every path P with a string leaf P+"_type".
func mediaRoots(items []Value) map[string]bool {
	var roots map[string]bool
	for _, it := range items {
		n := len(it.Path)
		if n < 2 || it.Path[n-1] != "_type" {
			continue
		}
		if _, ok := it.Value.(string); !ok {
			continue
		}
		if roots == nil {
			roots = map[string]bool{}
		}
		roots[strings.Join(it.Path[:n-1], "\x00")] = true
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

// header is the step and time of a row from its HistoryRecord.step and
// its `_step` and `_timestamp` items, as ConvertValues gives them, parsing
// no other value.
func (r *Row) header() RowValues {
	var out RowValues
	if r.hasStep {
		out.Step, out.HasStep = r.step, true
	}
	for i := range r.items {
		var step bool
		switch {
		case r.isKey(i, KeyStep):
			step = true
		case !r.isKey(i, KeyTimestamp):
			continue
		}
		value := r.bytes(r.items[i].value)
		v := ParseScalar(value)
		if v.Kind() == NotScalar {
			x, err := ParseValueJSON(string(value))
			switch {
			case err != nil:
			case step:
				if n, ok := ValueInt(x); ok {
					out.Step, out.HasStep = n, true
				}
			default:
				out.Time, _ = TimestampMillis(x)
			}
			continue
		}
		if step {
			if n, ok := v.Int(); ok {
				out.Step, out.HasStep = n, true
			}
			continue
		}
		f, ok := v.Float()
		out.Time, _ = floatSecondsToMillis(f, ok)
	}
	return out
}

// maxInterned bounds the key strings a RowConverter keeps for reuse.
const maxInterned = 1 << 16

// RowConverter converts history rows (Row) into the schema: one
// converter for scanned and decoded rows alike. It computes exactly what
// ConvertValues computes for the row's parsed items (ParseItems of
// Row.Items, Row.Step), but converts rows made only of numbers and
// booleans, nearly all rows of a log, without allocating per point: keys
// are interned (and found by item position first: rows usually repeat the
// keys of the row before, in the same order), and the sort order of a
// row's keys is reused for the next row when it has the same keys. Other
// rows go to ConvertValues.
//
// It keeps the metric points of the row last converted (NumPoints,
// PutPoints, AppendPoints), as strings it owns (they do not refer to the
// Row), until the next conversion. The zero RowConverter is ready to use;
// it is not safe for concurrent use.
type RowConverter struct {
	// Reference makes the converter convert every row with ConvertValues
	// and take no fast path: the behaviour the fast path must match, for
	// tests that compare them.
	Reference bool
	// Keys, when set, is shared by converters that convert the rows of
	// one pass on several goroutines: each key's name is then the same
	// string (the same bytes in memory) from each of them, which the
	// pass's consumers compare by pointer first.
	Keys *KeyTable

	intern map[string]int32 // key → index in names
	names  []string
	keyBuf []byte
	byPos  []int32   // 1 + the key id of each item position last time; 0: none
	ids    []int32   // key ids of the current row's points, in item order
	vals   []float64 // their values
	prev   []int32   // ids of the row perm was computed for
	perm   []int32   // sorted position → index in ids
	valid  bool      // perm holds the order of prev
	dups   []schema.Metric
	isDups bool // the row's points are in dups (a repeated key, or a row ConvertValues converted)
}

// Convert converts r. The row's step, time, rich values and unparsable
// keys are returned; its metric points stay in c (see NumPoints), sorted
// as ConvertValues sorts them, or, with points false, are not even
// gathered (NumPoints is then 0). Convert only reads r.
func (c *RowConverter) Convert(r *Row, points bool) RowValues {
	if !c.Reference {
		if out, ok := c.convert(r, points); ok {
			return out
		}
	}
	return c.ConvertParsed(ParseItems(r.Items()), r.Step(), points)
}

// ConvertParsed converts parsed values (such as a row of a pre-0.10
// wandb-history.jsonl) with ConvertValues, keeping the points in c as
// Convert does.
func (c *RowConverter) ConvertParsed(values []Value, recStep *int64, points bool) RowValues {
	out, metrics := ConvertValues(values, recStep)
	c.ids, c.isDups, c.dups = c.ids[:0], points, nil
	if points {
		c.dups = metrics
	}
	return out
}

// Header returns the step and time of r (the Step, HasStep and Time of
// what Convert returns), parsing only its `_step` and `_timestamp` values;
// it leaves c's points alone.
func (c *RowConverter) Header(r *Row) RowValues {
	if !c.Reference {
		return r.header()
	}
	var internal []Item
	for _, it := range r.Items() {
		if it.IsKey(KeyStep) || it.IsKey(KeyTimestamp) {
			internal = append(internal, it)
		}
	}
	out, _ := ConvertValues(ParseItems(internal), r.Step())
	return out
}

// NumPoints returns the number of metric points of the row last
// converted.
func (c *RowConverter) NumPoints() int {
	if c.isDups {
		return len(c.dups)
	}
	return len(c.ids)
}

// PutPoints fills dst with the points from..from+len(dst)-1 (in order) of
// the row last converted, at step and time (Unix ms). The range must lie
// within NumPoints. It allocates nothing: a caller fills its pages in
// place.
func (c *RowConverter) PutPoints(dst []schema.Metric, from int, step, time int64) {
	if c.isDups {
		for k, m := range c.dups[from : from+len(dst)] {
			m.Step, m.Time = step, time
			dst[k] = m
		}
		return
	}
	for k, i := range c.perm[from : from+len(dst)] {
		dst[k] = schema.Metric{Key: c.names[c.ids[i]], Value: c.vals[i], Step: step, Time: time}
	}
}

// AppendPoints appends the points of the row last converted to dst, at
// step and time (Unix ms).
func (c *RowConverter) AppendPoints(dst []schema.Metric, step, time int64) []schema.Metric {
	n := c.NumPoints()
	dst = slices.Grow(dst, n)
	start := len(dst)
	dst = dst[:start+n]
	c.PutPoints(dst[start:], 0, step, time)
	return dst
}

// convert is the fast path of Convert. ok is false when the row holds
// anything but numbers and booleans (or an item whose value does not
// parse): Convert then uses ConvertValues.
func (c *RowConverter) convert(r *Row, points bool) (out RowValues, ok bool) {
	if r.hasStep {
		out.Step, out.HasStep = r.step, true
	}
	if len(c.names) > maxInterned {
		c.reset()
	}
	c.ids, c.vals, c.isDups = c.ids[:0], c.vals[:0], false
	var one [1]span
	for i := range r.items {
		value := r.bytes(r.items[i].value)
		path := r.path(i, &one)
		first := r.bytes(path[0])
		if !points && (len(path) > 1 || (string(first) != KeyStep && string(first) != KeyTimestamp)) {
			// Without points only the step and time need a value: the
			// other items need only be numbers or booleans.
			if !IsScalar(value) {
				return RowValues{}, false
			}
			continue
		}
		v := ParseScalar(value)
		if v.Kind() == NotScalar {
			return RowValues{}, false
		}
		if len(path) == 1 {
			switch string(first) {
			case KeyStep:
				if n, ok := v.Int(); ok {
					out.Step, out.HasStep = n, true
				}
				continue
			case KeyTimestamp:
				f, ok := v.Float()
				out.Time, _ = floatSecondsToMillis(f, ok)
				continue
			case KeyRuntime:
				continue
			}
		}
		if string(first) == KeyWandb {
			continue
		}
		f, fok := v.Float()
		if !fok {
			return RowValues{}, false
		}
		if points {
			c.ids = append(c.ids, c.keyAt(r, i, path))
			c.vals = append(c.vals, f)
		}
	}
	if points {
		c.sort()
	}
	return out, true
}

// reset forgets the interned keys.
func (c *RowConverter) reset() {
	clear(c.intern)
	c.names = c.names[:0]
	c.byPos = c.byPos[:0]
	c.valid = false
}

// keyAt returns the key id of path, the path of item i of r.
func (c *RowConverter) keyAt(r *Row, i int, path []span) int32 {
	if i < len(c.byPos) && c.byPos[i] > 0 && c.pathIs(c.names[c.byPos[i]-1], r, path) {
		return c.byPos[i] - 1
	}
	id := c.key(r, path)
	for len(c.byPos) <= i {
		c.byPos = append(c.byPos, 0)
	}
	c.byPos[i] = id + 1
	return id
}

// pathIs reports whether key is the segments of path joined with "/".
func (c *RowConverter) pathIs(key string, r *Row, path []span) bool {
	if len(path) == 1 {
		return key == string(r.bytes(path[0]))
	}
	for j, s := range path {
		seg := r.bytes(s)
		if j > 0 {
			if key == "" || key[0] != '/' {
				return false
			}
			key = key[1:]
		}
		if len(key) < len(seg) || key[:len(seg)] != string(seg) {
			return false
		}
		key = key[len(seg):]
	}
	return key == ""
}

// key returns the id of the metric key of a path, the segments joined
// with "/", interning it.
func (c *RowConverter) key(r *Row, path []span) int32 {
	b := r.bytes(path[0])
	if len(path) > 1 {
		c.keyBuf = append(c.keyBuf[:0], b...)
		for _, s := range path[1:] {
			c.keyBuf = append(append(c.keyBuf, '/'), r.bytes(s)...)
		}
		b = c.keyBuf
	}
	if id, ok := c.intern[string(b)]; ok {
		return id
	}
	if c.intern == nil {
		c.intern = map[string]int32{}
	}
	s := string(b)
	if c.Keys != nil {
		s = c.Keys.intern(s)
	}
	id := int32(len(c.names))
	c.names = append(c.names, s)
	c.intern[s] = id
	return id
}

// sort orders the current row's points as ConvertValues does
// (schema.CompareMetrics, before step and time are set).
func (c *RowConverter) sort() {
	c.isDups = false
	if c.valid && slices.Equal(c.ids, c.prev) {
		return
	}
	c.perm = c.perm[:0]
	for i := range c.ids {
		c.perm = append(c.perm, int32(i))
	}
	slices.SortFunc(c.perm, func(a, b int32) int { return strings.Compare(c.names[c.ids[a]], c.names[c.ids[b]]) })
	for i := 1; i < len(c.perm); i++ {
		if c.ids[c.perm[i]] == c.ids[c.perm[i-1]] {
			// A repeated key: such points are ordered by value too. Sort the
			// points themselves, as ConvertValues does, and keep no order.
			c.valid, c.isDups = false, true
			c.dups = c.dups[:0]
			for i, id := range c.ids {
				c.dups = append(c.dups, schema.Metric{Key: c.names[id], Value: c.vals[i]})
			}
			slices.SortFunc(c.dups, schema.CompareMetrics)
			return
		}
	}
	c.prev = append(c.prev[:0], c.ids...)
	c.valid = true
}

// KeyTable gives each key name one string for every RowConverter that
// shares it; it is safe for concurrent use. It holds at most maxInterned
// names (past that, names are returned as given).
type KeyTable struct {
	mu    sync.Mutex
	names map[string]string
}

func (t *KeyTable) intern(s string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if n, ok := t.names[s]; ok {
		return n
	}
	if t.names == nil {
		t.names = map[string]string{}
	}
	if len(t.names) < maxInterned {
		t.names[s] = s
	}
	return s
}
