package wandbdir

import (
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// header is histRow.header for a scanned row: the step and time of the
// row from its `_step` and `_timestamp` items, with convertRow's rules.
func (r *rawRow) header() row {
	var out row
	if r.hasStep {
		out.step, out.hasStep = r.step, true
	}
	for i := range r.items {
		var step bool
		switch {
		case r.isKey(i, keyStep):
			step = true
		case !r.isKey(i, keyTimestamp):
			continue
		}
		value := r.bytes(r.items[i].value)
		v := wandbfile.ParseScalar(value)
		if v.Kind() == wandbfile.NotScalar {
			x, err := wandbfile.ParseValueJSON(string(value))
			switch {
			case err != nil:
			case step:
				if n, ok := wandbfile.ValueInt(x); ok {
					out.step, out.hasStep = n, true
				}
			default:
				out.time, _ = secondsToMillis(x)
			}
			continue
		}
		if step {
			if n, ok := v.Int(); ok {
				out.step, out.hasStep = n, true
			}
			continue
		}
		f, ok := v.Float()
		out.time, _ = floatSecondsToMillis(f, ok)
	}
	return out
}

// maxInterned bounds the key strings a rowConverter keeps for reuse.
const maxInterned = 1 << 16

// rowConverter turns scanned rows made only of numbers and booleans into
// sorted metric points without allocating per point: keys are interned
// (and found by item position first: rows usually repeat the keys of the
// row before, in the same order), and the sort order of a row's keys is
// reused for the next row when it has the same keys. It computes what
// convertRow computes for such rows. Its buffers hold no pointers but the
// key table. Not safe for concurrent use.
type rowConverter struct {
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
	isDups bool // the row repeats a key: its points are in dups
}

// convert reads r. ok is false when the row holds anything but numbers
// and booleans (or an item whose value does not parse): the caller must
// then use histRow.convert. The row's step and time are set in out, its
// points are left in c for appendPoints; with points false they are not
// even gathered.
func (c *rowConverter) convert(r *rawRow, points bool) (out row, ok bool) {
	if r.hasStep {
		out.step, out.hasStep = r.step, true
	}
	if len(c.names) > maxInterned {
		c.reset()
	}
	c.ids, c.vals = c.ids[:0], c.vals[:0]
	var one [1]span
	for i := range r.items {
		v := wandbfile.ParseScalar(r.bytes(r.items[i].value))
		if v.Kind() == wandbfile.NotScalar {
			return row{}, false
		}
		path := r.path(i, &one)
		first := r.bytes(path[0])
		if len(path) == 1 {
			switch string(first) {
			case keyStep:
				if n, ok := v.Int(); ok {
					out.step, out.hasStep = n, true
				}
				continue
			case keyTimestamp:
				f, ok := v.Float()
				out.time, _ = floatSecondsToMillis(f, ok)
				continue
			case keyRuntime:
				continue
			}
		}
		if string(first) == keyWandb {
			continue
		}
		f, fok := v.Float()
		if !fok {
			return row{}, false
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
func (c *rowConverter) reset() {
	clear(c.intern)
	c.names = c.names[:0]
	c.byPos = c.byPos[:0]
	c.valid = false
}

// keyAt returns the key id of path, the path of item i of r.
func (c *rowConverter) keyAt(r *rawRow, i int, path []span) int32 {
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
func (c *rowConverter) pathIs(key string, r *rawRow, path []span) bool {
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
func (c *rowConverter) key(r *rawRow, path []span) int32 {
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
	id := int32(len(c.names))
	c.names = append(c.names, s)
	c.intern[s] = id
	return id
}

// sort orders the current row's points as convertRow does
// (schema.CompareMetrics, before step and time are set).
func (c *rowConverter) sort() {
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
			// points themselves, as convertRow does, and keep no order.
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

// appendPoints adds the points of the row last converted to p, at step
// and time (Unix ms).
func (c *rowConverter) appendPoints(p *pager[schema.Metric], step, time int64) error {
	if c.isDups {
		for _, m := range c.dups {
			m.Step, m.Time = step, time
			if err := p.add(m); err != nil {
				return err
			}
		}
		return nil
	}
	for perm := c.perm; len(perm) > 0; {
		dst := p.extend(len(perm))
		for k, i := range perm[:len(dst)] {
			dst[k] = schema.Metric{Key: c.names[c.ids[i]], Value: c.vals[i], Step: step, Time: time}
		}
		perm = perm[len(dst):]
		if err := p.flushFull(); err != nil {
			return err
		}
	}
	return nil
}
