package wandbfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"
)

// readResult is everything a Reader produced for one input.
type readResult struct {
	payloads [][]byte
	offsets  []int64
	damage   []Damage
	legacy   bool
}

// readBytes reads every record of data, failing the test on a Next error.
func readBytes(t testing.TB, data []byte) readResult {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), "test.wandb")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	return drain(t, r)
}

// drain reads r to the end.
func drain(t testing.TB, r *Reader) readResult {
	t.Helper()
	var res readResult
	for {
		payload, offset, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		res.payloads = append(res.payloads, append([]byte(nil), payload...))
		res.offsets = append(res.offsets, offset)
	}
	res.damage = r.Damage()
	res.legacy = r.LegacyCoreLayout()
	return res
}

// patternPayload is n deterministic bytes distinct per seed.
func patternPayload(seed, n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(seed*31 + i*7 + i>>8)
	}
	return p
}

// assertRecords checks that res holds exactly the given written records.
func assertRecords(t *testing.T, res readResult, want []writtenRecord) {
	t.Helper()
	if len(res.payloads) != len(want) {
		t.Fatalf("got %d records, want %d (damage %v)", len(res.payloads), len(want), res.damage)
	}
	for i, w := range want {
		if !bytes.Equal(res.payloads[i], w.payload) {
			t.Errorf("record %d: payload differs (got %d bytes, want %d)", i, len(res.payloads[i]), len(w.payload))
		}
		if res.offsets[i] != w.offset {
			t.Errorf("record %d: offset %d, want %d", i, res.offsets[i], w.offset)
		}
	}
}

// mixedFile writes records of many sizes (FULL, FIRST/MIDDLE/LAST across
// several blocks, empty ones) and returns the writer.
func mixedFile(legacy bool) *testWriter {
	w := newTestWriter(legacy)
	sizes := []int{0, 1, 100, 5000, BlockSize - 200, 3, 2*BlockSize + 11, 0, 40, BlockSize, 700, 9000, 5}
	for i, n := range sizes {
		w.write(patternPayload(i, n))
	}
	return w
}

func TestReaderRoundTrip(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			w := mixedFile(legacy)
			res := readBytes(t, w.bytes())
			assertRecords(t, res, w.written)
			if len(res.damage) != 0 {
				t.Errorf("unexpected damage: %v", res.damage)
			}
			if res.legacy != legacy {
				t.Errorf("LegacyCoreLayout() = %v, want %v", res.legacy, legacy)
			}
		})
	}
}

// TestReaderBlockTails puts the end of the first record at every distance
// from the block end that matters: padding (fewer than 7 bytes left), an
// exact fit, and room for only a zero-length FIRST chunk.
func TestReaderBlockTails(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		firstBlockData := BlockSize - FileHeaderSize
		if legacy {
			firstBlockData = BlockSize
		}
		for left := 0; left <= 16; left++ {
			w := newTestWriter(legacy)
			w.write(patternPayload(1, firstBlockData-ChunkHeaderSize-left))
			second := w.write(patternPayload(2, 50))
			w.write(patternPayload(3, BlockSize+3))
			if left == ChunkHeaderSize && len(second.chunks) != 2 {
				t.Fatalf("left=%d: writer did not produce a zero-length first chunk", left)
			}
			res := readBytes(t, w.bytes())
			assertRecords(t, res, w.written)
			if len(res.damage) != 0 || res.legacy != legacy {
				t.Errorf("legacy=%v left=%d: damage %v, legacy detected %v", legacy, left, res.damage, res.legacy)
			}
		}
	}
}

// interestingOffsets returns the offsets near chunk and block boundaries of
// a file, plus a stride through the rest.
func interestingOffsets(w *testWriter, stride int) []int {
	size := len(w.bytes())
	seen := map[int]bool{}
	add := func(center int64) {
		for d := -9; d <= 9; d++ {
			if o := int(center) + d; o >= 0 && o <= size {
				seen[o] = true
			}
		}
	}
	for _, rec := range w.written {
		for _, c := range rec.chunks {
			add(c)
		}
		add(rec.end)
	}
	for b := int64(0); b <= int64(size); b += BlockSize {
		add(b)
		add(b + w.grid)
	}
	for o := 0; o <= size; o += stride {
		seen[o] = true
	}
	var out []int
	for o := range seen {
		out = append(out, o)
	}
	return out
}

