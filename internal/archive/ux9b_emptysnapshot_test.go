package archive_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/sources/dataset"
)

// TestNoEmptyFirstSnapshot: a first sync interrupted after it wrote its
// experiments and before any run committed (the writer closed with only
// experiment records) publishes no snapshot: it published snapshot 1 with
// no run, which archive snapshots listed and archive prune --keep N
// counted as one of the N. The archive still reads as holding the
// experiment (published as snapshot 0: manifest.json and current.sql, no
// snapshot manifest; so is a sync of no run) and checks clean, and the
// next sync's runs make snapshot 1.
func TestNoEmptyFirstSnapshot(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a")
	d := dataset.Canonical()
	w, err := archive.OpenWriter(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.PutExperiment(d.Experiments[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	snaps, err := archive.Snapshots(dir)
	if err != nil || len(snaps) != 0 {
		t.Fatalf("after a first sync that committed no run: snapshots %+v (%v), want none", snaps, err)
	}
	st, err := archive.LoadState(dir)
	if err != nil || len(st.Manifest.Experiments) != 1 || len(st.Manifest.Runs) != 0 {
		t.Fatalf("state after it: %v, %+v", err, st)
	}
	if rep, err := archive.Check(dir); err != nil || !rep.OK() || rep.Snapshot != 0 || rep.Pending != 0 {
		t.Fatalf("archive check after it: %v, %+v; want snapshot 0 published, nothing pending", err, rep)
	}
	if runs, err := archive.Summary(dir); err != nil || len(runs) != 0 {
		t.Fatalf("archive summary after it: %v, %v", runs, err)
	}
	for _, f := range []string{archive.ManifestFile, "current.sql"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("after it: %v", err)
		}
	}

	write(t, dir, d)
	snaps, err = archive.Snapshots(dir)
	if err != nil || len(snaps) != 1 || snaps[0].Snapshot != 1 || snaps[0].Runs != len(d.Runs) || !snaps[0].Current {
		t.Fatalf("after the next sync: snapshots %+v (%v), want snapshot 1 with %d runs", snaps, err, len(d.Runs))
	}
	expectEqual(t, dir, d)
	rep, err := archive.Prune(dir, 1)
	if err != nil || len(rep.Kept) != 1 || rep.Kept[0] != 1 || rep.Snapshots != 0 {
		t.Fatalf("prune --keep 1: %+v, %v; want snapshot 1 kept, none removed", rep, err)
	}
	if rep, err := archive.Check(dir); err != nil || !rep.OK() {
		t.Fatalf("archive check: %v, %+v", err, rep)
	}
}
