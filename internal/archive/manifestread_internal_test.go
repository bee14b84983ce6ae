package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStreamedManifestRepublishesSameBytes: manifest.json read as a
// stream with its run entries spilled (readManifestAs, as a sync's writer
// and sink read it) holds every run spilled and none whole, reads back
// each entry as the whole decode does, and encodes to the very bytes it
// was read from (the manifest a sync over an unchanged archive writes is
// byte for byte the one before).
func TestStreamedManifestRepublishesSameBytes(t *testing.T) {
	const n = 60
	root := writeSpillTestArchive(t, n, func(*Writer) {})
	data, err := os.ReadFile(filepath.Join(root, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	st := newDirStore(root)
	m, err := readManifestAs(st, ManifestFile, true)
	if err != nil {
		t.Fatal(err)
	}
	if held, spilled := m.spilledRuns(); held != 0 || spilled != n-1 {
		t.Fatalf("%d run entries held whole and %d spilled, want 0 and %d", held, spilled, n-1)
	}
	whole, err := readManifest(st, ManifestFile)
	if err != nil {
		t.Fatal(err)
	}
	if held, _ := whole.spilledRuns(); held != n-1 {
		t.Fatalf("read whole: %d entries held, want %d", held, n-1)
	}
	for i, r := range whole.Runs {
		got, ok := m.Run(r.Origin)
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(r)
		if !ok || !bytes.Equal(a, b) {
			t.Fatalf("run %d read back from the spill:\n got %s\nwant %s", i, a, b)
		}
	}
	for name, mm := range map[string]*Manifest{"spilled": m, "whole": whole} {
		out, err := encodeManifest(*mm)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("%s: the manifest read encodes to other bytes than it was read from", name)
		}
	}
}

// TestStreamedManifestDecodesAsDecode: the streamed decoder accepts and
// refuses what json.Decoder.Decode with DisallowUnknownFields did (keys
// matched without regard to case, null runs, unknown fields, a newer
// format, truncation, a tampered checksum), and verifies a manifest
// encoded otherwise (re-indented) by its content.
func TestStreamedManifestDecodesAsDecode(t *testing.T) {
	root := writeSpillTestArchive(t, 4, func(*Writer) {})
	data, err := os.ReadFile(filepath.Join(root, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(generic) // keys sorted, no indentation: verified by re-encoding
	if m, err := decodeManifest(ManifestFile, compact); err != nil || len(m.Runs) != 3 {
		t.Fatalf("compact encoding: %v", err)
	}
	upper := bytes.Replace(data, []byte(`"runs": [`), []byte(`"RUNS": [`), 1)
	if m, err := decodeManifest(ManifestFile, upper); err != nil || len(m.Runs) != 3 {
		t.Fatalf("key in capitals (Decode matches it): %v", err)
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"unknown field", bytes.Replace(data, []byte(`"points": `), []byte(`"pointz": `), 1), "unknown field"},
		{"newer format", bytes.Replace(bytes.Replace(data, []byte(`"format_version": 5`), []byte(`"format_version": 99`), 1), []byte(`"points": `), []byte(`"later": 1, "points": `), 1), "format version 99 is not supported"},
		{"truncated", data[:len(data)/2], "not a valid manifest"},
		{"empty", nil, "not a valid manifest"},
		{"tampered", bytes.Replace(data, []byte(`"mark": "mark-1-`), []byte(`"mark": "mark-8-`), 1), "checksum mismatch"},
		{"runs not a list", bytes.Replace(data, []byte(`"runs": [`), []byte(`"runs": 7, "x": [`), 1), "not a valid manifest"},
		{"trailing garbage", append(bytes.TrimSuffix(data, []byte("\n")), "}"...), ""},
	} {
		_, err := decodeManifest(ManifestFile, tc.data)
		var m Manifest
		dec := json.NewDecoder(bytes.NewReader(tc.data))
		dec.DisallowUnknownFields()
		old := dec.Decode(&m)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), ManifestFile)):
			t.Errorf("%s: got %v, want an error naming the file with %q", tc.name, err, tc.want)
		case tc.want == "not a valid manifest" && (old == nil || !errors.Is(err, ErrDamaged)):
			t.Errorf("%s: Decode said %v, the streamed decoder %v", tc.name, old, err)
		}
	}
}