// TestReaderTruncatedEverywhere cuts a file at many offsets (every offset
// near a chunk or block boundary): every record that ends before the cut is
// returned, and a cut inside a record is reported once, as truncation, at
// the record's offset.
func TestReaderTruncatedEverywhere(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		w := mixedFile(legacy)
		data := w.bytes()
		for _, cut := range interestingOffsets(w, 31) {
			if cut < FileHeaderSize {
				if _, err := NewReader(bytes.NewReader(data[:cut]), "cut.wandb"); err == nil {
					t.Errorf("cut=%d: NewReader accepted a short header", cut)
				}
				continue
			}
			res := readBytes(t, data[:cut])
			var want []writtenRecord
			var broken *writtenRecord
			for i, rec := range w.written {
				if rec.end <= int64(cut) {
					want = append(want, rec)
				} else if broken == nil && rec.offset < int64(cut) && !allZero(data[rec.offset:cut]) {
					broken = &w.written[i]
				}
			}
			if legacy && cut >= BlockSize && cut < BlockSize+legacyGridOffset && broken != nil {
				// Cut inside the chunk that crosses the standard block end:
				// the two layouts cannot be told apart, and the standard
				// reading reports that chunk as damage instead.
				assertRecords(t, res, want)
				if len(res.damage) == 0 {
					t.Errorf("legacy cut=%d: no damage reported", cut)
				}
				continue
			}
			assertRecords(t, res, want)
			if broken == nil {
				if len(res.damage) != 0 {
					t.Errorf("legacy=%v cut=%d: unexpected damage %v", legacy, cut, res.damage)
				}
				continue
			}
			if len(res.damage) != 1 || !res.damage[0].Truncated || res.damage[0].Offset != broken.offset {
				t.Errorf("legacy=%v cut=%d: damage %v, want one truncation at %d", legacy, cut, res.damage, broken.offset)
			}
		}
	}
}

// TestReaderCorruptByte flips one byte at many offsets: reading never
// fails, the bad chunk's offset is reported, records entirely before it are
// returned, and records that start in a later block are returned too.
func TestReaderCorruptByte(t *testing.T) {
	w := mixedFile(false)
	orig := w.bytes()
	for _, pos := range interestingOffsets(w, 29) {
		if pos < FileHeaderSize || pos >= len(orig) {
			continue
		}
		data := bytes.Clone(orig)
		data[pos] ^= 0x5A
		res := readBytes(t, data)

		var hit, hitRecord int64 = -1, -1 // chunk containing pos, its record
		for _, rec := range w.written {
			for i, c := range rec.chunks {
				end := rec.end
				if i+1 < len(rec.chunks) {
					end = rec.chunks[i+1]
				}
				if int64(pos) >= c && int64(pos) < min(end, c+BlockSize-(c%BlockSize)) {
					hit, hitRecord = c, rec.offset
				}
			}
		}
		if hit < 0 { // in zero padding: reported, nothing lost
			assertRecords(t, res, w.written)
			if len(res.damage) != 1 || res.damage[0].Offset != int64(pos) {
				t.Errorf("pos=%d (padding): damage %v", pos, res.damage)
			}
			continue
		}
		hitBlock := hit / BlockSize
		var want []writtenRecord
		for _, rec := range w.written {
			if rec.end <= hit || rec.offset/BlockSize > hitBlock {
				want = append(want, rec)
			}
		}
		got := map[string]bool{}
		for _, p := range res.payloads {
			got[string(p)] = true
		}
		for _, rec := range want {
			if !got[string(rec.payload)] {
				t.Errorf("pos=%d: record at %d lost", pos, rec.offset)
			}
		}
		found := false
		for _, d := range res.damage {
			found = found || d.Offset == hit || d.Offset == hitRecord
		}
		if !found {
			t.Errorf("pos=%d: no damage reported at chunk %d: %v", pos, hit, res.damage)
		}
	}
}

