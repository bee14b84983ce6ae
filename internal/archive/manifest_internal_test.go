package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// testManifest is a manifest with an experiment, runs (one with cursors
// and blobs) and a model, so that every kind of entry is encoded.
func testManifest() Manifest {
	m := *emptyManifest()
	m.RunferryVersion, m.Source, m.Snapshot = "test", "wandb:/runs", 3
	m.Created = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	m.Experiments = []ExperimentEntry{{Origin: "e/<p>&", Snapshot: 1, Digest: "d1",
		Files: []FileEntry{{Path: "experiments/a.parquet", Table: "experiments", Rows: 1, Bytes: 10, SHA256: "aa"}}}}
	m.Runs = []RunEntry{
		{Origin: "e/p/r1", Experiment: "e/<p>&", Snapshot: 2, Fingerprint: "fp1", Mark: "m", Cursors: `{"loss":{"n":3}}`, Points: 3,
			Files: []FileEntry{{Path: "metrics/r1.parquet", Table: "metrics", Rows: 3, Bytes: 99, SHA256: "bb"}},
			Blobs: []BlobEntry{{SHA256: "cc", Bytes: 5}}},
		{Origin: "e/p/r2", Experiment: "e/<p>&", Snapshot: 3, Fingerprint: "fp2"},
	}
	m.Models = []ModelEntry{{Origin: "models/x", Name: "x", Snapshot: 3, Digest: "d"}}
	return m
}

// TestManifestChecksumFastPath: a manifest as encodeManifest writes it is
// verified from its bytes (canonicalChecksum, no re-encoding), one encoded
// otherwise but with the same content is verified by re-encoding as
// before, and a change of any byte of either is refused (or, where the
// change is only to the layout, decodes to the same manifest).
func TestManifestChecksumFastPath(t *testing.T) {
	m := testManifest()
	data, err := encodeManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	var got Manifest
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !canonicalChecksum(data, got.Checksum) {
		t.Fatalf("encodeManifest's own output is not verified from its bytes:\n%s", data)
	}
	dm, err := decodeManifest("manifest.json", data)
	if err != nil {
		t.Fatal(err)
	}
	want := m
	want.Checksum = got.Checksum
	if a, b := mustJSON(t, *dm), mustJSON(t, want); a != b {
		t.Fatalf("decoded manifest differs:\n got %s\nwant %s", a, b)
	}

	// Re-indented (same content, same checksum): not canonical, verified
	// by re-encoding, accepted.
	var tabs bytes.Buffer
	if err := json.Indent(&tabs, data, "", "\t"); err != nil {
		t.Fatal(err)
	}
	if canonicalChecksum(tabs.Bytes(), got.Checksum) {
		t.Fatal("a re-indented manifest passed as canonical")
	}
	if dm2, err := decodeManifest("manifest.json", tabs.Bytes()); err != nil {
		t.Fatalf("re-indented manifest refused: %v", err)
	} else if a, b := mustJSON(t, *dm2), mustJSON(t, *dm); a != b {
		t.Fatalf("re-indented manifest decodes differently:\n got %s\nwant %s", a, b)
	}

	// Every byte flipped (to another byte that keeps the JSON valid where
	// it can): refused with ErrDamaged, or decoded to the same manifest
	// (only the layout changed), never accepted with other content.
	for _, in := range [][]byte{data, tabs.Bytes()} {
		for i := range in {
			for _, c := range []byte{'0', 'a', ' '} {
				if in[i] == c {
					continue
				}
				mod := bytes.Clone(in)
				mod[i] = c
				dm3, err := decodeManifest("manifest.json", mod)
				if err != nil {
					if !errors.Is(err, ErrDamaged) && !strings.Contains(err.Error(), "not supported") {
						t.Fatalf("byte %d -> %q: error %v is not ErrDamaged", i, c, err)
					}
					continue
				}
				if a, b := mustJSON(t, *dm3), mustJSON(t, *dm); a != b {
					t.Fatalf("byte %d -> %q accepted with other content:\n got %s\nwant %s", i, c, a, b)
				}
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
