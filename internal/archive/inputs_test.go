package archive_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/dataset"
)

// TestDatasetInputsRoundTrip writes runs with dataset inputs: they are held
// in the inputs table (format version 2) and read back exactly.
func TestDatasetInputsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	d := dataset.Canonical()
	r := &d.Runs[0].Run
	r.Inputs = []schema.DatasetInput{
		{Name: "digits", Digest: "4b8fa1ac", SourceType: "s3", Source: `{"uri": "s3://bucket/digits"}`,
			Schema: `{"mlflow_tensorspec": {}}`, Profile: `{"features_shape": [3]}`,
			Tags: []schema.Tag{{Key: "mlflow.data.context", Value: "training"}}},
		{Name: "frame", Digest: "c0ccfdad", SourceType: "http", Source: `{"url": "https://example.com/f.csv"}`,
			Tags: []schema.Tag{{Key: "mlflow.data.context", Value: "eval"}, {Key: "z", Value: "ünï"}}},
	}
	r.Canonicalize()
	write(t, dir, d)
	expectEqual(t, dir, d)
	var m struct {
		FormatVersion int `json:"format_version"`
	}
	b, err := os.ReadFile(filepath.Join(dir, archive.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil || m.FormatVersion != archive.FormatVersion {
		t.Fatalf("manifest format_version %d (%v), want %d", m.FormatVersion, err, archive.FormatVersion)
	}
	files, _ := filepath.Glob(filepath.Join(dir, archive.TableInputs, "*", "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("inputs files %v, want one (one run has inputs)", files)
	}
}

// TestReadsFormatVersion1 turns an archive's manifest into a version 1
// manifest (which had no inputs table), then a version 2 one (no traces
// table): it is still read, and the next write records the current version.
func TestReadsFormatVersion1(t *testing.T) {
	for _, v := range []int{1, 2} {
		t.Run(fmt.Sprint(v), func(t *testing.T) { readsOldVersion(t, v) })
	}
}

func readsOldVersion(t *testing.T, version int) {
	dir := filepath.Join(t.TempDir(), "a")
	d := dataset.Canonical()
	write(t, dir, d)
	path := filepath.Join(dir, archive.ManifestFile)
	setVersion := func(v int) int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m archive.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		old := m.FormatVersion
		if v == 0 {
			return old
		}
		m.FormatVersion, m.Checksum = v, ""
		body, _ := json.MarshalIndent(m, "", " ")
		sum := sha256.Sum256(body)
		m.Checksum = hex.EncodeToString(sum[:])
		body, _ = json.MarshalIndent(m, "", " ")
		if err := os.WriteFile(path, append(body, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return old
	}
	setVersion(version)
	expectEqual(t, dir, d)
	d.Runs[0].Run.Inputs = []schema.DatasetInput{{Name: "n", Digest: "d"}}
	write(t, dir, d)
	expectEqual(t, dir, d)
	if v := setVersion(0); v != archive.FormatVersion {
		t.Fatalf("after a write into a version %d archive the manifest says version %d, want %d", version, v, archive.FormatVersion)
	}
}
