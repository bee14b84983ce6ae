package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

func points(key string, from, to int64) []schema.Metric {
	var out []schema.Metric
	for s := from; s < to; s++ {
		out = append(out, schema.Metric{Key: key, Step: s, Time: 1000 * s, Value: float64(s) / 3})
	}
	return out
}

// TestTailCursorsResumeDigest: cursors resumed from the digest states the
// ledger keeps (newTailCursors) and given only the tail of a grown
// history, with the held last point once more, record the same cursors
// and mark as cursors given the whole grown history; they write only the
// new points and count the held ones as kept.
func TestTailCursorsResumeDigest(t *testing.T) {
	first := newCursors(nil)
	first.keepState = true
	if _, err := first.filter(append(points("a", 0, 100), points("b", 0, 40)...)); err != nil {
		t.Fatal(err)
	}
	base, _, err := first.finish()
	if err != nil {
		t.Fatal(err)
	}
	whole := newCursors(nil)
	whole.keepState = true
	if _, err := whole.filter(append(append(points("a", 0, 150), points("b", 0, 40)...), points("c", 0, 5)...)); err != nil {
		t.Fatal(err)
	}
	wantKeys, wantMark, _ := whole.finish()

	tail, ok := newTailCursors(base)
	if !ok {
		t.Fatal("no tail cursors from the kept states")
	}
	if h := tail.held(); h["a"].LastStep != 99 || h["b"].LastStep != 39 || h["b"].LastTime != 39000 {
		t.Fatalf("held %v", h)
	}
	written, err := tail.filter(append(append(points("a", 99, 150), points("b", 39, 40)...), points("c", 0, 5)...))
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 50+5 || written[0].Step != 100 || tail.kept != 140 {
		t.Fatalf("wrote %d points from step %d, kept %d; want 55 from step 100, 140 kept", len(written), written[0].Step, tail.kept)
	}
	keys, mark, err := tail.finish()
	if err != nil {
		t.Fatal(err)
	}
	if mark != wantMark || !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("tail cursors %v (%s), want %v (%s)", keys, mark, wantKeys, wantMark)
	}

	// A point at or before a held step that is not the held one: the
	// history changed, the run cannot be appended to.
	tail, _ = newTailCursors(base)
	bad := points("a", 99, 101)
	bad[0].Time++
	if _, err := tail.filter(bad); !errors.Is(err, sinks.ErrCannotAppend) {
		t.Errorf("a held point with another time: %v, want ErrCannotAppend", err)
	}
	// Without the states (a ledger written for another source), or with
	// one that does not give the digest, there are no tail cursors.
	noState := append(base[:0:0], base...)
	noState[0].Hash = ""
	if _, ok := newTailCursors(noState); ok {
		t.Error("tail cursors without a digest state")
	}
	wrong := append(base[:0:0], base...)
	wrong[0].Hash = base[1].Hash
	if _, ok := newTailCursors(wrong); ok {
		t.Error("tail cursors from a state that does not give the key's digest")
	}
}

