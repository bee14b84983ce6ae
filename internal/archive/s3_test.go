package archive_test

import (
	"testing"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sources/dataset"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// s3Archive returns the location of a new, empty archive on the shared S3
// server (a fresh bucket).
func s3Archive(t *testing.T) string {
	t.Helper()
	s := testenv.SharedS3(t)
	return s.Location(s.CreateBucket(t, "archive"), "backups/nightly")
}

// TestS3RoundTrip writes the canonical dataset into an archive in a
// bucket, reads it back whole, checks it, and re-writes it unchanged.
func TestS3RoundTrip(t *testing.T) {
	loc := s3Archive(t)
	d := dataset.Canonical()
	write(t, loc, d)
	expectEqual(t, loc, d)
	rep, err := archive.Check(loc)
	if err != nil {
		t.Fatalf("check: %v\n%v", err, rep.Notes)
	}
	if len(rep.Notes) > 0 || rep.Snapshot != 1 {
		t.Errorf("check: %+v", rep)
	}
	// A re-write commits only the run still RUNNING at the source (a
	// running run is always written again).
	rep2 := write(t, loc, d)
	snaps, err := archive.Snapshots(loc)
	if err != nil || len(snaps) != 2 || snaps[1].Written != 1 || rep2.Totals.Committed != 1 {
		t.Errorf("re-write: snapshots %+v, %v, totals %+v", snaps, err, rep2.Totals)
	}
	expectEqual(t, loc, d)
}
