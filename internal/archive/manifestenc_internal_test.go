package archive

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// TestEncodeManifestAsBefore: encodeManifest's one encoding with the
// checksum written in gives the bytes of the manifest encoded whole with
// its checksum set (as runferry wrote it before, and as older readers
// verify it by re-encoding), for a manifest with every kind of entry and
// for an empty one.
func TestEncodeManifestAsBefore(t *testing.T) {
	for _, m := range []Manifest{testManifest(), *emptyManifest()} {
		data, err := encodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		dm, err := decodeManifest("manifest.json", data)
		if err != nil {
			t.Fatal(err)
		}
		m.Checksum = dm.Checksum
		want, err := json.MarshalIndent(m, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if want = append(want, '\n'); !bytes.Equal(data, want) {
			t.Fatalf("encodeManifest:\n%s\nencoded whole:\n%s", data, want)
		}
		// The checksum is that of the encoding with it empty.
		m.Checksum = ""
		if body, _ := json.MarshalIndent(m, "", " "); !canonicalChecksum(data, dm.Checksum) || len(body) == 0 {
			t.Fatal("checksum not verified from the bytes")
		}
	}
}

// TestWriterTakesManifestFromLoadState: a writer opened after loadState
// read the archive (as the Parquet sink does) does not decode
// manifest.json again while it is the version loadState read, and its
// commits do not change the manifest remembered; once another writer
// replaced manifest.json, the next writer reads the new one.
func TestWriterTakesManifestFromLoadState(t *testing.T) {
	root := newCommitTestArchive(t, 5)
	rs := &recordingStore{Store: newDirStore(root)}
	reads := func() int {
		n := 0
		for _, op := range rs.ops {
			if op == "read "+ManifestFile || op == "open "+ManifestFile { // read whole, or streamed (readManifestAs)
				n++
			}
		}
		rs.ops = nil
		return n
	}
	state, err := loadState(rs)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(state.Manifest)
	if n := reads(); n != 1 {
		t.Fatalf("loadState read manifest.json %d times", n)
	}
	w, err := openStoreWriter(root, rs, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := reads(); n != 0 {
		t.Errorf("the writer read manifest.json %d times after loadState had", n)
	}
	if got, _ := json.Marshal(w.m); !bytes.Equal(got, want) {
		t.Fatalf("the writer's state differs from loadState's:\n got %s\nwant %s", got, want)
	}
	writeCommitTestRun(t, w, 7, 0, 3, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lastManifest.Lock()
	kept, _ := json.Marshal(lastManifest.m)
	lastManifest.Unlock()
	if !bytes.Equal(kept, want) {
		t.Fatalf("a commit changed the remembered manifest:\n got %s\nwant %s", kept, want)
	}
	reads()
	w, err = openStoreWriter(root, rs, false)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if n := reads(); n != 1 {
		t.Errorf("a writer opened after manifest.json was replaced read it %d times, want 1", n)
	}
	if _, ok := w.Run(commitTestRun(7).Origin.String()); !ok {
		t.Error("the writer does not see the run committed since")
	}
}

// TestAppendManifestJSONMatchesEncodingJSON: the hand-written encoding
// gives json.MarshalIndent's bytes for the test manifest, an empty one,
// and random manifests: nil, empty and full lists, omitted and present
// optional fields, and strings with quotes, backslashes, control
// characters, HTML characters, non-ASCII, U+2028 and invalid UTF-8.
func TestAppendManifestJSONMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	pieces := []string{"", "a", "metrics/ab12/000001-x.parquet", `"`, `\`, "\n", "\t", "\x00", "\x1f", "\x7f", "<", ">", "&",
		"é", "日本", "\u2028", "\u2029", "\xff", "\xe2\x80", "{\"loss\":{\"n\":3}}", " ", "wandb:/runs?x=1"}
	str := func() string {
		var s strings.Builder
		for range rng.IntN(4) {
			s.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return s.String()
	}
	num := func() int64 { return []int64{0, 1, -1, 1 << 40, rng.Int64()}[rng.IntN(5)] }
	list := func(n int) int { // -1: nil
		return rng.IntN(n+2) - 1
	}
	files := func() []FileEntry {
		n := list(3)
		if n < 0 {
			return nil
		}
		out := make([]FileEntry, n)
		for i := range out {
			out[i] = FileEntry{Path: str(), Table: str(), Rows: num(), Bytes: num(), SHA256: str()}
		}
		return out
	}
	cases := []Manifest{testManifest(), *emptyManifest()}
	for range 300 {
		m := Manifest{Format: str(), FormatVersion: int(num() % 1000), RunferryVersion: str(), Source: str(), Snapshot: num(),
			Created: time.Unix(rng.Int64N(4e9), rng.Int64N(1e9)).UTC(), Checksum: str()}
		if n := list(3); n >= 0 {
			m.Experiments = make([]ExperimentEntry, n)
			for i := range m.Experiments {
				m.Experiments[i] = ExperimentEntry{Origin: str(), Snapshot: num(), Digest: str(), TracesDigest: str(), Files: files()}
			}
		}
		if n := list(4); n >= 0 {
			m.Runs = make([]RunEntry, n)
			for i := range m.Runs {
				r := RunEntry{Origin: str(), Experiment: str(), Snapshot: num(), Fingerprint: str(), Mark: str(), Cursors: str(),
					Points: num(), Files: files()}
				if n := list(2); n >= 0 {
					r.Blobs = make([]BlobEntry, n)
					for j := range r.Blobs {
						r.Blobs[j] = BlobEntry{SHA256: str(), Bytes: num()}
					}
				}
				m.Runs[i] = r
			}
		}
		if n := list(2); n >= 0 {
			m.Models = make([]ModelEntry, n)
			for i := range m.Models {
				m.Models[i] = ModelEntry{Origin: str(), Name: str(), Snapshot: num(), Digest: str(), Files: files()}
			}
		}
		cases = append(cases, m)
	}
	for i, m := range cases {
		want, err := json.MarshalIndent(m, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendManifestJSON(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}
