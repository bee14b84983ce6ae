package transfer

import (
	"crypto/sha256"
	"encoding"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"math"
	"slices"
	"strings"
	"unsafe"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
)

// cursors follow a run's metric history key by key as it is copied: per
// key the number of points, the last one and a digest of all of them (a
// SHA-256 over each point's step, time and value bits, in the source's
// order), which the ledger keeps (state.KeyCursor) so that a later job can
// tell, by reading the source alone, whether the history still starts with
// what was copied.
//
// With a base (the ledger's cursors of the copy the sink holds), take also
// decides which points to write: the first base Count points of a key are
// held already and are only digested; once a key reached its base Count,
// its digest must equal the base's, else the history was rewritten and the
// run cannot be appended to (sinks.ErrCannotAppend).
type cursors struct {
	keys map[string]*cursor
	base map[string]state.KeyCursor // nil: a fresh copy, every point is written
	kept int64                      // points held already (with a base)
	// keepState records, with each key's cursor, the state of its digest
	// (state.KeyCursor.Hash), so that a later append can go on from it
	// without reading the points again (see newTailCursors).
	keepState bool
	// tail is set for cursors made by newTailCursors: the source yields
	// only the tail of the history (sources.TailReader).
	tail bool
	// recent holds the cursors of keys seen lately, by slotOf their key:
	// a page's points cycle through a row's keys, and finding each in
	// keys (a map of strings) was a tenth of a copy's CPU.
	recent [recentSlots]recentKey
}

// recentSlots is the size of cursors.recent (a power of two).
const recentSlots = 64

type recentKey struct {
	key string
	k   *cursor
}

// slotOf places key in cursors.recent, from its length and three of its
// bytes (keys of one run often differ only in their last).
func slotOf(key string) int {
	n := len(key)
	if n == 0 {
		return 0
	}
	return (n*7 + int(key[0])*3 + int(key[n/2])*5 + int(key[n-1])*11) & (recentSlots - 1)
}

type cursor struct {
	count              int64
	lastStep, lastTime int64
	h                  hash.Hash
	// buf holds the last points digested, not yet written to h (n
	// bytes): h is written pointBatch points at a time.
	buf [pointBatch * pointBytes]byte
	n   int
	// base is the key's cursor in cursors.base, nil when it has none
	// (found once, when the cursor is made, not a map lookup a point).
	base *state.KeyCursor
	// past is set, in tail mode, once a point after the base's LastStep
	// was taken; sawLast once the held point at LastStep came again.
	past, sawLast bool
}

func newCursors(base []state.KeyCursor) *cursors {
	c := &cursors{keys: map[string]*cursor{}}
	if base != nil {
		c.base = make(map[string]state.KeyCursor, len(base))
		for _, k := range base {
			c.base[k.Key] = k
		}
	}
	return c
}

// newTailCursors returns cursors that go on from base without the points
// it covers (sources.TailReader): each key's digest resumes from the state
// the ledger kept (state.KeyCursor.Hash), so the cursors recorded after
// the append are those a read of the whole history would give. ok is
// false when a key of base has no state, or one that does not give the
// key's digest.
func newTailCursors(base []state.KeyCursor) (c *cursors, ok bool) {
	c = &cursors{keys: map[string]*cursor{}, base: make(map[string]state.KeyCursor, len(base)), tail: true, keepState: true}
	for _, b := range base {
		raw, err := base64.StdEncoding.DecodeString(b.Hash)
		if b.Hash == "" || err != nil {
			return nil, false
		}
		h := sha256.New()
		if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(raw); err != nil {
			return nil, false
		}
		k := &cursor{count: b.Count, lastStep: b.LastStep, lastTime: b.LastTime, h: h, base: &b}
		if k.digest() != b.Digest {
			return nil, false
		}
		c.base[b.Key], c.keys[b.Key] = b, k
		c.kept += b.Count
	}
	return c, true
}

// held returns what the base holds of each key, for a tail read.
func (c *cursors) held() map[string]sources.HeldKey {
	out := make(map[string]sources.HeldKey, len(c.base))
	for key, b := range c.base {
		out[key] = sources.HeldKey{LastStep: b.LastStep, LastTime: b.LastTime}
	}
	return out
}

// pointBytes is the size of a point in a digest; pointBatch the number of
// points written to a digest at once (eight points are three SHA-256
// blocks).
const (
	pointBytes = 24
	pointBatch = 8
)

// add digests m into k. cursors.addAll repeats its body on purpose (see
// there): change both together.
func (k *cursor) add(m *schema.Metric) {
	k.count++
	k.lastStep, k.lastTime = m.Step, m.Time
	n := k.n
	b := k.buf[n : n+pointBytes : n+pointBytes]
	binary.LittleEndian.PutUint64(b[0:], uint64(m.Step))
	binary.LittleEndian.PutUint64(b[8:], uint64(m.Time))
	binary.LittleEndian.PutUint64(b[16:], math.Float64bits(m.Value))
	k.n = n + pointBytes
	if k.n == len(k.buf) {
		k.write()
	}
}

// write writes the full buf to h.
func (k *cursor) write() {
	k.h.Write(k.buf[:])
	k.n = 0
}

// flush writes the points held in buf to h.
func (k *cursor) flush() {
	if k.n > 0 {
		k.h.Write(k.buf[:k.n])
		k.n = 0
	}
}

// cursor returns the cursor of key, made if it is new. Its common case,
// a key found in recent, is inlined.
func (c *cursors) cursor(key string) *cursor {
	r := &c.recent[slotOf(key)]
	if r.k != nil && r.key == key {
		return r.k
	}
	return c.lookup(key, r)
}

