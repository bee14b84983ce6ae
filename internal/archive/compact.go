package archive

import (
	"fmt"
)

// CompactReport says what Compact did (or, in a dry run, would do).
type CompactReport struct {
	Runs        int   // runs whose metrics files were merged
	FilesBefore int   // their metrics files before
	Points      int64 // their points, each kept once
	Bytes       int64 // size of the files merged (moved to history/ until pruned)
	NewBytes    int64 // size of the merged files written (0 in a dry run)
	Snapshot    int64 // the snapshot that lists the merged files (0 when nothing was merged)
}

// Compact merges, for every run whose points are in several metrics files
// (the first written whole and one more for each sync that appended to
// it; format version 4), those files into one holding the same points in
// the same order, so that readers open one file per run again. Nothing
// else changes: the merged file is read back exactly as the files it
// replaces were (Reader.Metrics). The archive's own readers (and check)
// see each point once at every moment; so does a plain glob over metrics/
// on a local folder on Linux, where a run's folder changes from the old
// files to the merged one in one step (folderSwapper). In object storage,
// and on a local folder elsewhere, the old files leave before the merged
// one arrives, so a glob run during those moves (or after a crash between
// them, until the next writer, compact or prune finishes them)
// misses that run's points; it never sees a point twice.
//
// Each run is one commit, as a sync's: the merged file is written under
// .staging/, the journal line that lists it instead of the old files is
// the commit point, then the old files move to history/ (readable through
// earlier snapshots until Prune) and the new one into place. A crash
// leaves each run either as it was or compacted (to its own readers);
// running Compact again finishes the rest. Compact needs the archive alone (like Prune: it fails
// with ErrLocked while a writer has it open), publishes one new snapshot
// when it merged anything, and with dryRun only counts.
func Compact(root string, dryRun bool) (CompactReport, error) {
	var rep CompactReport
	st, err := OpenStore(root)
	if err != nil {
		return rep, err
	}
	if _, err := st.Stat(ManifestFile); err != nil {
		st.Close()
		return rep, fmt.Errorf("%s is not a runferry archive: %w", root, err)
	}
	w, err := openStoreWriter(root, st, true)
	if err != nil {
		st.Close()
		return rep, err
	}
	defer w.Close()
	r, err := openStoreReader(root, st, 0)
	if err != nil {
		return rep, err
	}
	for _, e := range r.Manifest().Runs {
		var metrics []FileEntry
		for _, f := range e.Files {
			if f.Table == TableMetrics {
				metrics = append(metrics, f)
			}
		}
		if len(metrics) < 2 {
			continue
		}
		rep.Runs++
		rep.FilesBefore += len(metrics)
		for _, f := range metrics {
			rep.Points += f.Rows
			rep.Bytes += f.Bytes
		}
		if dryRun {
			continue
		}
		merged, err := w.mergeMetricsFiles(r, e)
		if err != nil {
			return rep, fmt.Errorf("compacting run %s: %w", e.Origin, err)
		}
		rep.NewBytes += merged.Bytes
		next := e
		next.Files = nil
		placed := false
		for _, f := range e.Files {
			if f.Table != TableMetrics {
				next.Files = append(next.Files, f)
			} else if !placed {
				next.Files = append(next.Files, merged) // where the first was
				placed = true
			}
		}
		if err := w.commit(journalRecord{Run: &next}); err != nil {
			return rep, fmt.Errorf("compacting run %s: %w", e.Origin, err)
		}
	}
	if rep.Runs > 0 && !dryRun {
		if err := w.Close(); err != nil {
			return rep, err
		}
		st, err := LoadState(root)
		if err != nil {
			return rep, err
		}
		rep.Snapshot = st.Manifest.Snapshot
	}
	return rep, nil
}

// mergeMetricsFiles writes the points of run e, read as Reader.Metrics
// reads them, into one new metrics file under .staging/.
func (w *Writer) mergeMetricsFiles(r *Reader, e RunEntry) (FileEntry, error) {
	tf, err := createTableFile[MetricRow](w.st, TableMetrics, e.Origin, w.snapshot, metricRowGroup)
	if err != nil {
		return FileEntry{}, err
	}
	var files []FileEntry
	for _, f := range e.Files {
		if f.Table == TableMetrics {
			files = append(files, f)
		}
	}
	err = r.mergeRows(files, emitBatch, tf.Write)
	if err != nil {
		tf.Discard()
		return FileEntry{}, err
	}
	f, err := tf.Close()
	if err != nil {
		return FileEntry{}, err
	}
	if f.Rows != e.Points && e.Points != 0 {
		// The entry's count covers every metrics file; a difference means
		// the reader and the entry disagree: keep the run as it was.
		w.st.Remove(stagingDir + "/" + f.Path)
		return FileEntry{}, fmt.Errorf("%w: merged %d points, the manifest records %d", ErrDamaged, f.Rows, e.Points)
	}
	return f, nil
}
