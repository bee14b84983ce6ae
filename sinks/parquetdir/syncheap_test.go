package parquetdir_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/parquetdir"
)

// writeBigManifest writes, at root, an archive's manifest.json listing n
// runs with entries the size of a W&B cloud copy's (four files, a mark
// and about 2 KB of cursors: 3.9 KB a run, as docs/BENCHMARKS.md
// "Session 15 (mem4)" measured at 60,000 runs). It is encoded by
// encoding/json, independently of the archive's own encoder, with its
// checksum as the format defines it (the SHA-256 of the encoding with
// the checksum empty). The files it lists do not exist: a sync that only
// looks runs up and adds an experiment reads none.
func writeBigManifest(t *testing.T, root string, n int) {
	t.Helper()
	hexOf := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	var cur strings.Builder
	cur.WriteString(`{`)
	for k := range 16 {
		if k > 0 {
			cur.WriteString(",")
		}
		fmt.Fprintf(&cur, `"train/metric_%02d":{"count":100,"last_step":99,"last_time":1700000099000,"digest":"%s"}`, k, hexOf(fmt.Sprint(k))[:32])
	}
	cur.WriteString(`}`)
	m := archive.Manifest{Format: archive.FormatName, FormatVersion: archive.FormatVersion, RunferryVersion: "test",
		Source: "gen:", Snapshot: 1, Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Experiments: []archive.ExperimentEntry{{Origin: schema.Ref{System: "gen", ID: "e"}.String(), Snapshot: 1, Digest: hexOf("e"),
			Files: []archive.FileEntry{{Path: "experiments/e/1.parquet", Table: "experiments", Rows: 1, Bytes: 900, SHA256: hexOf("ef")}}}}}
	for i := range n {
		o := schema.Ref{System: "gen", ID: fmt.Sprintf("e/run%07d", i)}.String()
		var files []archive.FileEntry
		for _, table := range []string{"runs", "params", "tags", "metrics"} {
			files = append(files, archive.FileEntry{Path: fmt.Sprintf("%s/%s/1.parquet", table, hexOf(o)[:16]),
				Table: table, Rows: 100, Bytes: 4000, SHA256: hexOf(table + o)})
		}
		m.Runs = append(m.Runs, archive.RunEntry{Origin: o, Experiment: m.Experiments[0].Origin, Snapshot: 1,
			Fingerprint: hexOf("f" + o), Mark: hexOf("m" + o), Cursors: cur.String(), Points: 1600, Files: files})
	}
	body, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	m.Checksum = hex.EncodeToString(sum[:])
	if body, err = json.MarshalIndent(m, "", " "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, archive.ManifestFile), append(body, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSyncHoldsLittlePerRun: what a sync into an archive that already
// holds N runs holds once the sink has read the archive's state and
// opened its writer (the heap in use after a collection) grows by less
// than perRun bytes a run from N to 10N runs, and the sync still finds
// each run's entry whole. Before the state's run entries were read as a
// stream and kept spilled (archive.LoadStateSpilled), the sink and its
// writer held every entry decoded: 4.7 KB a run here, 745 MiB peak for a
// second sync over 60,000 runs (docs/BENCHMARKS.md "Session 15 (man)").
func TestSyncHoldsLittlePerRun(t *testing.T) {
	if testing.Short() {
		t.Skip("writes manifests of 11,000 runs")
	}
	const perRun = 1024
	ctx := context.Background()
	heapAt := func(n int) uint64 {
		root := t.TempDir()
		writeBigManifest(t, root, n)
		s, err := parquetdir.New(root)
		if err != nil {
			t.Fatal(err)
		}
		// A run the archive holds is found whole (its files, cursors).
		origin := schema.Ref{System: "gen", ID: fmt.Sprintf("e/run%07d", n/2)}
		if state, fp, err := s.FindRun(ctx, origin); err != nil || state != sinks.RunComplete || fp == "" {
			t.Fatalf("%d runs: run %s: %v %v %q", n, origin, state, err, fp)
		}
		if _, mark, cur, ok, err := s.FindBase(ctx, origin); err != nil || !ok || mark == "" || len(cur) < 1000 {
			t.Fatalf("%d runs: run %s's base: %v %v %q", n, origin, ok, err, mark)
		}
		// A new experiment opens the archive's writer, as a sync does
		// with the first thing it writes.
		if _, err := s.PutExperiment(ctx, schema.Experiment{Origin: schema.Ref{System: "gen", ID: "f"}, Name: "f"}); err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		st, err := archive.LoadState(root)
		if err != nil || len(st.Manifest.Runs) != n || len(st.Manifest.Experiments) != 2 {
			t.Fatalf("%d runs: after the sync: %v", n, err)
		}
		if e, ok := st.Manifest.Run(origin.String()); !ok || len(e.Files) != 4 || e.Cursors == "" {
			t.Fatalf("%d runs: run %s after the sync: %+v", n, origin, e)
		}
		return ms.HeapAlloc
	}
	const n = 1000
	small, large := heapAt(n), heapAt(10*n)
	grew := (float64(large) - float64(small)) / (9 * n)
	t.Logf("heap in use with the sink open: %d runs %.1f MB, %d runs %.1f MB: %.0f bytes a run", n, float64(small)/1e6, 10*n, float64(large)/1e6, grew)
	if grew > perRun {
		t.Errorf("the sync holds %.0f bytes more a run from %d to %d runs, want at most %d", grew, n, 10*n, perRun)
	}
}
