package mlflow

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// The source's own console file (sourceOutputLog: a W&B run folder's
// files/output.log) grows with the run, and MLflow cannot append to a
// file. When it is larger than one segment it is held as output.log,
// output.1.log, ... (mlflowconv.OutputSegmentPath), cut as the console
// output is: a segment is closed at the first line boundary at or beyond
// logSegmentBytes, so its boundaries depend only on the bytes before it
// and a copy appended to holds the same segments as a fresh copy. An
// append sends only the segments whose digests differ from those the copy
// holds (mlflowconv.Coverage.OutputSegments) and deletes those it held
// beyond the new last one. A file of one segment is held whole, as any
// other file. The file's whole digest stays in FileDigests, so the file
// delta and the dry run (HeldFiles) see one file, and the MLflow source
// joins the segments into it.

// sourceOutputLog is the source path of the console file a source may
// give (the path of the output.log runferry generates otherwise).
const sourceOutputLog = "output.log"

// splitLines cuts r into segments closed at the first line boundary at or
// beyond limit bytes; the bytes after the last newline, if any, end the
// last segment (counted as a line).
func splitLines(r io.Reader, limit int64) ([]logSeg, error) {
	br := bufio.NewReaderSize(r, 1<<16)
	var segs []logSeg
	var cur logSeg
	h := sha256.New()
	var off int64
	closeSeg := func() {
		cur.Digest = "sha256:" + hex.EncodeToString(h.Sum(nil))
		segs = append(segs, cur)
		cur, h = logSeg{off: off}, sha256.New()
	}
	for {
		b, err := br.ReadSlice('\n')
		if len(b) > 0 {
			h.Write(b)
			cur.Bytes += int64(len(b))
			off += int64(len(b))
			if b[len(b)-1] == '\n' {
				cur.Lines++
				if cur.Bytes >= limit {
					closeSeg()
				}
			}
		}
		switch {
		case err == nil, errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if cur.Bytes > 0 {
				cur.Lines++ // a last line without its newline
				closeSeg()
			}
			return segs, nil
		default:
			return nil, err
		}
	}
}

// writeOutputLog writes the source's own console file a (body): spooled
// and hashed, then held whole when it is one segment, else in segments;
// appending, what the copy holds unchanged is not sent again (the whole
// file unchanged is counted in FileDelta as a file kept). Continuing an
// append cut short (logsUntrusted), every segment is sent: that append may
// have rewritten any of them.
func (w *writer) writeOutputLog(ctx context.Context, a schema.Artifact, body io.Reader) error {
	tmp, d, err := w.spoolArtifact(a, body)
	if err != nil {
		return err
	}
	defer tmp.Close()
	n := tmp.Size
	segs, err := splitLines(io.NewSectionReader(tmp, 0, n), logSegmentBytes)
	if err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	if len(segs) > 1 {
		for _, s := range segs {
			w.cov.OutputSegments = append(w.cov.OutputSegments, s.LogSegment)
		}
	}
	var held []mlflowconv.LogSegment
	trusted := w.app != nil && !w.app.logsUntrusted
	if trusted {
		if old, had := w.app.files[a.Path]; had && old == d && len(w.app.outputSegs) == len(w.cov.OutputSegments) {
			w.keptFiles, w.keptBytes = w.keptFiles+1, w.keptBytes+n
			return nil
		}
		held = w.app.outputSegs
	}
	if len(segs) <= 1 {
		return w.uploadSection(ctx, tmp, 0, n, mlflowconv.OutputSegmentPath(0))
	}
	for i, s := range segs {
		if keptSegment(held, i, s) {
			continue
		}
		if err := w.uploadSection(ctx, tmp, s.off, s.Bytes, mlflowconv.OutputSegmentPath(i)); err != nil {
			return err
		}
	}
	return nil
}

// uploadSection sends n bytes of f from off to rel.
func (w *writer) uploadSection(ctx context.Context, f io.ReaderAt, off, n int64, rel string) error {
	open := func() (io.Reader, error) { return io.NewSectionReader(f, off, n), nil }
	if err := w.api().UploadReplayable(ctx, w.run.ArtifactURI, rel, open, n); err != nil {
		return fmt.Errorf("uploading %s: %w", rel, err)
	}
	return nil
}

// outputSegment reports whether rel is a segment beyond the first of the
// source's own output.log as this writer holds it.
func (w *writer) outputSegment(rel string) bool {
	for i := 1; i < len(w.cov.OutputSegments); i++ {
		if rel == mlflowconv.OutputSegmentPath(i) {
			return true
		}
	}
	return false
}

// deleteStaleOutputSegments deletes, appending, the segments of the
// source's output.log the copy held beyond those written now (the file
// shrank, is held whole again, or is gone: deleteGone deletes output.log
// itself). It runs before the console output is committed, which may
// generate files of the same names.
func (w *writer) deleteStaleOutputSegments(ctx context.Context) error {
	if w.app == nil {
		return nil
	}
	var stale []string
	for i := max(1, len(w.cov.OutputSegments)); i < len(w.app.outputSegs); i++ {
		stale = append(stale, mlflowconv.OutputSegmentPath(i))
	}
	if w.app.logsUntrusted && w.written[sourceOutputLog] {
		// Continuing an append cut short, which may have written more
		// segments than the copy it extends held: any output.N.log found
		// that is not one of those written now is stale (nothing is
		// generated when the source gives its own output.log).
		files, err := w.api().ListArtifactDir(ctx, w.run.RunID, w.run.ArtifactURI, "")
		if err != nil {
			return fmt.Errorf("listing the segments of output.log of run %s: %w", w.run.RunID, err)
		}
		for _, f := range files {
			if m := segmentName.FindStringSubmatch(f.Path); m != nil && m[2] != "" && !f.IsDir && !w.outputSegment(f.Path) {
				stale = append(stale, f.Path)
			}
		}
	}
	slices.Sort(stale)
	for _, rel := range slices.Compact(stale) {
		if err := w.api().DeleteArtifact(ctx, w.run.ArtifactURI, rel); err != nil {
			return fmt.Errorf("deleting %s (the source's output.log now in fewer segments): %w", rel, err)
		}
	}
	return nil
}
