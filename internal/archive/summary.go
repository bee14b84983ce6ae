package archive

import "fmt"

// RunSummary is one run's line in Summary.
type RunSummary struct {
	Origin     string // "system:id" the run was archived from
	Experiment string // the experiment's origin
	Snapshot   int64  // snapshot that wrote the current version
	Points     int64  // metric points
	Files      int    // artifact bodies referenced
	Bytes      int64  // bytes of the run's data files (not counting bodies)
}

// Summary lists the current runs of the archive at root, sorted by origin,
// from the manifest alone (no data file is read).
func Summary(root string) ([]RunSummary, error) {
	st, err := LoadState(root)
	if err != nil {
		return nil, err
	}
	if st.Manifest.Snapshot == 0 && st.Pending == 0 {
		return nil, fmt.Errorf("%s is not a runferry archive (no %s)", root, ManifestFile)
	}
	out := make([]RunSummary, 0, len(st.Manifest.Runs))
	for _, r := range st.Manifest.Runs {
		s := RunSummary{Origin: r.Origin, Experiment: r.Experiment, Snapshot: r.Snapshot, Points: r.Points, Files: len(r.Blobs)}
		for _, f := range r.Files {
			s.Bytes += f.Bytes
		}
		out = append(out, s)
	}
	return out, nil
}