// TestCursorDigestsUnchanged: the cursors' digests are SHA-256 over each
// point's step, time and value bits (little-endian, 24 bytes a point), in
// the source's order, computed here independently: whatever the order the
// keys come in, with many keys sharing a slot of the recent-key cache,
// with equal keys in distinct strings, with a key's digest asked in the
// middle of its points (a base compared at its count), and counts not a
// multiple of the digest's batch.
func TestCursorDigestsUnchanged(t *testing.T) {
	var page []schema.Metric
	want := map[string]hash.Hash{}
	counts := map[string]int64{}
	keys := []string{}
	for i := range 300 {
		keys = append(keys, fmt.Sprintf("k%d/%s", i%97, strings.Repeat("x", i%5)))
	}
	for s := range int64(23) {
		for i, key := range keys {
			if (int(s)+i)%3 == 0 {
				continue
			}
			key = string([]byte(key)) // another string of the same bytes
			m := schema.Metric{Key: key, Step: s, Time: s*1000 + int64(i), Value: float64(i) / float64(s+1)}
			page = append(page, m)
			h := want[key]
			if h == nil {
				h = sha256.New()
				want[key] = h
			}
			var b [24]byte
			binary.LittleEndian.PutUint64(b[0:], uint64(m.Step))
			binary.LittleEndian.PutUint64(b[8:], uint64(m.Time))
			binary.LittleEndian.PutUint64(b[16:], math.Float64bits(m.Value))
			h.Write(b[:])
			counts[key]++
		}
	}
	c := newCursors(nil)
	c.keepState = true
	half := len(page) / 2
	if _, err := c.filter(page[:half]); err != nil {
		t.Fatal(err)
	}
	// A digest asked in the middle, then more points.
	mid := c.keys[page[0].Key].digest()
	if _, err := c.filter(page[half:]); err != nil {
		t.Fatal(err)
	}
	got, _, err := c.finish()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d cursors, want %d", len(got), len(want))
	}
	for _, k := range got {
		if d := hex.EncodeToString(want[k.Key].Sum(nil)[:16]); k.Digest != d || k.Count != counts[k.Key] {
			t.Fatalf("key %q: %d points, digest %s; want %d, %s", k.Key, k.Count, k.Digest, counts[k.Key], d)
		}
	}
	h := sha256.New()
	for _, m := range page[:half] {
		if m.Key == page[0].Key {
			var b [24]byte
			binary.LittleEndian.PutUint64(b[0:], uint64(m.Step))
			binary.LittleEndian.PutUint64(b[8:], uint64(m.Time))
			binary.LittleEndian.PutUint64(b[16:], math.Float64bits(m.Value))
			h.Write(b[:])
		}
	}
	if d := hex.EncodeToString(h.Sum(nil)[:16]); mid != d {
		t.Errorf("the digest asked in the middle %s, want %s", mid, d)
	}
	// The kept states resume to the same digests.
	if _, ok := newTailCursors(got); !ok {
		t.Error("the kept digest states do not give the digests")
	}
}

// BenchmarkCursors: a fresh copy's cursors over pages of 10 keys a step,
// the keys sharing their strings as a source's pages do.
func BenchmarkCursors(b *testing.B) {
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("train/metric_%d", i)
	}
	page := make([]schema.Metric, 0, 10000)
	for s := range int64(1000) {
		for i, k := range keys {
			page = append(page, schema.Metric{Key: k, Step: s, Time: s * 1000, Value: float64(i) * 0.5})
		}
	}
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		c := newCursors(nil)
		if _, err := c.filter(page); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.finish(); err != nil {
			b.Fatal(err)
		}
	}
}

