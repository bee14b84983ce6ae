package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"reflect"
	"strings"
	"testing"

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
