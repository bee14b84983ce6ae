package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchiveSnapshots: two copies make two snapshots; the listing says,
// for each, the runs held and written, points and bytes, as the snapshot
// manifests (read here on their own) say, and marks the current one.
func TestArchiveSnapshots(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+dir, "--no-state", "--run", "fxa00001"); code != 0 {
		t.Fatalf("first copy: %d %s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+dir, "--no-state"); code != 0 {
		t.Fatalf("second copy: %d %s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "archive", "snapshots", dir, "--json")
	if code != 0 {
		t.Fatalf("archive snapshots: %d %s", code, errOut)
	}
	var got []struct {
		Snapshot        int64
		Runs, Written   int
		Points, Bytes   int64
		Current         bool
		Source, Created string
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 {
		t.Fatalf("listing %v:\n%s", err, out)
	}
	for i, s := range got {
		b, err := os.ReadFile(filepath.Join(dir, "snapshots", fmt.Sprintf("%06d.json", s.Snapshot)))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Runs []struct {
				Snapshot int64
				Points   int64
				Files    []struct{ Bytes int64 }
				Blobs    []struct {
					SHA256 string
					Bytes  int64
				}
			}
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var written int
		var points, bytes int64
		blobs := map[string]int64{}
		for _, r := range m.Runs {
			if r.Snapshot == s.Snapshot {
				written++
			}
			points += r.Points
			for _, f := range r.Files {
				bytes += f.Bytes
			}
			for _, bl := range r.Blobs {
				blobs[bl.SHA256] = bl.Bytes
			}
		}
		for _, n := range blobs {
			bytes += n
		}
		if s.Snapshot != int64(i+1) || s.Runs != len(m.Runs) || s.Written != written || s.Points != points || s.Bytes != bytes || s.Current != (i == 1) || !strings.HasPrefix(s.Source, "wandb:") {
			t.Errorf("snapshot %d listed as %+v; its manifest says %d runs, %d written, %d points, %d bytes", i+1, s, len(m.Runs), written, points, bytes)
		}
	}
	if got[0].Runs != 1 || got[1].Runs != 6 || got[1].Written != 5 {
		t.Errorf("the copies were of 1 then 6 runs (5 new): %+v", got)
	}
	code, out, _ = runCLI(t, "archive", "snapshots", dir)
	if code != 0 || !strings.Contains(out, "2 snapshots") || !strings.Contains(out, "\n2*") {
		t.Errorf("table: exit %d\n%s", code, out)
	}
	if code, _, _ := runCLI(t, "archive", "snapshots", t.TempDir()); code != 1 {
		t.Errorf("a folder that is no archive: exit %d, want 1", code)
	}
}