// refDigest is the cursors' digest written the plain way: SHA-256 over
// each point's step, time and value bits, little-endian, one Write per
// point, the first 16 bytes in hex.
func refDigest(pts []schema.Metric) string {
	h := sha256.New()
	for _, m := range pts {
		var b [24]byte
		binary.LittleEndian.PutUint64(b[0:], uint64(m.Step))
		binary.LittleEndian.PutUint64(b[8:], uint64(m.Time))
		binary.LittleEndian.PutUint64(b[16:], math.Float64bits(m.Value))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// TestCursorDigestsMatchReference: over varied points (NaN of two
// payloads, ±Inf, -0, subnormals, steps and times at the int64 bounds and
// negative, 500 keys of lengths 3-42, many sharing a slot, equal keys
// in distinct strings, pages cut at odd places), a fresh copy's cursors
// (the unrolled loop, addAll), cursors with a base (take), and tail
// cursors resumed from the kept states all record, per key, the count,
// last point and digest of refDigest over the key's points in order, and
// the mark of those.
func TestCursorDigestsMatchReference(t *testing.T) {
	values := []float64{math.NaN(), math.Float64frombits(0x7ff8000000000bad), math.Inf(1), math.Inf(-1),
		math.Copysign(0, -1), 0, 5e-324, -math.MaxFloat64, 1.0 / 3}
	steps := []int64{0, 1, -1, math.MaxInt64, math.MinInt64, 1 << 40, -(1 << 53) - 1}
	var keys []string
	for i := range 500 {
		keys = append(keys, fmt.Sprintf("%s/m%d", strings.Repeat("x", i%37), i))
	}
	var all []schema.Metric
	for j := range 4000 {
		key := string([]byte(keys[(j*j+3*j)%len(keys)])) // another string of the same bytes
		m := schema.Metric{Key: key, Step: steps[j%len(steps)] + int64(j), Time: steps[(j/3)%len(steps)] - int64(j),
			Value: values[j%len(values)]}
		if j%11 == 0 {
			m.Value = float64(j) * 1e300
		}
		if j >= 2500 { // the tail: steps past every held one, up to the bound
			m.Step = math.MaxInt64 - 3999 + int64(j)
		}
		all = append(all, m)
	}
	want := func(cut int) ([]state.KeyCursor, string) {
		var out []state.KeyCursor
		seen := map[string][]schema.Metric{}
		for _, m := range all[:cut] {
			seen[m.Key] = append(seen[m.Key], m)
		}
		for _, key := range slices.Sorted(maps.Keys(seen)) {
			p := seen[key]
			last := p[len(p)-1]
			out = append(out, state.KeyCursor{Key: key, Count: int64(len(p)), LastStep: last.Step, LastTime: last.Time, Digest: refDigest(p)})
		}
		return out, markOf(out)
	}
	feed := func(c *cursors, pts []schema.Metric) []schema.Metric {
		t.Helper()
		var written []schema.Metric
		for len(pts) > 0 { // pages of 1 to 97 points
			n := min(len(pts), 1+len(pts)%97)
			w, err := c.filter(pts[:n])
			if err != nil {
				t.Fatal(err)
			}
			written, pts = append(written, w...), pts[n:]
		}
		return written
	}
	check := func(name string, got []state.KeyCursor, mark string, cut int) {
		t.Helper()
		wantKeys, wantMark := want(cut)
		for i := range got {
			got[i].Hash = ""
		}
		if !reflect.DeepEqual(got, wantKeys) || mark != wantMark {
			t.Fatalf("%s: cursors differ from the reference (%d keys, mark %s; want %d keys, %s)", name, len(got), mark, len(wantKeys), wantMark)
		}
	}

	// A fresh copy of the first 2,500 points, its states kept.
	first := newCursors(nil)
	first.keepState = true
	feed(first, all[:2500])
	base, mark, err := first.finish()
	if err != nil {
		t.Fatal(err)
	}
	baseCopy := slices.Clone(base)
	check("fresh", baseCopy, mark, 2500)

	// With that base, the whole history: the held points only digested.
	withBase := newCursors(base)
	if w := feed(withBase, all); len(w) != len(all)-2500 || withBase.kept != 2500 {
		t.Fatalf("with a base: %d written, %d kept; want %d, 2500", len(w), withBase.kept, len(all)-2500)
	}
	got, mark, err := withBase.finish()
	if err != nil {
		t.Fatal(err)
	}
	check("with a base", got, mark, len(all))

	// Tail cursors resumed from the states, given the points after the
	// base (their steps past every held step).
	tail, ok := newTailCursors(base)
	if !ok {
		t.Fatal("no tail cursors from the kept states")
	}
	if w := feed(tail, all[2500:]); len(w) != len(all)-2500 || tail.kept != 2500 {
		t.Fatalf("tail: %d written, %d kept; want %d, 2500", len(w), tail.kept, len(all)-2500)
	}
	got, mark, err = tail.finish()
	if err != nil {
		t.Fatal(err)
	}
	check("tail", got, mark, len(all))
}

// BenchmarkCursorsWithBase: an append's cursors (a sync of a grown run):
// the pages of BenchmarkCursors against a base holding their first half,
// which is only digested, and the second half written.
func BenchmarkCursorsWithBase(b *testing.B) {
	keys := make([]string, 10)
	for i := range keys {
		keys[i] = fmt.Sprintf("train/metric_%d", i)
	}
	page := make([]schema.Metric, 0, 10000)
	for s := range int64(1000) {
		for i, k := range keys {
			page = append(page, schema.Metric{Key: k, Step: s, Time: s * 1000, Value: float64(i) * 0.5})
		}
	}
	first := newCursors(nil)
	if _, err := first.filter(page[:len(page)/2]); err != nil {
		b.Fatal(err)
	}
	base, _, err := first.finish()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		c := newCursors(base)
		if _, err := c.filter(page); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.finish(); err != nil {
			b.Fatal(err)
		}
	}
}
