package wandbfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// sizedFile writes records of recSize bytes until the file holds at least
// size bytes, and returns the writer.
func sizedFile(legacy bool, size, recSize int) *testWriter {
	w := newTestWriter(legacy)
	for i := 0; w.buf.Len() < size; i++ {
		w.write(patternPayload(i, recSize))
	}
	return w
}

// readFile reads every record of the file at path through an *os.File (so
// NewReader sizes its buffer to the file), with a Reader or a Scanner.
func readFile(t *testing.T, path string, scan bool) readResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := NewReader(f, "test.wandb")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	if !scan {
		return drain(t, r)
	}
	s := NewScanner(r)
	defer s.Close()
	var res readResult
	for {
		payload, offset, err := s.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		res.payloads = append(res.payloads, append([]byte(nil), payload...))
		res.offsets = append(res.offsets, offset)
	}
	res.damage = s.Damage()
	res.legacy = r.LegacyCoreLayout()
	return res
}

// TestReadBufferSizedToFile reads files smaller than the Reader's full
// buffer (one record; less than a block; between one block and the layout
// probe), about as large, and larger than it and than a Scanner batch,
// in both layouts, from disk (the buffer sized to the file) and from
// memory (the full buffer): the Reader and the Scanner yield the same
// records, offsets, damage and layout either way, and every record
// written.
func TestReadBufferSizedToFile(t *testing.T) {
	full := layoutProbeSize + BlockSize
	sizes := []struct {
		size, rec int
	}{
		{1, 10}, {3000, 100}, {20000, 300}, {55000, 500}, {full - 100, 700},
		{full + 5000, 900}, {batchBytes + BlockSize, 2000}, {3 * BlockSize, 2*BlockSize + 11},
	}
	dir := t.TempDir()
	for _, legacy := range []bool{false, true} {
		for _, sz := range sizes {
			w := sizedFile(legacy, sz.size, sz.rec)
			data := w.bytes()
			name := fmt.Sprintf("legacy=%v/size=%d", legacy, len(data))
			t.Run(name, func(t *testing.T) {
				if n := readBufferSize(bytes.NewReader(data)); n != full {
					t.Errorf("buffer for a reader without Stat: %d, want %d", n, full)
				}
				path := filepath.Join(dir, fmt.Sprintf("%v-%d.wandb", legacy, len(data)))
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				n := readBufferSize(f)
				f.Close()
				if n > full || len(data) < full && n <= len(data) {
					t.Errorf("buffer for a %d-byte file: %d (full %d)", len(data), n, full)
				}
				want := readBytes(t, data)
				assertRecords(t, want, w.written)
				if want.legacy != legacy && len(data) > BlockSize+legacyGridOffset {
					t.Errorf("layout legacy=%v, wrote legacy=%v", want.legacy, legacy)
				}
				for _, scan := range []bool{false, true} {
					if got := readFile(t, path, scan); !reflect.DeepEqual(got, want) {
						t.Errorf("scan=%v: reading the file differs from reading it from memory (%d records, want %d; damage %v)",
							scan, len(got.payloads), len(want.payloads), got.damage)
					}
				}
			})
		}
	}
}

// TestReadBufferTruncatedFiles cuts files of several sizes at many
// offsets and reads the cut files from disk, with buffers sized to them:
// every record that ends before the cut is yielded, by the Reader and the
// Scanner alike, as the full-buffer reading from memory yields them.
func TestReadBufferTruncatedFiles(t *testing.T) {
	dir := t.TempDir()
	for _, w := range []*testWriter{sizedFile(false, 55000, 500), sizedFile(true, 55000, 500), mixedFile(false)} {
		data := w.bytes()
		cuts := interestingOffsets(w, 997)
		slices.Sort(cuts)
		for i, cut := range cuts {
			if cut < FileHeaderSize || i%9 != 0 {
				continue // every ninth: the boundaries' neighbourhoods, in seconds
			}
			path := filepath.Join(dir, "cut.wandb")
			if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			want := readBytes(t, data[:cut])
			var ended int
			for _, rec := range w.written {
				if rec.end <= int64(cut) {
					ended++
				}
			}
			if len(want.payloads) < ended && !(w.grid != 0 && cut >= BlockSize && cut < BlockSize+legacyGridOffset) {
				t.Fatalf("cut=%d: %d records from memory, %d end before the cut", cut, len(want.payloads), ended)
			}
			for _, scan := range []bool{false, true} {
				if got := readFile(t, path, scan); !reflect.DeepEqual(got, want) {
					t.Fatalf("cut=%d scan=%v: %d records (damage %v), from memory %d (damage %v)",
						cut, scan, len(got.payloads), got.damage, len(want.payloads), want.damage)
				}
			}
		}
	}
}
