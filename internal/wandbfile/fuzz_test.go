package wandbfile

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleSeeds returns, for each sample `.wandb` file present, its first
// bytes and its first decoded payloads, to seed the fuzzers. Without the
// samples it returns nothing.
func sampleSeeds(maxPrefix, maxPayloads int) (prefixes, payloads [][]byte) {
	_ = filepath.WalkDir(samplesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(path, ".wandb") {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil
		}
		prefixes = append(prefixes, data[:min(len(data), maxPrefix)])
		r, err := NewReader(bytes.NewReader(data), path)
		if err != nil {
			return nil
		}
		for range maxPayloads {
			p, _, err := r.Next()
			if err != nil {
				break
			}
			payloads = append(payloads, bytes.Clone(p))
		}
		return nil
	})
	return prefixes, payloads
}

// FuzzReader feeds arbitrary bytes to the reader: it must not panic, must
// finish, and everything it returns must lie inside the input.
func FuzzReader(f *testing.F) {
	small := newTestWriter(false)
	small.write(historyPayload(1, 0, map[string]string{"a": "1"}))
	small.write(nil)
	f.Add(small.bytes(), false)
	f.Add(small.bytes(), true)
	// Seeds stay small (a 32 KiB seed slows the fuzzer a hundredfold); block
	// boundaries are covered by the deterministic tests in reader_test.go.
	prefixes, _ := sampleSeeds(4096, 0)
	for _, p := range prefixes {
		f.Add(p, false)
	}
	f.Fuzz(func(t *testing.T, data []byte, fixChecksums bool) {
		if fixChecksums {
			// Let mutations reach past the checksum test.
			data = withValidChecksums(data)
		}
		r, err := NewReader(bytes.NewReader(data), "fuzz.wandb")
		if err != nil {
			return
		}
		last := int64(-1)
		for n := 0; ; n++ {
			payload, offset, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if n > len(data) {
				t.Fatalf("more records than input bytes")
			}
			if offset <= last || offset < FileHeaderSize || offset+ChunkHeaderSize+int64(len(payload)) > int64(len(data)) {
				t.Fatalf("record at %d (%d bytes) outside input of %d bytes or out of order", offset, len(payload), len(data))
			}
			last = offset
			if rec, err := Decode(payload); err == nil {
				_ = inspectRecord(payload, offset)
				_ = rec.Content()
			}
		}
		for _, d := range r.Damage() {
			if d.Offset < FileHeaderSize || d.Offset > int64(len(data)) {
				t.Fatalf("damage offset %d outside input of %d bytes", d.Offset, len(data))
			}
		}
	})
}

// FuzzDecode feeds arbitrary payloads to Decode: it must not panic, and a
// decoded record must be writable by Inspect.
func FuzzDecode(f *testing.F) {
	f.Add(historyPayload(3, 7, map[string]string{"loss": "0.5", "acc": "NaN"}))
	f.Add(recordWith(1, KindRun, pbString(pbBytes(nil, 21, pbString(nil, 1, "git")), 1, "id")))
	f.Add(recordWith(1, KindMetric, pbBytes(pbString(nil, 1, "m"), 7, pbVarint(nil, 1, 1))))
	entry := pbVarint(pbString(pbString(pbString(nil, 1, "a/b.txt"), 2, "md5=="), 6, "/stage/t"), 4, 9)
	f.Add(recordWith(1, KindArtifact, pbBytes(pbString(pbString(nil, 4, "model"), 5, "m"), 12,
		pbBytes(pbString(pbVarint(nil, 1, 1), 5, "/m.gz"), 4, entry))))
	f.Add(recordWith(1, KindUseArtifact, pbBytes(pbString(nil, 3, "m:v0"), 4, pbString(nil, 1, "job"))))
	_, payloads := sampleSeeds(0, 30)
	for _, p := range payloads {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		rec, err := Decode(payload)
		if err != nil {
			return
		}
		if rec.Kind.String() == "" {
			t.Fatalf("empty kind name")
		}
		if err := writeLine(io.Discard, inspectRecord(payload, FileHeaderSize)); err != nil {
			t.Fatalf("writeLine: %v", err)
		}
		if rec.History != nil {
			for _, it := range rec.History.Items {
				_, _ = ParseValueJSON(it.ValueJSON)
			}
		}
	})
}

// withValidChecksums returns a copy of data in which every chunk found by
// walking the standard block grid carries a correct checksum.
func withValidChecksums(data []byte) []byte {
	data = bytes.Clone(data)
	pos := int64(FileHeaderSize)
	for pos+ChunkHeaderSize <= int64(len(data)) {
		blockEnd := (pos/BlockSize + 1) * BlockSize
		if blockEnd-pos < ChunkHeaderSize {
			pos = blockEnd
			continue
		}
		length := int64(data[pos+4]) | int64(data[pos+5])<<8
		if pos+ChunkHeaderSize+length > min(blockEnd, int64(len(data))) {
			pos = blockEnd
			continue
		}
		fixChecksum(data, pos)
		pos += ChunkHeaderSize + length
	}
	return data
}
