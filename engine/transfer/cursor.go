package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
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
}

type cursor struct {
	count              int64
	lastStep, lastTime int64
	h                  hash.Hash
	buf                [24]byte
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

// take notes m and reports whether it is to be written.
func (c *cursors) take(m *schema.Metric) (bool, error) {
	k, ok := c.keys[m.Key]
	if !ok {
		k = &cursor{h: sha256.New()}
		c.keys[m.Key] = k
	}
	k.count++
	k.lastStep, k.lastTime = m.Step, m.Time
	binary.LittleEndian.PutUint64(k.buf[0:], uint64(m.Step))
	binary.LittleEndian.PutUint64(k.buf[8:], uint64(m.Time))
	binary.LittleEndian.PutUint64(k.buf[16:], math.Float64bits(m.Value))
	k.h.Write(k.buf[:])
	if c.base == nil {
		return true, nil
	}
	b, held := c.base[m.Key]
	switch {
	case !held || k.count > b.Count:
		return true, nil
	case k.count == b.Count && k.digest() != b.Digest:
		return false, sinks.CannotAppend(fmt.Sprintf("metric %q: the %d points copied earlier changed in the source", m.Key, b.Count))
	}
	c.kept++
	return false, nil
}

// filter returns the points of page to write, in order (page itself when
// all are).
func (c *cursors) filter(page []schema.Metric) ([]schema.Metric, error) {
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
		out = append(out, state.KeyCursor{Key: key, Count: k.count, LastStep: k.lastStep, LastTime: k.lastTime, Digest: k.digest()})
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

func (k *cursor) digest() string { return hex.EncodeToString(k.h.Sum(nil)[:16]) }
