package mlflow

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"slices"
	"strconv"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// Console output is stored in segments (mlflowconv.LogSegmentPath), since
// MLflow cannot append to an artifact: a segment is closed at the first
// line boundary at or beyond logSegmentBytes, so its boundaries depend
// only on the lines before it, and a copy of a grown run that is appended
// to holds the same segments as a fresh copy of it. An append sends only
// the segments that differ from those the copy holds (by digest: the last,
// partial one and the new ones when the output grew) and keeps the rest.
// A log smaller than the limit is one runferry/logs.jsonl, as before
// segments.

// logSegmentBytes is the size at which a console segment is closed
// (a variable for tests only).
var logSegmentBytes int64 = 8 << 20

var (
	_ sinks.LogDeltaReporter = (*writer)(nil)
	_ sinks.HeldLogsLister   = (*Sink)(nil)
	_ sinks.HeldFilesLister  = (*Sink)(nil)
)

// logSeg is one segment of the console output and where it starts in it.
type logSeg struct {
	mlflowconv.LogSegment
	off int64
}

// segmenter cuts console output, given line by line as written
// (spool.append: the line's JSON), into segments.
type segmenter struct {
	limit int64
	segs  []logSeg
	cur   logSeg
	h     hash.Hash // of the current segment; nil between segments
	whole hash.Hash
	off   int64
}

func newSegmenter(limit int64) *segmenter {
	return &segmenter{limit: limit, whole: sha256.New()}
}

// add takes one line, its JSON without the newline.
func (g *segmenter) add(line []byte) {
	if g.h == nil {
		g.h, g.cur = sha256.New(), logSeg{off: g.off}
	}
	for _, h := range []hash.Hash{g.h, g.whole} {
		h.Write(line)
		h.Write([]byte{'\n'})
	}
	n := int64(len(line)) + 1
	g.cur.Bytes += n
	g.cur.Lines++
	g.off += n
	if g.cur.Bytes >= g.limit {
		g.close()
	}
}

func (g *segmenter) close() {
	if g.h == nil {
		return
	}
	g.cur.Digest = "sha256:" + hex.EncodeToString(g.h.Sum(nil))
	g.segs = append(g.segs, g.cur)
	g.h = nil
}

// finish returns the segments and the digest of the whole output.
func (g *segmenter) finish() ([]logSeg, string) {
	g.close()
	return g.segs, "sha256:" + hex.EncodeToString(g.whole.Sum(nil))
}

// keptSegment reports whether seg, the i-th segment of the console output
// now, is held already, unchanged, by the copy whose segments are held.
func keptSegment(held []mlflowconv.LogSegment, i int, seg logSeg) bool {
	return i < len(held) && held[i].Digest != "" && held[i].Digest == seg.Digest
}

// commitLogs uploads the spooled console output in segments
// (runferry/logs.jsonl, runferry/logs.1.jsonl, ...) and, unless the source
// gave a file output.log, the same lines as plain text, segment for
// segment (output.log, output.1.log, ...: output.log is what MLflow's UI
// shows first). Appending, a segment the copy holds unchanged is not sent
// again (counted by LogDelta), and the segments the copy held beyond the
// new last one are deleted.
func (w *writer) commitLogs(ctx context.Context) error {
	if err := w.logs.b.Flush(); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	if _, err := w.logs.f.Seek(0, io.SeekStart); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	g := newSegmenter(logSegmentBytes)
	sc := bufio.NewScanner(w.logs.f)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	for sc.Scan() {
		g.add(sc.Bytes())
	}
	if err := sc.Err(); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	segs, whole := g.finish()
	w.cov.LogsDigest = whole
	if len(segs) > 1 {
		for _, s := range segs {
			w.cov.LogSegments = append(w.cov.LogSegments, s.LogSegment)
		}
	}
	var held []mlflowconv.LogSegment
	var prevGenerated []string
	if w.app != nil {
		held, prevGenerated = w.app.logs, w.app.generated
	}
	if w.app != nil && w.app.logsUntrusted {
		held = nil // continuing an append cut short: it may have rewritten any
	}
	generate := !w.written["output.log"]
	for i, s := range segs {
		kept := keptSegment(held, i, s)
		if kept {
			w.keptLogLines += s.Lines
		} else if err := w.uploadSegment(ctx, s, mlflowconv.LogSegmentPath(i)); err != nil {
			return err
		}
		if !generate {
			continue
		}
		name := mlflowconv.OutputSegmentPath(i)
		if !kept || !slices.Contains(prevGenerated, name) {
			if err := w.uploadOutputSegment(ctx, s, name); err != nil {
				return err
			}
		}
		w.cov.Generated = append(w.cov.Generated, name)
	}
	return w.deleteStaleSegments(ctx, len(segs))
}

// uploadSegment sends segment s of the spooled console output to rel.
func (w *writer) uploadSegment(ctx context.Context, s logSeg, rel string) error {
	f := w.logs.f
	open := func() (io.Reader, error) { return io.NewSectionReader(f, s.off, s.Bytes), nil }
	if err := w.api().UploadReplayable(ctx, w.run.ArtifactURI, rel, open, s.Bytes); err != nil {
		return fmt.Errorf("uploading %s: %w", rel, err)
	}
	return nil
}

// uploadOutputSegment renders the lines of segment s as plain text and
// uploads them as rel.
func (w *writer) uploadOutputSegment(ctx context.Context, s logSeg, rel string) error {
	out, err := newSpool()
	if err != nil {
		return err
	}
	defer out.remove()
	sc := bufio.NewScanner(io.NewSectionReader(w.logs.f, s.off, s.Bytes))
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	for sc.Scan() {
		var l schema.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fault.Permanent(fmt.Errorf("mlflow sink: spooled console line: %w", err))
		}
		out.b.WriteString(l.Line)
		out.b.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	return w.uploadSpool(ctx, out, rel)
}

