package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runferry/runferry/schema"
)

// writeSpillTestArchive writes, into a new archive, an experiment and
// runs 0..n-1, each with a mark, a cursors document holding characters
// JSON escapes, points, and (every third) a file; then appends points to
// run 1 (its entry read back through Writer.Run), rewrites run 2 and
// retires run 3. check, if set, is called before the writer closes. It
// returns the archive's root.
func writeSpillTestArchive(t *testing.T, n int, check func(w *Writer)) string {
	t.Helper()
	root := t.TempDir()
	w, err := OpenWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutExperiment(schema.Experiment{Origin: schema.Ref{System: "memory", ID: "exp"}, Name: "exp"}); err != nil {
		t.Fatal(err)
	}
	write := func(i int, prev *RunEntry, from, to int) {
		r := commitTestRun(i)
		rw := w.OpenRun(r)
		if prev != nil {
			if rw, err = w.AppendRun(r, *prev); err != nil {
				t.Fatal(err)
			}
		}
		rw.SetMark(fmt.Sprintf("mark-%d-%d", i, to))
		rw.SetCursors(fmt.Appendf(nil, `{"loss":{"n":%d,"d":"<é\"&%d>"}}`, to, i))
		var batch []schema.Metric
		for s := from; s < to; s++ {
			batch = append(batch, schema.Metric{Key: "loss", Step: int64(s), Time: 1e12 + int64(s), Value: float64(i*1000 + s)})
		}
		if err := rw.WriteMetrics(batch); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			body := fmt.Sprintf("file of run %d", i%6) // runs 0 and 6 share a body
			if err := rw.WriteArtifact(schema.Artifact{Path: "a.txt", Size: int64(len(body))}, strings.NewReader(body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := rw.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		write(i, nil, 0, 10)
	}
	prev, ok := w.Run(commitTestRun(1).Origin.String())
	if !ok || prev.Cursors != `{"loss":{"n":10,"d":"<é\"&1>"}}` || prev.Points != 10 || len(prev.Files) == 0 {
		t.Fatalf("run 1 read back: %+v, %v", prev, ok)
	}
	write(1, &prev, 10, 15)
	write(2, nil, 0, 20)
	if ok, err := w.RetireRun(commitTestRun(3).Origin.String()); !ok || err != nil {
		t.Fatalf("retiring run 3: %v, %v", ok, err)
	}
	if check != nil {
		check(w)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := Check(root); err != nil {
		t.Fatalf("archive check: %v (%v)", err, rep.Problems)
	}
	return root
}

// TestWriterKeepsNoRunEntry: a writer keeps none of the entries of the
// runs it commits in memory (their files and cursors are spilled), reads
// them back whole where it needs them (Run, an append, a rewrite, a
// retirement), and publishes a manifest identical, byte for byte but for
// the data files' random names and the time, to the one a writer holding
// every entry publishes for the same writes; that manifest is encoded as
// encoding/json encodes it (as older runferrys read and verify it).
func TestWriterKeepsNoRunEntry(t *testing.T) {
	const n = 300
	spilledRoot := writeSpillTestArchive(t, n, func(w *Writer) {
		w.mu.Lock()
		held, spilled := w.m.spilledRuns()
		w.mu.Unlock()
		if held != 0 || spilled != n-1 {
			t.Errorf("the writer holds %d run entries whole and %d spilled, want 0 and %d", held, spilled, n-1)
		}
	})
	spillRuns = false
	heldRoot := writeSpillTestArchive(t, n, func(w *Writer) {
		w.mu.Lock()
		held, spilled := w.m.spilledRuns()
		w.mu.Unlock()
		if held != n-1 || spilled != 0 {
			t.Errorf("without the spill: %d run entries whole and %d spilled, want %d and 0", held, spilled, n-1)
		}
	})
	spillRuns = true

	random := regexp.MustCompile(`"path": "[^"]*/\d{6}-[0-9a-f]{12}\.parquet"|"(created|checksum)": "[^"]*"`)
	read := func(root string) ([]byte, []byte) {
		data, err := os.ReadFile(filepath.Join(root, ManifestFile))
		if err != nil {
			t.Fatal(err)
		}
		m, err := decodeManifest(ManifestFile, data)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Runs) != n-1 || !strings.Contains(string(data), `"cursors": "{\"loss\":{\"n\":15,\"d\":\"\u003cé\\\"\u00261\u003e\"}}"`) {
			t.Fatalf("%s: %d runs, or run 1's cursors not as appended", root, len(m.Runs))
		}
		want, err := json.MarshalIndent(m, "", " ")
		if err != nil {
			t.Fatal(err)
		}
		if want = append(want, '\n'); !bytes.Equal(data, want) {
			t.Fatalf("%s: manifest.json is not encoding/json's encoding of itself", root)
		}
		return data, random.ReplaceAll(data, []byte("X"))
	}
	spilledData, spilled := read(spilledRoot)
	heldData, held := read(heldRoot)
	if !bytes.Equal(spilled, held) {
		t.Fatalf("manifests differ beyond random names and times:\nspilled:\n%.3000s\nheld:\n%.3000s", spilled, held)
	}
	if bytes.Equal(spilledData, heldData) {
		t.Fatal("the two archives' manifests are the same bytes: the comparison compares nothing")
	}
	// What the spill kept of the spilled runs' tables is what current.sql
	// gives views over.
	sql1, err1 := os.ReadFile(filepath.Join(spilledRoot, "current.sql"))
	sql2, err2 := os.ReadFile(filepath.Join(heldRoot, "current.sql"))
	if err1 != nil || err2 != nil || !bytes.Equal(sql1, sql2) || !bytes.Contains(sql1, []byte("read_parquet('artifacts/")) {
		t.Fatalf("current.sql differs (%v, %v):\n%s\n%s", err1, err2, sql1, sql2)
	}
}

// TestWriterSpillUnreadable: should a spilled entry fail to read back,
// the writer says so: it finds no such run, and its next commit and its
// Close fail with the reason, publishing nothing.
func TestWriterSpillUnreadable(t *testing.T) {
	root := t.TempDir()
	w, err := OpenWriter(root)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		writeCommitTestRun(t, w, i, 0, 10, nil)
	}
	w.spill.f.Close() // as if the file could no longer be read
	if _, ok := w.Run(commitTestRun(1).Origin.String()); ok {
		t.Fatal("a run whose entry cannot be read back was found")
	}
	rw := w.OpenRun(commitTestRun(4))
	if err := rw.Commit(); err == nil || !strings.Contains(err.Error(), "spilled run entry") {
		t.Fatalf("commit after a failed read back: %v", err)
	}
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "spilled run entry") {
		t.Fatalf("Close after a failed read back: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, ManifestFile)); !os.IsNotExist(err) {
		t.Fatalf("a manifest was published: %v", err)
	}
}

// partRecorder records the largest write it was given, and keeps every
// byte (to compare).
type partRecorder struct {
	bytes.Buffer
	largest int
}

func (r *partRecorder) Write(b []byte) (int, error) {
	r.largest = max(r.largest, len(b))
	return r.Buffer.Write(b)
}

// TestManifestWrittenInParts: a writer publishes its manifest without
// holding it whole: encoded a part at a time (manifestPart, 4 KiB here)
// into a file and copied from there, the largest part handed on is a
// part and an entry, a small share of a manifest of 300 runs; and the
// manifest is the same bytes as one encoded whole: encoding/json's
// encoding of itself, verified by its checksum, and equal to what
// encodeManifest gave before (appendManifestJSON whole, then the
// checksum) for the same manifest.
func TestManifestWrittenInParts(t *testing.T) {
	defer func(n int) { manifestPart = n }(manifestPart)
	manifestPart = 4 << 10
	const n = 300
	var rec partRecorder
	var largestEntry int
	var whole []byte
	root := writeSpillTestArchive(t, n, func(w *Writer) {
		w.mu.Lock()
		defer w.mu.Unlock()
		m := *w.m
		for _, r := range m.Runs {
			if r.spilled != nil {
				largestEntry = max(largestEntry, r.spilled.n)
			}
		}
		if _, err := writeManifest(&rec, m); err != nil {
			t.Fatal(err)
		}
		// The encoding whole, as encodeManifest did it before.
		m.Checksum = ""
		body, err := appendManifestJSON(nil, &m)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(body)
		whole = append(body[:len(body)-len("\"\n}")], hex.EncodeToString(sum[:])...)
		whole = append(whole, "\"\n}\n"...)
	})
	got := rec.Bytes()
	if !bytes.Equal(got, whole) {
		t.Fatalf("the manifest written in parts differs from the one encoded whole:\n%.2000s\nwhole:\n%.2000s", got, whole)
	}
	if bound := manifestPart + largestEntry + 64; rec.largest > bound || len(got) < 20*bound {
		t.Fatalf("largest part %d bytes of a manifest of %d (bound %d): the manifest was not written in parts", rec.largest, len(got), bound)
	}
	t.Logf("manifest of %d bytes written in parts of at most %d bytes", len(got), rec.largest)
	data, err := os.ReadFile(filepath.Join(root, ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	m, err := decodeManifest(ManifestFile, data)
	if err != nil {
		t.Fatal(err)
	}
	if !canonicalChecksum(data, m.Checksum) || len(m.Runs) != n-1 {
		t.Fatalf("manifest.json: checksum not verified from its bytes, or %d runs", len(m.Runs))
	}
	want, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if want = append(want, '\n'); !bytes.Equal(data, want) {
		t.Fatal("manifest.json written in parts is not encoding/json's encoding of itself")
	}
	snap, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(snapshotPath(m.Snapshot))))
	if err != nil || !bytes.Equal(snap, data) {
		t.Fatalf("snapshot %d's manifest (%v) differs from manifest.json", m.Snapshot, err)
	}
}

// TestWriterKeepsFewFoldersToSync: the folders a writer's commits moved
// files into (three of a run's own a run), which it fsyncs, are fsynced a
// batch at a time (movedSyncBatch, 16 here) rather than all kept to
// Close: a writer of 300 runs never holds more than a batch and a
// commit's folders; the archive is whole.
func TestWriterKeepsFewFoldersToSync(t *testing.T) {
	defer func(n int) { movedSyncBatch = n }(movedSyncBatch)
	movedSyncBatch = 16
	writeSpillTestArchive(t, 300, func(w *Writer) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.moved) >= movedSyncBatch {
			t.Errorf("the writer holds %d folders to fsync, want fewer than %d", len(w.moved), movedSyncBatch)
		}
	})
}
