package wandbdir

import (
	"os"
	"slices"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// One read of a run's logs for its metrics, rich values and console output.
//
// A copy asks the source for a run's Metrics, then its RichValues, then its
// Logs, and each used to be a pass of its own over the run's `.wandb` files
// (framing, checksums, and every history row scanned and its values parsed
// again). The Metrics pass converts every history row anyway and sees every
// record go by, so it also keeps (captures) what the two later passes
// yield: the rows' rich values and unparsable keys at their steps, the
// non-numeric system-metric items, and the console records' text. The next
// RichValues and Logs calls for the run yield from the capture and read no
// log.
//
// A capture is used only when it is what a new pass would read, so every
// call yields what it yielded before, value for value:
//   - it was taken by a Metrics pass that read every segment to its end
//     (not one whose consumer stopped early, nor one that failed);
//   - every segment of the run is a `.wandb` log, whose size and
//     modification time were the same before and after that pass and are
//     still when the later call starts (a live run that wrote more since is
//     read again, as are pre-0.10 folders);
//   - it stayed within maxCaptureBytes: past that the pass stops capturing
//     and the later calls read the logs as before, so memory stays bounded
//     whatever the run holds.
//
// Each part of a capture is used once (the first RichValues call takes the
// rich values, the first Logs call the console chunks); a later Metrics
// pass of the run replaces it, and a Source keeps at most maxCaptures (the
// oldest dropped first), so captures a caller never asks for cost at most
// maxCaptures × maxCaptureBytes.

// maxCaptureBytes bounds what one capture holds (roughly: the text of its
// values and lines plus a fixed cost for each).
const maxCaptureBytes = 8 << 20

// maxCaptures bounds the captures a Source keeps.
const maxCaptures = 4

// Approximate fixed memory cost of one captured value or console chunk
// beyond its text.
const (
	richOverhead  = 112
	chunkOverhead = 64
)

// fileStamp is what a capture checks of a segment's log: its size and
// modification time.
type fileStamp struct {
	size  int64
	mtime time.Time
}

// stampLogs returns the stamps of the run's segments' logs, false when a
// segment has no `.wandb` log or it cannot be stat'ed.
func stampLogs(ri *runInfo) ([]fileStamp, bool) {
	out := make([]fileStamp, len(ri.segments))
	for i, seg := range ri.segments {
		if seg.wandbFile == "" {
			return nil, false
		}
		fi, err := os.Stat(seg.wandbFile)
		if err != nil {
			return nil, false
		}
		out[i] = fileStamp{size: fi.Size(), mtime: fi.ModTime()}
	}
	return out, true
}

// consoleChunk is one console record as Logs reads it: text written to a
// stream at a time (Unix ms, 0 when unknown), in a segment.
type consoleChunk struct {
	seg    *segment
	stream string
	text   string
	time   int64
}

// chunkOf returns the console chunk a record holds, false for records
// that are not console output.
func chunkOf(seg *segment, rec *wandbfile.Record) (consoleChunk, bool) {
	switch {
	case rec.Output != nil:
		stream := schema.Stdout
		if rec.Output.Stream == wandbfile.Stderr {
			stream = schema.Stderr
		}
		return consoleChunk{seg: seg, stream: stream, text: rec.Output.Line, time: unixMillis(rec.Output.Timestamp)}, true
	case rec.OutputLogger != nil:
		return consoleChunk{seg: seg, stream: schema.Stdout, text: rec.OutputLogger.Line + "\n"}, true
	}
	return consoleChunk{}, false
}

// consoleKind reports whether records of kind k can hold console output:
// the only records a capturing Metrics pass decodes besides history and
// stats.
func consoleKind(k wandbfile.Kind) bool {
	return k == wandbfile.KindOutput || k == wandbfile.KindOutputRaw || k == wandbfile.KindOutputLogger
}

// passCapture is what one Metrics pass kept for the run's RichValues and
// Logs calls.
type passCapture struct {
	stamps  []fileStamp // of the segments' logs when the pass started
	rich    []schema.RichValue
	console []consoleChunk
	bytes   int
	over    bool // it outgrew maxCaptureBytes: no rich value or console chunk is kept
	// run is the run in full, as readRun reads it, when the pass ran
	// readRun's pass beside its own (a run not read in full before);
	// else nil. It is kept whatever the pass's values and lines weigh.
	run *schema.Run
	// richTaken, consoleTaken and runTaken are set once a call took that
	// part.
	richTaken, consoleTaken, runTaken bool
}

// used reports whether every part c holds was taken.
func (c *passCapture) used() bool {
	return c.richTaken && c.consoleTaken && (c.run == nil || c.runTaken)
}

// grow accounts n more bytes, dropping everything once past the bound.
func (c *passCapture) grow(n int) bool {
	if c.over {
		return false
	}
	c.bytes += n
	if c.bytes > maxCaptureBytes {
		c.over, c.rich, c.console = true, nil, nil
		return false
	}
	return true
}

// addRich keeps v; it never fails (the error is for emitRich's signature).
func (c *passCapture) addRich(v schema.RichValue) error {
	n := richOverhead + len(v.Key) + len(v.Type) + len(v.JSON)
	for _, f := range v.Files {
		n += 16 + len(f)
	}
	if c.grow(n) {
		c.rich = append(c.rich, v)
	}
	return nil
}

// record keeps rec's console chunk, if it has one.
func (c *passCapture) record(seg *segment, rec *wandbfile.Record) error {
	if ch, ok := chunkOf(seg, rec); ok && c.grow(chunkOverhead+len(ch.text)) {
		c.console = append(c.console, ch)
	}
	return nil
}

// emitRich gives emit the rich values of a history row r converted at step:
// its non-numeric values, then its unparsable keys (type "invalid"), as
// RichValues yields them.
func emitRich(r wandbfile.RowValues, step int64, emit func(schema.RichValue) error) error {
	for _, v := range r.Rich {
		v.Step, v.Time = step, r.Time
		if err := emit(v); err != nil {
			return err
		}
	}
	for _, key := range r.Bad {
		v := schema.RichValue{Key: key, Step: step, Time: r.Time, Type: "invalid", JSON: `"unparsable value_json"`}
		if err := emit(v); err != nil {
			return err
		}
	}
	return nil
}

// emitSystemRich gives emit the non-numeric items of stats sample number
// sample, taken at t, as RichValues yields them.
func emitSystemRich(items []wandbfile.Value, sample int64, t time.Time, emit func(schema.RichValue) error) error {
	return systemItems(items, false, func(key string, _ float64, it wandbfile.Value) error {
		return emit(schema.RichValue{Key: key, Step: sample, Time: unixMillis(t),
			Type: wandbfile.ValueKind(it.Value), JSON: wandbfile.ValueToJSON(it.Value)})
	})
}

// captureSet holds a Source's captures, by run, oldest first.
type captureSet struct {
	mu    sync.Mutex
	runs  []*runInfo
	byRun map[*runInfo]*passCapture
}

// drop forgets the capture of ri.
func (cs *captureSet) drop(ri *runInfo) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.dropLocked(ri)
}

