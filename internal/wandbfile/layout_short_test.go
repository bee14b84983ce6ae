package wandbfile

import (
	"bufio"
	"bytes"
	"testing"
)

// TestDetectGridShortIsTie checks the shortcut of detectGrid for data that
// fits in block 0 of both grids: for every prefix of a legacy-layout and a
// standard-layout log up to that size, the two grids score the same (so
// scoring would pick the standard grid too) and detectGrid picks it.
func TestDetectGridShortIsTie(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		if legacy {
			w = NewLegacyCoreWriter(&buf)
		}
		for i := 0; buf.Len() < 2*BlockSize; i++ {
			if _, err := w.WriteRecord(bytes.Repeat([]byte{byte(i)}, 100+i%300)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()[FileHeaderSize:]
		for n := 0; n <= BlockSize-FileHeaderSize; n += 97 {
			d := data[:n]
			if a, b := gridScore(d, 0), gridScore(d, legacyGridOffset); a != b {
				t.Fatalf("legacy=%v, %d bytes: scores %d (standard) and %d (legacy) differ", legacy, n, a, b)
			}
			grid, err := detectGrid(bufio.NewReaderSize(bytes.NewReader(d), len(data)))
			if err != nil || grid != 0 {
				t.Fatalf("legacy=%v, %d bytes: detectGrid = %d, %v; want 0", legacy, n, grid, err)
			}
		}
		// Past block 0 the legacy layout is still told apart.
		grid, err := detectGrid(bufio.NewReaderSize(bytes.NewReader(data), len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{false: 0, true: legacyGridOffset}[legacy]; grid != want {
			t.Fatalf("legacy=%v, whole log: detectGrid = %d, want %d", legacy, grid, want)
		}
	}
}
