package wandbdir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// consolePlan says, segment by segment, where a run's console lines come
// from: the output records of its `.wandb` file, or its files/output.log.
type consolePlan struct {
	fromFile []bool // by index in runInfo.segments
	// notes name each choice of output.log over a damaged log, for
	// Run.Damage.
	notes []string
}

// consoleCounter counts the console records and lines of each segment of a
// run as a walk reads them, and which segments' logs are damaged; plan
// then chooses each segment's source.
type consoleCounter struct {
	segs    map[*segment]*segConsole
	records int // over the whole run
}

// segConsole is what consoleCounter knows of one segment.
type segConsole struct {
	records, lines int
	damaged        bool
	splitters      map[string]*lineSplitter
}

func newConsoleCounter() *consoleCounter {
	return &consoleCounter{segs: map[*segment]*segConsole{}}
}

func (c *consoleCounter) seg(s *segment) *segConsole {
	sc := c.segs[s]
	if sc == nil {
		sc = &segConsole{splitters: map[string]*lineSplitter{}}
		c.segs[s] = sc
	}
	return sc
}

// record counts a console record (others are ignored).
func (c *consoleCounter) record(s *segment, rec *wandbfile.Record) {
	var stream, text string
	switch {
	case rec.Output != nil:
		stream, text = schema.Stdout, rec.Output.Line
		if rec.Output.Stream == wandbfile.Stderr {
			stream = schema.Stderr
		}
	case rec.OutputLogger != nil:
		stream, text = schema.Stdout, rec.OutputLogger.Line+"\n"
	default:
		return
	}
	c.records++
	sc := c.seg(s)
	sc.records++
	sp := sc.splitters[stream]
	if sp == nil {
		sp = &lineSplitter{stream: stream, out: func(schema.LogLine) { sc.lines++ }}
		sc.splitters[stream] = sp
	}
	sp.write(text, 0)
}

// segmentEnd flushes the segment's unfinished lines, as Logs does.
func (c *consoleCounter) segmentEnd(s *segment) {
	for _, sp := range c.seg(s).splitters {
		sp.flush()
	}
}

// damage marks a segment whose log the walk found damaged.
func (c *consoleCounter) damage(s *segment, notes []string) {
	if len(notes) > 0 {
		c.seg(s).damaged = true
	}
}

// plan chooses each segment's console source. A run whose logs hold no
// console record at all takes every segment's output.log (offline runs of
// old SDKs, logs written without console capture). Otherwise a segment
// whose log is damaged (truncated, or with undecodable records: a folder
// copied while its run was live, say) takes its output.log when that holds
// more lines than the log's records gave, and the choice is noted; every
// other segment keeps its records, whose lines carry times.
func (c *consoleCounter) plan(ctx context.Context, ri *runInfo) (*consolePlan, error) {
	p := &consolePlan{fromFile: make([]bool, len(ri.segments))}
	for i, s := range ri.segments {
		if c.records == 0 {
			p.fromFile[i] = true
			continue
		}
		sc := c.seg(s)
		if !sc.damaged {
			continue
		}
		n, err := countFileLines(ctx, s)
		if err != nil {
			return nil, err
		}
		if n > sc.lines {
			p.fromFile[i] = true
			p.notes = append(p.notes, fmt.Sprintf("%s: console read from here (%d lines): the damaged %s holds %d",
				s.name(outputLogPath(s)), n, s.name(s.wandbFile), sc.lines))
		}
	}
	return p, nil
}

// outputLogPath is where a segment's console file is.
func outputLogPath(s *segment) string { return filepath.Join(s.filesDir(), "output.log") }

// countFileLines counts the lines of a segment's output.log as Logs would
// yield them; 0 when it has none.
func countFileLines(ctx context.Context, s *segment) (int, error) {
	n := 0
	sp := &lineSplitter{stream: schema.Stdout, out: func(schema.LogLine) { n++ }}
	if err := readOutputLog(ctx, s, sp, func() error { return nil }); err != nil {
		return 0, err
	}
	return n, nil
}

// readOutputLog feeds a segment's output.log to sp and flushes it. A
// missing file feeds nothing (offline runs of some SDKs have none). failed
// reports an error of the consumer, which stops the reading.
func readOutputLog(ctx context.Context, s *segment, sp *lineSplitter, failed func() error) error {
	f, err := os.Open(outputLogPath(s))
	if err != nil {
		return nil
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := f.Read(buf)
		sp.write(string(buf[:n]), 0)
		if err := failed(); err != nil {
			return err
		}
		if rerr != nil {
			break
		}
	}
	sp.flush()
	return failed()
}

// consolePlan returns the run's console plan: the one its metadata pass
// (readRun) made, else one made now by reading its logs' console records.
func (ri *runInfo) consolePlan(ctx context.Context) (*consolePlan, error) {
	ri.mu.Lock()
	p := ri.console
	ri.mu.Unlock()
	if p != nil {
		return p, nil
	}
	c := newConsoleCounter()
	_, err := walk(ctx, ri, handler{
		record:     func(s *segment, rec *wandbfile.Record) error { c.record(s, rec); return nil },
		segmentEnd: func(s *segment) error { c.segmentEnd(s); return nil },
		damage:     c.damage,
	})
	if err != nil {
		return nil, err
	}
	if p, err = c.plan(ctx, ri); err != nil {
		return nil, err
	}
	ri.setConsolePlan(p)
	return p, nil
}

// setConsolePlan keeps p for later Logs calls.
// readInFull reports whether the run's logs were read for its fields
// (readRun) or its console plan: a Metrics pass then need not run readRun's
// pass beside its own (see onepass.go).
func (ri *runInfo) readInFull() bool {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.console != nil
}

func (ri *runInfo) setConsolePlan(p *consolePlan) {
	ri.mu.Lock()
	ri.console = p
	ri.mu.Unlock()
}