var segmentName = regexp.MustCompile(`^(?:runferry/logs\.([1-9][0-9]*)\.jsonl|output\.([1-9][0-9]*)\.log)$`)

// deleteStaleSegments deletes, appending, the console segments from n on
// that the copy held (its coverage file's, or, continuing an append cut
// short, any found: that append may have written more), and the generated
// plain-text segments that are no longer generated (the source now gives
// its own output.log) or from n on.
func (w *writer) deleteStaleSegments(ctx context.Context, n int) error {
	if w.app == nil {
		return nil
	}
	var stale []string
	for i := n; i < len(w.app.logs); i++ {
		stale = append(stale, mlflowconv.LogSegmentPath(i))
	}
	for _, name := range w.app.generated {
		if m := segmentName.FindStringSubmatch(name); m != nil && !slices.Contains(w.cov.Generated, name) && !w.outputSegment(name) {
			stale = append(stale, name)
		}
	}
	if w.app.logsUntrusted {
		for _, dir := range []string{"", "runferry"} {
			files, err := w.api().ListArtifactDir(ctx, w.run.RunID, w.run.ArtifactURI, dir)
			if err != nil {
				return fmt.Errorf("listing the console segments of run %s: %w", w.run.RunID, err)
			}
			for _, f := range files {
				m := segmentName.FindStringSubmatch(f.Path)
				if m == nil || f.IsDir || w.written[f.Path] || w.outputSegment(f.Path) {
					continue
				}
				i, _ := strconv.Atoi(m[1] + m[2])
				if i >= n || m[2] != "" && !slices.Contains(w.cov.Generated, f.Path) {
					stale = append(stale, f.Path)
				}
			}
		}
	}
	slices.Sort(stale)
	for _, rel := range slices.Compact(stale) {
		if err := w.api().DeleteArtifact(ctx, w.run.ArtifactURI, rel); err != nil {
			return fmt.Errorf("deleting %s (console output now in fewer segments): %w", rel, err)
		}
	}
	return nil
}

// LogDelta implements sinks.LogDeltaReporter: the console lines held in
// segments the copy holds unchanged, not sent again.
func (w *writer) LogDelta() int64 { return w.keptLogLines }

// heldCopy returns the coverage file of the one complete, active copy of
// origin that base describes (its mark, and its run id when base names
// one), or ok false.
func (s *Sink) heldCopy(ctx context.Context, origin schema.Ref, base sinks.AppendBase) (cov mlflowconv.Coverage, ok bool, err error) {
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin.String()), false)
	if err != nil || len(runs) != 1 {
		return cov, false, err
	}
	held := runs[0]
	mark, _ := held.Tag(mlflowconv.TagMark)
	if held.Info.LifecycleStage != mlflowapi.StageActive || !completeRun(held) || mark == "" || mark != base.Mark ||
		base.DestID != "" && base.DestID != held.Info.RunID {
		return cov, false, nil
	}
	if _, err := s.readJSON(ctx, held.Info, mlflowconv.CoveragePath, &cov); err != nil {
		if errors.Is(err, sinks.ErrCannotAppend) {
			return cov, false, nil
		}
		return cov, false, err
	}
	return cov, true, nil
}

// HeldFiles implements sinks.HeldFilesLister from the digests the copy's
// coverage file holds (mlflowconv.Coverage.FileDigests): an append keeps a
// file given again with the same SHA-256 (see sendChanged). The sizes are
// not recorded (HeldFile.Size -1).
func (s *Sink) HeldFiles(ctx context.Context, origin schema.Ref, base sinks.AppendBase) (map[string]sinks.HeldFile, bool, error) {
	cov, ok, err := s.heldCopy(ctx, origin, base)
	if err != nil || !ok {
		return nil, false, err
	}
	out := map[string]sinks.HeldFile{}
	for p, d := range cov.FileDigests {
		if hexDigest, ok := cutSHA256(d); ok {
			out[p] = sinks.HeldFile{Size: -1, SHA256: hexDigest}
		}
	}
	return out, true, nil
}

func cutSHA256(d string) (string, bool) {
	const prefix = "sha256:"
	if len(d) <= len(prefix) || d[:len(prefix)] != prefix {
		return "", false
	}
	return d[len(prefix):], true
}

// HeldLogs implements sinks.HeldLogsLister: the planner cuts the lines it
// is given into segments as the writer would and counts the lines of
// those the copy holds unchanged.
func (s *Sink) HeldLogs(ctx context.Context, origin schema.Ref, base sinks.AppendBase) (sinks.LogPlanner, bool, error) {
	cov, ok, err := s.heldCopy(ctx, origin, base)
	if err != nil || !ok {
		return nil, false, err
	}
	return &logPlan{g: newSegmenter(logSegmentBytes), held: cov.Segments()}, true, nil
}

type logPlan struct {
	g    *segmenter
	held []mlflowconv.LogSegment
}

func (p *logPlan) Add(lines []schema.LogLine) error {
	for _, l := range lines {
		b, err := json.Marshal(l) // as spool.append
		if err != nil {
			return fault.Permanent(err)
		}
		p.g.add(b)
	}
	return nil
}

func (p *logPlan) Kept() int64 {
	segs, _ := p.g.finish()
	var kept int64
	for i, s := range segs {
		if keptSegment(p.held, i, s) {
			kept += s.Lines
		}
	}
	return kept
}
