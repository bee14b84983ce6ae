package archive

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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

// TestVerifyRunFilesStatsOnce: a run's data files are found where they
// live (in place, under history/ or .staging/) and checked against the
// size the manifest records from that one look-up; missing and short
// files are named, whole ones are not.
func TestVerifyRunFilesStatsOnce(t *testing.T) {
	root := t.TempDir()
	st, err := OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(p string, n int) {
		t.Helper()
		full := abs(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, bytes.Repeat([]byte("x"), n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	put("metrics/whole.parquet", 10)
	put(historyDir+"/metrics/old.parquet", 20)
	put(stagingDir+"/metrics/staged.parquet", 30)
	put("metrics/short.parquet", 5)
	put(blobPath("ab12"), 7)
	e := RunEntry{Files: []FileEntry{
		{Path: "metrics/whole.parquet", Bytes: 10},
		{Path: "metrics/old.parquet", Bytes: 20},
		{Path: "metrics/staged.parquet", Bytes: 30},
		{Path: "metrics/short.parquet", Bytes: 6},
		{Path: "metrics/gone.parquet", Bytes: 1},
	}, Blobs: []BlobEntry{{SHA256: "ab12", Bytes: 7}, {SHA256: "cd34", Bytes: 1}}}
	got, err := verifyRunFiles(st, e, false)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		st.Name("metrics/short.parquet") + " holds 5 bytes, want 6",
		"data file " + st.Name("metrics/gone.parquet") + " is missing",
		st.Name(blobPath("cd34")) + " is missing",
	}, "; ")
	if got != want {
		t.Fatalf("verifyRunFiles:\n got %s\nwant %s", got, want)
	}
	e.Files, e.Blobs = e.Files[:3], e.Blobs[:1]
	if got, err := verifyRunFiles(st, e, false); err != nil || got != "" {
		t.Fatalf("whole files: %q, %v", got, err)
	}
}
