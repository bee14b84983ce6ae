package archive

import (
	"fmt"
	"time"
)

// RunSummary is one run's line in Summary.
type RunSummary struct {
	Origin     string // "system:id" the run was archived from
	Experiment string // the experiment's origin
	Snapshot   int64  // snapshot that wrote the current version
	Points     int64  // metric points
	// Files is the number of distinct artifact bodies (file contents) the
	// run references: files of the same content are stored once, so this
	// is fewer than the files a copy counts when two of the run's files
	// hold the same bytes; files that could not be copied have none.
	Files     int
	FileBytes int64 // bytes of those bodies
	Bytes     int64 // bytes of the run's table (data) files, not counting bodies
}

// SummaryTotals is what the current runs of an archive hold together.
type SummaryTotals struct {
	Runs   int
	Points int64
	// Bodies and BodyBytes count the distinct artifact bodies the runs
	// reference, each once however many files of one run or of several
	// runs hold its content: the bodies blobs/ holds for them (the
	// distinct sha256 values of the artifacts table).
	Bodies    int
	BodyBytes int64
	// RunBodies and RunBodyBytes add up the runs' Files and FileBytes: a
	// body held by k runs is counted k times, so they exceed Bodies and
	// BodyBytes when runs share a body.
	RunBodies    int
	RunBodyBytes int64
	TableBytes   int64 // the runs' table (data) files
}

// Summary lists the current runs of the archive at root, sorted by origin,
// from the manifest alone (no data file is read).
func Summary(root string) ([]RunSummary, error) {
	runs, _, err := SummaryWithTotals(root)
	return runs, err
}

// SummaryWithTotals is Summary with the runs' totals, in which a body that
// several runs hold is counted once (SummaryTotals.Bodies) as well as
// once per run (RunBodies).
func SummaryWithTotals(root string) ([]RunSummary, SummaryTotals, error) {
	// The run entries are read back one at a time from their spill
	// (LoadStateSpilled): what the summary holds a run is its row.
	st, err := LoadStateSpilled(root)
	if err != nil {
		return nil, SummaryTotals{}, err
	}
	if st.Manifest.Created.IsZero() && st.Pending == 0 {
		return nil, SummaryTotals{}, fmt.Errorf("%s is not a runferry archive (no %s)", root, ManifestFile)
	}
	out := make([]RunSummary, 0, len(st.Manifest.Runs))
	tot := SummaryTotals{Runs: len(st.Manifest.Runs)}
	bodies := map[string]int64{}
	for _, e := range st.Manifest.Runs {
		r, err := e.full()
		if err != nil {
			return nil, SummaryTotals{}, err
		}
		s := RunSummary{Origin: r.Origin, Experiment: r.Experiment, Snapshot: r.Snapshot, Points: r.Points, Files: len(r.Blobs)}
		for _, f := range r.Files {
			s.Bytes += f.Bytes
		}
		for _, b := range r.Blobs {
			s.FileBytes += b.Bytes
			bodies[b.SHA256] = b.Bytes
		}
		tot.Points += s.Points
		tot.RunBodies += s.Files
		tot.RunBodyBytes += s.FileBytes
		tot.TableBytes += s.Bytes
		out = append(out, s)
	}
	tot.Bodies = len(bodies)
	for _, n := range bodies {
		tot.BodyBytes += n
	}
	return out, tot, nil
}

// SnapshotSummary describes one snapshot still held (snapshots/<n>.json).
type SnapshotSummary struct {
	Snapshot int64     `json:"snapshot"`
	Created  time.Time `json:"created"`
	Source   string    `json:"source"`  // the redacted location it was written from
	Runs     int       `json:"runs"`    // runs the archive held after it
	Written  int       `json:"written"` // runs this snapshot wrote
	Points   int64     `json:"points"`  // metric points of the runs held
	Bytes    int64     `json:"bytes"`   // tables and file bodies of the runs held
	Current  bool      `json:"current"` // the snapshot manifest.json names
}

// Snapshots lists the snapshots an archive still holds, oldest first. A
// snapshot manifest that cannot be read is an error naming it.
func Snapshots(root string) ([]SnapshotSummary, error) {
	store, err := OpenStore(root)
	if err != nil {
		return nil, err
	}
	defer store.Close()
	st, err := loadStateAs(store, true)
	if err != nil {
		return nil, err
	}
	if st.Manifest.Created.IsZero() && st.Pending == 0 {
		return nil, fmt.Errorf("%s is not a runferry archive (no %s)", root, ManifestFile)
	}
	ns, err := listSnapshots(store)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotSummary, 0, len(ns))
	for _, n := range ns {
		m, err := loadSnapshotAs(store, n, true)
		if err != nil {
			return nil, err
		}
		s := SnapshotSummary{Snapshot: n, Created: m.Created, Source: m.Source, Runs: len(m.Runs),
			Current: n == st.Manifest.Snapshot}
		blobs := map[string]int64{}
		for _, e := range m.Runs {
			r, err := e.full()
			if err != nil {
				return nil, err
			}
			if r.Snapshot == n {
				s.Written++
			}
			s.Points += r.Points
			for _, f := range r.Files {
				s.Bytes += f.Bytes
			}
			for _, b := range r.Blobs {
				blobs[b.SHA256] = b.Bytes // bodies shared by runs count once
			}
		}
		m.release()
		for _, b := range blobs {
			s.Bytes += b
		}
		out = append(out, s)
	}
	return out, nil
}