// lookup finds the cursor of key in keys, or makes it, and puts it in r.
func (c *cursors) lookup(key string, r *recentKey) *cursor {
	k, ok := c.keys[key]
	if !ok {
		k = &cursor{h: sha256.New()}
		if b, held := c.base[key]; held {
			k.base = &b
		}
		c.keys[key] = k
	}
	r.key, r.k = key, k
	return k
}

// addAll digests every point of page, in order: take for a fresh copy
// (no base), where every point is written. It is cursor and add written
// out in one loop (neither is small enough to be inlined, and the calls
// were a fifth of the cursors' time); the values are add's.
//
// The copy of add's body below is on purpose, not an oversight: written
// out here it is compiled into the loop, where a call to add (too large
// for the compiler to inline) was not. It made BenchmarkCursors 0.84x in
// CPU and 0.49x in instructions outside SHA-256 (branch cd, 60c0add;
// docs/BENCHMARKS.md "Cursor digests (branch cd)"). Keep it as it is,
// and change add and this loop together: TestCursorDigestsMatchReference
// checks that both digest the same bytes.
func (c *cursors) addAll(page []schema.Metric) {
	for i := range page {
		m := &page[i]
		r := &c.recent[slotOf(m.Key)]
		k := r.k
		// Equal keys of a page mostly share their bytes: the pointers'
		// comparison spares the call comparing the bytes.
		if k == nil || len(r.key) != len(m.Key) || unsafe.StringData(r.key) != unsafe.StringData(m.Key) && r.key != m.Key {
			k = c.lookup(m.Key, r)
		}
		k.count++
		k.lastStep, k.lastTime = m.Step, m.Time
		n := k.n
		b := k.buf[n : n+pointBytes : n+pointBytes]
		binary.LittleEndian.PutUint64(b[0:], uint64(m.Step))
		binary.LittleEndian.PutUint64(b[8:], uint64(m.Time))
		binary.LittleEndian.PutUint64(b[16:], math.Float64bits(m.Value))
		k.n = n + pointBytes
		if k.n == len(k.buf) {
			k.write()
		}
	}
}

// take notes m and reports whether it is to be written.
func (c *cursors) take(m *schema.Metric) (bool, error) {
	k := c.cursor(m.Key)
	if c.tail {
		return c.takeTail(k, m)
	}
	k.add(m)
	if c.base == nil {
		return true, nil
	}
	b := k.base
	switch {
	case b == nil || k.count > b.Count:
		return true, nil
	case k.count == b.Count && k.digest() != b.Digest:
		return false, sinks.CannotAppend(fmt.Sprintf("metric %q: the %d points copied earlier changed in the source", m.Key, b.Count))
	}
	c.kept++
	return false, nil
}

// takeTail is take for tail cursors: a key's points up to its base
// LastStep are held (the one at LastStep may come again, with the held
// time, and is not written); every point after it is new.
func (c *cursors) takeTail(k *cursor, m *schema.Metric) (bool, error) {
	if b := k.base; b != nil && !k.past {
		switch {
		case m.Step == b.LastStep && m.Time == b.LastTime && !k.sawLast:
			k.sawLast = true
			return false, nil
		case m.Step <= b.LastStep:
			return false, sinks.CannotAppend(fmt.Sprintf("metric %q: the source's history has a point at step %d that was not copied, at or before the last step copied (%d)", m.Key, m.Step, b.LastStep))
		}
		k.past = true
	}
	k.add(m)
	return true, nil
}

// filter returns the points of page to write, in order (page itself when
// all are).
func (c *cursors) filter(page []schema.Metric) ([]schema.Metric, error) {
	if c.base == nil && !c.tail {
		c.addAll(page)
		return page, nil
	}
	var out []schema.Metric
	for i := range page {
		write, err := c.take(&page[i])
		if err != nil {
			return nil, err
		}
		switch {
		case !write && out == nil:
			out = slices.Clip(page[:i])
		case write && out != nil:
			out = append(out, page[i])
		}
	}
	if out == nil {
		return page, nil
	}
	return out, nil
}

// finish checks, with a base, that every key held reached its base count
// (else the history was shortened), and returns the cursors to record and
// the mark: a digest of them all.
func (c *cursors) finish() ([]state.KeyCursor, string, error) {
	for _, key := range slices.Sorted(maps.Keys(c.base)) {
		b := c.base[key]
		if k := c.keys[key]; k == nil || k.count < b.Count {
			n := int64(0)
			if k != nil {
				n = k.count
			}
			return nil, "", sinks.CannotAppend(fmt.Sprintf("metric %q: the source holds %d points, %d were copied earlier (history shortened)", key, n, b.Count))
		}
	}
	out := make([]state.KeyCursor, 0, len(c.keys))
	for key, k := range c.keys {
		kc := state.KeyCursor{Key: key, Count: k.count, LastStep: k.lastStep, LastTime: k.lastTime, Digest: k.digest()}
		if c.keepState {
			k.flush()
			st, err := k.h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				return nil, "", fault.Permanent(fmt.Errorf("cursor of metric %q: %w", key, err))
			}
			kc.Hash = base64.StdEncoding.EncodeToString(st)
		}
		out = append(out, kc)
	}
	slices.SortFunc(out, func(a, b state.KeyCursor) int { return strings.Compare(a.Key, b.Key) })
	return out, markOf(out), nil
}

// markOf derives the mark of a commit from its cursors, sorted by key.
func markOf(keys []state.KeyCursor) string {
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%q %d %s\n", k.Key, k.Count, k.Digest)
	}
	return "m1:" + hex.EncodeToString(h.Sum(nil)[:16])
}

func (k *cursor) digest() string {
	k.flush()
	return hex.EncodeToString(k.h.Sum(nil)[:16])
}
