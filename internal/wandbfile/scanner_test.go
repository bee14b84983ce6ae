package wandbfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// scanAll reads every record of data with a Scanner, as readBytes does
// with a Reader.
func scanAll(t *testing.T, data []byte) readResult {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data), "test.wandb")
	if err != nil {
		t.Fatalf("NewReader: %v", err)
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
	if _, _, err := s.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v, want io.EOF again", err)
	}
	res.damage = s.Damage()
	res.legacy = r.LegacyCoreLayout()
	return res
}

// TestScannerMatchesReader compares the Scanner with the Reader on files
// of mixed record sizes (both layouts), on one of many records (several
// read-ahead batches, by count and by bytes), and on damaged copies.
func TestScannerMatchesReader(t *testing.T) {
	many := newTestWriter(false)
	for i := range 3*batchRecords + 17 {
		many.write(patternPayload(i, 1+i%700))
	}
	files := map[string][]byte{
		"mixed":        mixedFile(false).bytes(),
		"mixed-legacy": mixedFile(true).bytes(),
		"many":         many.bytes(),
	}
	for name, data := range map[string][]byte{"mixed": files["mixed"], "many": files["many"]} {
		for _, pos := range []int{FileHeaderSize + 3, BlockSize + 5, 3*BlockSize + 100, len(data) / 2} {
			d := bytes.Clone(data)
			d[pos] ^= 0x5A
			files[fmt.Sprintf("%s-corrupt@%d", name, pos)] = d
		}
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			want, got := readBytes(t, data), scanAll(t, data)
			if len(got.payloads) != len(want.payloads) {
				t.Fatalf("%d records, the Reader gives %d", len(got.payloads), len(want.payloads))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("the Scanner differs from the Reader")
			}
			if name == "many" && len(got.payloads) != 3*batchRecords+17 {
				t.Errorf("%d records, wrote %d", len(got.payloads), 3*batchRecords+17)
			}
		})
	}
}

// TestScannerReadError returns the records read before an I/O error, then
// the error naming the file, then the error again.
func TestScannerReadError(t *testing.T) {
	w := newTestWriter(false)
	for i := range 12 {
		w.write(patternPayload(i, 20000))
	}
	boom := errors.New("disk on fire")
	open := func() *Reader {
		r, err := NewReader(io.MultiReader(bytes.NewReader(w.bytes()[:5*BlockSize+100]), iotest.ErrReader(boom)), "fire.wandb")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	var want [][]byte
	r := open()
	var wantErr error
	for {
		p, _, err := r.Next()
		if err != nil {
			wantErr = err
			break
		}
		want = append(want, bytes.Clone(p))
	}
	s := NewScanner(open())
	defer s.Close()
	var got [][]byte
	var err error
	for {
		var p []byte
		if p, _, err = s.Next(); err != nil {
			break
		}
		got = append(got, bytes.Clone(p))
	}
	if !errors.Is(err, boom) || err.Error() != wantErr.Error() {
		t.Errorf("Next error %v, want %v", err, wantErr)
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("%d records before the error, the Reader gives %d", len(got), len(want))
	}
	if _, _, again := s.Next(); again != err {
		t.Errorf("Next after the error: %v, want the error again", again)
	}
	_ = s.Damage() // final, and safe to read, after the error
}

// TestScannerCloseEarly stops a scan in the middle: Close returns (the
// read-ahead goroutine ends) and may be repeated.
func TestScannerCloseEarly(t *testing.T) {
	w := newTestWriter(false)
	for i := range 2 * batchRecords {
		w.write(patternPayload(i, 100))
	}
	r, err := NewReader(bytes.NewReader(w.bytes()), "test.wandb")
	if err != nil {
		t.Fatal(err)
	}
	s := NewScanner(r)
	for range 10 {
		if _, _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	s.Close()
}
