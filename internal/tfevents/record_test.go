package tfevents

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

// readAll reads every record of data, returning copies and the damage.
func readAll(t testing.TB, data []byte) ([][]byte, []Damage) {
	t.Helper()
	r := NewReader(bytes.NewReader(data), "f")
	var out [][]byte
	for {
		rec, off, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, r.Damage()
		}
		if err != nil {
			t.Fatal(err)
		}
		if off < 0 || off+HeaderSize+int64(len(rec))+FooterSize > int64(len(data)) {
			t.Fatalf("record at %d of %d bytes lies outside the input", off, len(rec))
		}
		out = append(out, bytes.Clone(rec))
	}
}

func records(n int) ([][]byte, []byte, []int) {
	var recs [][]byte
	var file []byte
	var offs []int
	for i := range n {
		rec := bytes.Repeat([]byte{byte(i)}, i*7)
		recs = append(recs, rec)
		offs = append(offs, len(file))
		file = AppendRecord(file, rec)
	}
	return recs, file, offs
}

// TestMaskedCRC: the masked CRC-32C of known input, as TensorFlow's
// crc32c::Mask computes it (value read from a file tensorboardX 2.6.5 wrote:
// the 8-byte length 24).
func TestMaskedCRC(t *testing.T) {
	length := []byte{24, 0, 0, 0, 0, 0, 0, 0}
	if got, want := MaskedCRC(length), uint32(0x224b7fa3); got != want {
		t.Fatalf("MaskedCRC = %#x, want %#x", got, want)
	}
}

func TestReadsEveryRecord(t *testing.T) {
	want, file, _ := records(20)
	got, dmg := readAll(t, file)
	if len(dmg) != 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("got %d records, damage %v", len(got), dmg)
	}
}

// TestTruncatedTail: a file cut at any byte yields every record that ends
// before the cut, and names the cut record's offset as truncated.
func TestTruncatedTail(t *testing.T) {
	want, file, offs := records(6)
	for cut := range len(file) {
		got, dmg := readAll(t, file[:cut])
		n := 0
		for n < len(offs) && (n+1 == len(offs) && len(file) <= cut || n+1 < len(offs) && offs[n+1] <= cut) {
			n++
		}
		if !reflect.DeepEqual(got, want[:n]) && !(n == 0 && got == nil) {
			t.Fatalf("cut %d: got %d records, want %d", cut, len(got), n)
		}
		if cut == offs[n] {
			if len(dmg) != 0 {
				t.Fatalf("cut %d at a record boundary: damage %v", cut, dmg)
			}
			continue
		}
		if len(dmg) != 1 || !dmg[0].Truncated || dmg[0].Offset != int64(offs[n]) {
			t.Fatalf("cut %d: damage %v, want truncated at %d", cut, dmg, offs[n])
		}
	}
}

// TestCorruptData: a record whose data checksum is wrong is skipped and
// named; the records after it are read.
func TestCorruptData(t *testing.T) {
	want, file, offs := records(5)
	file[offs[3]+HeaderSize] ^= 0xff
	got, dmg := readAll(t, file)
	if !reflect.DeepEqual(got, append(want[:3:3], want[4])) {
		t.Fatalf("got %d records", len(got))
	}
	wantDmg := []Damage{{File: "f", Offset: int64(offs[3]), Reason: "record data checksum mismatch (record skipped)"}}
	if !reflect.DeepEqual(dmg, wantDmg) {
		t.Fatalf("damage %v, want %v", dmg, wantDmg)
	}
	if s := dmg[0].Error(); s != fmt.Sprintf("f: offset %d: record data checksum mismatch (record skipped)", offs[3]) {
		t.Fatal(s)
	}
}

// TestCorruptLength: a wrong length checksum stops the file at that record.
func TestCorruptLength(t *testing.T) {
	want, file, offs := records(5)
	file[offs[2]+1] ^= 0x01
	got, dmg := readAll(t, file)
	if !reflect.DeepEqual(got, want[:2]) {
		t.Fatalf("got %d records", len(got))
	}
	if len(dmg) != 1 || dmg[0].Truncated || dmg[0].Offset != int64(offs[2]) || dmg[0].Reason != "record length checksum mismatch" {
		t.Fatalf("damage %v", dmg)
	}
}

type failingReader struct{ data []byte }

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, errors.New("disk on fire")
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

// TestReadError: an I/O error is returned with the file and offset.
func TestReadError(t *testing.T) {
	_, file, offs := records(3)
	r := NewReader(&failingReader{data: file[:offs[2]]}, "f")
	for range 2 {
		if _, _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := r.Next()
	if err == nil || err.Error() != fmt.Sprintf("f: offset %d: disk on fire", offs[2]) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzReader: any bytes are read without panic, every record returned lies
// inside the input, and re-framing what was returned reads back the same.
func FuzzReader(f *testing.F) {
	_, file, _ := records(4)
	f.Add(file, false)
	f.Add(file[:len(file)-3], true)
	f.Add([]byte{}, false)
	f.Fuzz(func(t *testing.T, data []byte, fix bool) {
		if fix {
			data = fixChecksums(data)
		}
		got, _ := readAll(t, data)
		var again []byte
		for _, r := range got {
			again = AppendRecord(again, r)
		}
		back, dmg := readAll(t, again)
		if len(dmg) != 0 || len(back) != len(got) {
			t.Fatalf("re-framed records read back as %d records, damage %v", len(back), dmg)
		}
		var ev Event
		for _, r := range got {
			_ = DecodeEvent(r, &ev)
			for _, v := range ev.Values {
				checkScalarTensor(t, v.Raw)
				_, _ = DecodeHistogram(v.Raw)
				_, _ = DecodeImage(v.Raw)
				_, _ = DecodeHParams(v.PluginContent)
			}
		}
	})
}

// fixChecksums rewrites the checksums of data's records so that mutations
// reach past them.
func fixChecksums(data []byte) []byte {
	data = bytes.Clone(data)
	for off := 0; off+HeaderSize <= len(data); {
		h := data[off : off+HeaderSize]
		n := int(min(uint64(len(data)), uint64(h[0])|uint64(h[1])<<8|uint64(h[2])<<16))
		h[3], h[4], h[5], h[6], h[7] = 0, 0, 0, 0, 0
		h[0], h[1], h[2] = byte(n), byte(n>>8), byte(n>>16)
		put32(h[8:], MaskedCRC(h[:8]))
		end := off + HeaderSize + n
		if end+FooterSize > len(data) {
			break
		}
		put32(data[end:], MaskedCRC(data[off+HeaderSize:end]))
		off = end + FooterSize
	}
	return data
}

func put32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}