func TestNewReaderBadHeader(t *testing.T) {
	good := newTestWriter(false).bytes()
	tests := []struct {
		name   string
		data   []byte
		offset string
	}{
		{"empty", nil, "offset 0"},
		{"short", good[:3], "offset 3"},
		{"ident", append([]byte(":W&C"), good[4:]...), "offset 0"},
		{"magic", append(bytes.Clone(good[:4]), 0xE1, 0xBF, 0), "offset 4"},
		{"version", append(bytes.Clone(good[:6]), 1), "offset 6"},
	}
	for _, tt := range tests {
		_, err := NewReader(bytes.NewReader(tt.data), "bad.wandb")
		if err == nil {
			t.Errorf("%s: NewReader accepted a bad header", tt.name)
			continue
		}
		if !strings.Contains(err.Error(), "bad.wandb") || !strings.Contains(err.Error(), tt.offset) {
			t.Errorf("%s: error %q does not name the file and %s", tt.name, err, tt.offset)
		}
	}
}

func TestReaderHeaderOnly(t *testing.T) {
	res := readBytes(t, newTestWriter(false).bytes())
	if len(res.payloads) != 0 || len(res.damage) != 0 {
		t.Errorf("header-only file: %d records, damage %v", len(res.payloads), res.damage)
	}
}

// TestReaderChunkLengthBeyondBlock declares a chunk longer than its block:
// reported at that chunk, and reading resumes at the next block.
func TestReaderChunkLengthBeyondBlock(t *testing.T) {
	w := newTestWriter(false)
	w.write(patternPayload(1, 10))
	bad := int64(w.buf.Len())
	w.buf.Write([]byte{1, 2, 3, 4, 0xFF, 0xFF, chunkFull}) // 65535 bytes
	w.buf.Write(make([]byte, w.blockLeft()))               // rest of block 0
	after := w.write(patternPayload(2, 10))
	res := readBytes(t, w.bytes())
	assertRecords(t, res, []writtenRecord{w.written[0], after})
	if len(res.damage) != 1 || res.damage[0].Offset != bad || res.damage[0].Truncated {
		t.Errorf("damage %v, want one at %d", res.damage, bad)
	}
}

// TestReaderZeroedBlock skips an all-zero block (preallocated space) without
// reporting it.
func TestReaderZeroedBlock(t *testing.T) {
	w := newTestWriter(false)
	w.write(patternPayload(1, 10))
	w.buf.Write(make([]byte, w.blockLeft()+BlockSize))
	w.write(patternPayload(2, 10))
	res := readBytes(t, w.bytes())
	assertRecords(t, res, w.written)
	if len(res.damage) != 0 {
		t.Errorf("damage %v", res.damage)
	}
}

// TestReaderOrphanChunks feeds chunk sequences that break the FIRST..LAST
// rules; the broken records are reported and the rest returned.
func TestReaderOrphanChunks(t *testing.T) {
	w := newTestWriter(false)
	orphanMiddle := int64(w.buf.Len())
	w.writeChunk(chunkMiddle, []byte("m"))
	w.writeChunk(chunkLast, []byte("l"))
	unfinished := int64(w.buf.Len())
	w.writeChunk(chunkFirst, []byte("f"))
	ok := w.write([]byte("full"))
	w.buf.WriteString("\x00\x00\x00\x00\x01\x00\x09x") // unknown type, bad CRC too
	res := readBytes(t, w.bytes())
	assertRecords(t, res, []writtenRecord{ok})
	offsets := []int64{}
	for _, d := range res.damage {
		offsets = append(offsets, d.Offset)
	}
	want := []int64{orphanMiddle, orphanMiddle + 8, unfinished, ok.end}
	if fmt.Sprint(offsets) != fmt.Sprint(want) {
		t.Errorf("damage offsets %v, want %v (%v)", offsets, want, res.damage)
	}
}

// TestReaderRecordCap skips a record larger than the cap and keeps going.
func TestReaderRecordCap(t *testing.T) {
	w := newTestWriter(false)
	big := w.write(patternPayload(1, 3*BlockSize))
	small := w.write(patternPayload(2, 10))
	r, err := NewReader(bytes.NewReader(w.bytes()), "big.wandb")
	if err != nil {
		t.Fatal(err)
	}
	r.maxRecordSize = BlockSize
	res := drain(t, r)
	assertRecords(t, res, []writtenRecord{small})
	if len(res.damage) != 1 || res.damage[0].Offset != big.offset {
		t.Errorf("damage %v, want one at %d", res.damage, big.offset)
	}
}

