package archive

import (
	"bytes"
	"encoding/json"
	"testing"
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
