package archive

import (
	"testing"
)

// FuzzDecodeManifest feeds arbitrary bytes to the manifest decoder: a
// tampered archive must give an error naming the file, never a panic, and
// anything accepted must survive a second decode of its own encoding.
func FuzzDecodeManifest(f *testing.F) {
	m := emptyManifest()
	if b, err := encodeManifest(*m); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"format":"runferry-archive"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeManifest("manifest.json", data)
		if err != nil {
			return
		}
		b, err := encodeManifest(*m)
		if err != nil {
			t.Fatalf("accepted manifest does not encode: %v", err)
		}
		if _, err := decodeManifest("manifest.json", b); err != nil {
			t.Fatalf("re-encoded manifest does not decode: %v", err)
		}
	})
}

// FuzzJournalLine: a journal line is accepted only with a matching
// checksum; arbitrary input never panics.
func FuzzJournalLine(f *testing.F) {
	f.Add("0123456789abcdef {}\n")
	f.Add("\n")
	f.Fuzz(func(t *testing.T, line string) {
		rec, ok := parseJournalLine(line)
		if ok && rec.Run == nil && rec.Experiment == nil {
			t.Fatalf("accepted an empty record from %q", line)
		}
	})
}