// TestReaderLegacyLayoutDamagedBoundary detects the pre-0.17.6 layout even
// when the chunk at its first block boundary is damaged.
func TestReaderLegacyLayoutDamagedBoundary(t *testing.T) {
	w := newTestWriter(true)
	for i := range 12 {
		w.write(patternPayload(i, 9000))
	}
	data := bytes.Clone(w.bytes())
	data[BlockSize+legacyGridOffset+10] ^= 1
	res := readBytes(t, data)
	if !res.legacy {
		t.Fatalf("legacy layout not detected")
	}
	// Lost: the record crossing into block 1, the records inside it, and
	// the one crossing out of it (its last chunk is an orphan in block 2).
	if len(res.payloads) != 7 {
		t.Errorf("%d of 12 records read, want 7: %v", len(res.payloads), res.damage)
	}
}

// TestReaderShortReads reads through readers that return little data per
// call; the result must not change.
func TestReaderShortReads(t *testing.T) {
	w := mixedFile(false)
	for name, r := range map[string]io.Reader{
		"one-byte": iotest.OneByteReader(bytes.NewReader(w.bytes())),
		"half":     iotest.HalfReader(bytes.NewReader(w.bytes())),
	} {
		rd, err := NewReader(r, name)
		if err != nil {
			t.Fatal(err)
		}
		assertRecords(t, drain(t, rd), w.written)
	}
}

// TestReaderReadError returns the underlying read error, naming the file,
// from NewReader when it happens in the first blocks and from Next later.
func TestReaderReadError(t *testing.T) {
	w := newTestWriter(false)
	for i := range 12 {
		w.write(patternPayload(i, 20000))
	}
	boom := errors.New("disk on fire")
	early := io.MultiReader(bytes.NewReader(w.bytes()[:BlockSize]), iotest.ErrReader(boom))
	if _, err := NewReader(early, "fire.wandb"); !errors.Is(err, boom) || !strings.Contains(err.Error(), "fire.wandb") {
		t.Errorf("NewReader error %v, want the read error naming the file", err)
	}
	late := io.MultiReader(bytes.NewReader(w.bytes()[:5*BlockSize+100]), iotest.ErrReader(boom))
	r, err := NewReader(late, "fire.wandb")
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := r.Next()
		if err == nil {
			continue
		}
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "fire.wandb") {
			t.Errorf("Next error %v, want the read error naming the file", err)
		}
		break
	}
}

// TestReaderRandomGarbage feeds random bytes after a valid header: no panic,
// and every returned record has a valid offset.
func TestReaderRandomGarbage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		data := newTestWriter(false).bytes()
		garbage := make([]byte, rng.IntN(3*BlockSize))
		for i := range garbage {
			garbage[i] = byte(rng.UintN(256))
		}
		res := readBytes(t, append(data, garbage...))
		for _, off := range res.offsets {
			if off < FileHeaderSize || off >= int64(len(data)+len(garbage)) {
				t.Errorf("offset %d out of range", off)
			}
		}
	}
}

func TestDamageError(t *testing.T) {
	d := Damage{File: "a.wandb", Offset: 42, Reason: "chunk checksum mismatch"}
	var err error = d
	if got, want := err.Error(), "a.wandb: offset 42: chunk checksum mismatch"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// TestTailReader reads the tail of files of mixed records in both block
// layouts, for tails of every block count: it yields exactly the records
// written that start at or after the first block boundary in the tail,
// with their offsets, and no damage.
func TestTailReader(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		w := mixedFile(legacy)
		for range 3 {
			for i := range 13 {
				w.write(patternPayload(i+100, []int{10, 3000, BlockSize + 5, 90}[i%4]))
			}
		}
		data := w.bytes()
		size := int64(len(data))
		grid := int64(0)
		if legacy {
			grid = FileHeaderSize
		}
		for tail := int64(1); tail < size+BlockSize; tail += BlockSize / 3 {
			t.Run(fmt.Sprintf("legacy=%v/tail=%d", legacy, tail), func(t *testing.T) {
				r, err := NewTailReader(bytes.NewReader(data), size, "test.wandb", tail)
				if err != nil {
					t.Fatal(err)
				}
				res := drain(t, r)
				from := size - tail
				start := grid + (from-grid+BlockSize-1)/BlockSize*BlockSize
				var want []writtenRecord
				for _, rec := range w.written {
					if from <= BlockSize || start >= size || rec.offset >= start {
						want = append(want, rec)
					}
				}
				assertRecords(t, res, want)
				if len(res.damage) != 0 {
					t.Errorf("damage: %v", res.damage)
				}
			})
		}
	}
}