func (cs *captureSet) dropLocked(ri *runInfo) {
	if _, ok := cs.byRun[ri]; ok {
		delete(cs.byRun, ri)
		cs.runs = slices.DeleteFunc(cs.runs, func(r *runInfo) bool { return r == ri })
	}
}

// keep stores c as ri's capture, when it is whole, and its logs are as
// they were when it started.
func (cs *captureSet) keep(ri *runInfo, c *passCapture) {
	if c == nil || c.over && c.run == nil {
		return
	}
	if c.over {
		c.richTaken, c.consoleTaken = true, true // only the run is kept
	}
	if now, ok := stampLogs(ri); !ok || !slices.Equal(now, c.stamps) {
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.dropLocked(ri)
	if cs.byRun == nil {
		cs.byRun = map[*runInfo]*passCapture{}
	}
	cs.byRun[ri] = c
	cs.runs = append(cs.runs, ri)
	for len(cs.runs) > maxCaptures {
		delete(cs.byRun, cs.runs[0])
		cs.runs = cs.runs[1:]
	}
}

// take returns ri's capture for one use of the part part names (setting
// its taken flag), false when there is none, that part was taken, or the
// run's logs changed since it was taken. A capture whose parts are both
// taken is forgotten.
func (cs *captureSet) take(ri *runInfo, taken func(*passCapture) *bool) (*passCapture, bool) {
	cs.mu.Lock()
	c := cs.byRun[ri]
	if c == nil || *taken(c) {
		cs.mu.Unlock()
		return nil, false
	}
	*taken(c) = true
	if c.used() {
		cs.dropLocked(ri)
	}
	cs.mu.Unlock()
	if now, ok := stampLogs(ri); !ok || !slices.Equal(now, c.stamps) {
		return nil, false
	}
	return c, true
}

// takeRich returns the rich values captured for ri, false when a pass
// must read them (see take).
func (cs *captureSet) takeRich(ri *runInfo) ([]schema.RichValue, bool) {
	c, ok := cs.take(ri, func(c *passCapture) *bool { return &c.richTaken })
	if !ok {
		return nil, false
	}
	return c.rich, true
}

// takeConsole returns the console chunks captured for ri, in log order,
// false when a pass must read them (see take).
func (cs *captureSet) takeConsole(ri *runInfo) ([]consoleChunk, bool) {
	c, ok := cs.take(ri, func(c *passCapture) *bool { return &c.consoleTaken })
	if !ok {
		return nil, false
	}
	return c.console, true
}

// takeRun returns the run in full captured for ri, false when it must be
// read (none was, or see take).
func (cs *captureSet) takeRun(ri *runInfo) (schema.Run, bool) {
	c, ok := cs.take(ri, func(c *passCapture) *bool { return &c.runTaken })
	if !ok || c.run == nil {
		return schema.Run{}, false
	}
	return *c.run, true
}

// clear forgets every capture.
func (cs *captureSet) clear() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.runs, cs.byRun = nil, nil
}
