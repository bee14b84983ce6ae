package wandbdir

import (
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.HeaderLister = (*Source)(nil)

// Light run headers (sources.HeaderLister).
//
// Runs reads every log in full: config and summary are folded over all
// records, and the status needs the exit record at the end. A header is
// what a few small reads tell: the run record near the start of each
// `.wandb` file (read when the runs were found), wandb-metadata.json, and
// the last tailBytes of each segment's log: the last one's holds the exit
// record, a preempting record and the latest timestamps, and every one
// shows whether the log ends cut short. No history before the tails is
// read.
//
// The header's Name is the full read's (the name the last run record that
// sets one gives, the segments in order) when the reads above see every
// run record that renames the run: a log of at most tailBytes is read whole; a
// larger one's records that discovery's first reads bring in whole
// (firstRunRecord) and its tail are looked at for run records, and no byte
// more is read for them. A rename recorded in the middle of a large log
// is seen only by a read of the whole log: the copy's, which keeps the
// name on the segment (segment.whole) and, through the log cache, for the
// next jobs' headers while the log is unchanged. So a header read without
// the cache (ls, --no-state, the first job) may name such a run by an
// earlier name; what the job copies, reports for the runs it copies and
// records in the ledger is the full read's (docs/SYNC.md, "Which name a
// renamed W&B run shows").
//
// A header holds Origin, Experiment, Name, Start, Status, the tag
// wandb.state (running, crashed) when no exit record decides the status,
// and as Damage what the tail shows damaged (a truncated end). It leaves
// out, because they need the whole log: config and summary, End, the other
// wandb.* tags, labels, notes, and damage before the tail. Name, Start and
// Status equal those of the full run (Runs), except for Name as above, and
// that the silence that makes a run without exit record crashed is
// measured from the tail's latest timestamp and the log's modification
// time rather than from every record's (they differ only when the
// writer's clock ran ahead of the file system's).

// tailBytes is how much of the end of the last segment's log a header
// reads: the exit record and the records a finishing SDK writes after it
// fit many times over.
const tailBytes = 4 * wandbfile.BlockSize

// tailInfo is what the end of a segment's log tells.
type tailInfo struct {
	exit       *wandbfile.Exit
	preempting bool
	// lastTime is the latest timestamp seen (history, stats, console),
	// Unix ms, read only when timed is set: the time of every history row
	// is most of a tail's work, and a log ending with its exit record
	// (most runs) needs none of it (see exitDecides).
	lastTime int64
	timed    bool
	// name is the name the last run record in the tail that sets one
	// gives the run (a rename after wandb.init), "" when none does; in a
	// log of at most tailBytes, read whole, the log's own name.
	name    string
	damage  []string // damage found in the tail, as walk names it
	corrupt bool     // some of it other than a truncated tail (see handler.corrupt)
	// complete is set when the tail was read to its end (the log opened
	// and every block read or found damaged): only such a tail is kept in
	// the log cache (idcache.go).
	complete bool
	// id is the log's identity when it was read (stat before the read): a
	// cached tailInfo is used only while it holds.
	id fileID
}

// tail returns what the end of the segment's log tells, with its latest
// timestamp when times is set, cached while the log's identity (fileID:
// device, inode, size, modification and change time) stays the same. A segment without a `.wandb` log
// (before SDK 0.10) has an empty tailInfo.
func (ri *runInfo) tail(seg *segment, times bool) tailInfo {
	if seg.wandbFile == "" {
		return tailInfo{}
	}
	fi, err := os.Stat(seg.wandbFile)
	if err != nil {
		return tailInfo{}
	}
	ri.mu.Lock()
	cached := seg.tailCache
	ri.mu.Unlock()
	id, _ := identityOf(fi)
	if cached != nil && cached.id == id && (cached.timed || !times) {
		return *cached
	}
	t := readTail(seg, fi.Size(), times)
	t.id = id
	ri.mu.Lock()
	seg.tailCache = &t
	ri.mu.Unlock()
	return t
}

// exitDecides reports whether the tail's exit or preempting record decides
// the run's status, so that no time in the tail matters to it (runState).
func (t tailInfo) exitDecides() bool {
	return t.exit != nil && !t.exit.NotComplete || t.exit == nil && t.preempting
}

// readTail reads the last tailBytes of seg's log, with its latest
// timestamp when times is set. A log that cannot be read gives what was
// read before the failure (the full read names it).
func readTail(seg *segment, size int64, times bool) tailInfo {
	t, _ := scanTail(seg, size, false, times, tailBytes)
	if times && t.lastTime == 0 && size > tailBytes {
		// No timed record in the tail (a log ending in large records
		// without a time, such as an artifact's manifest): the whole log is
		// read for its latest time, so that the header judges the run's
		// silence as the full read does (silentSince).
		whole, _ := scanTail(seg, size, false, true, size)
		t.lastTime, t.name = whole.lastTime, cmpOr(whole.name, t.name)
	}
	return t
}

// scanTail is readTail reading the last window bytes; with wantRun it also returns the run record among
// the log's first headerRecords records when the tail read starts at the
// log's start (a log of at most tailBytes), as firstRunRecord finds it: so
// discovery reads such a log once for both.
func scanTail(seg *segment, size int64, wantRun, times bool, window int64) (tailInfo, *wandbfile.Run) {
	t := tailInfo{timed: times}
	var run *wandbfile.Run
	f, err := openLog(seg.wandbFile)
	if err != nil {
		return t, nil
	}
	defer f.Close()
	name := seg.name(seg.wandbFile)
	rd, err := wandbfile.NewTailReader(f, size, name, window)
	if err != nil {
		return t, nil
	}
	wantRun = wantRun && size <= tailBytes
	conv := newConverter()
	var row wandbfile.Row
	seen := func(ms int64) {
		if times {
			t.lastTime = max(t.lastTime, ms)
		}
	}
	for n := 1; ; n++ {
		payload, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			t.complete = true
			break
		}
		if err != nil {
			return t, run
		}
		lookForRun := wantRun && run == nil && n <= headerRecords
		// History rows are most of a tail: their time is read in place
		// (as walk's fast path does), and records the header does not use
		// (without times: those that only carry a time) are not decoded.
		if kind, body, clean := wandbfile.PeekRecord(payload); clean && fastPath {
			switch kind {
			case wandbfile.KindHistory:
				if !times {
					continue
				}
				if row.Scan(body) {
					seen(conv.Header(&row).Time)
					continue
				}
			case wandbfile.KindStats, wandbfile.KindOutput, wandbfile.KindOutputRaw:
				if !times {
					continue
				}
			case wandbfile.KindExit, wandbfile.KindPreempting, wandbfile.KindRun:
			default:
				continue
			}
		}
		rec, err := wandbfile.Decode(payload)
		if err != nil {
			continue
		}
		switch {
		case rec.Run != nil:
			if lookForRun {
				run = rec.Run
			}
			t.name = cmpOr(rec.Run.DisplayName, t.name)
		case rec.History != nil:
			row.SetHistory(rec.History)
			seen(conv.Header(&row).Time)
		case rec.Stats != nil:
			seen(unixMillis(rec.Stats.Timestamp))
		case rec.Output != nil:
			seen(unixMillis(rec.Output.Timestamp))
		case rec.Exit != nil:
			t.exit = rec.Exit
		case rec.Kind == wandbfile.KindPreempting:
			t.preempting = true
		}
	}
	for _, d := range rd.Damage() {
		t.damage = append(t.damage, d.Error())
		t.corrupt = t.corrupt || !d.Truncated
	}
	return t, run
}

// header builds the run's light header (see the comment at the top).
func (s *Source) header(ri *runInfo) schema.Run {
	r := schema.Run{Origin: ri.ref, Experiment: ri.exp}
	// Each segment's tail is taken once (a stat of its log, and a read
	// unless cached). Later segments win for each field they set, and a
	// segment's later name (a rename) wins over its first run record's.
	var rr wandbfile.Run
	var t tailInfo
	for _, seg := range ri.segments {
		if seg.run != nil {
			mergeNonZero(&rr, *seg.run)
		}
		t = ri.tail(seg, false)
		r.Damage = append(r.Damage, t.damage...)
		rr.DisplayName = cmpOr(seg.laterName(t), rr.DisplayName)
	}
	last := ri.segments[len(ri.segments)-1]
	// wandb-metadata.json gives the name and start only where the run
	// records lack them, and the status only of a run without a log: it
	// is read only then.
	var md metadata
	if rr.DisplayName == "" || ri.segments[0].start.IsZero() || last.wandbFile == "" {
		for _, seg := range ri.segments {
			if got := readMetadata(filepath.Join(seg.filesDir(), "wandb-metadata.json")); got != nil {
				mergeNonZero(&md, *got)
			}
		}
	}
	r.Name = cmpOr(rr.DisplayName, md.Name, ri.id)
	r.Start = cmpOrTime(ri.segments[0].start, md.StartedAt)
	corrupt := t.corrupt
	// The tail's times matter only when no exit record decides the status.
	if !t.exitDecides() {
		t = ri.tail(last, true)
	}
	sm := &segMeta{seg: last, run: last.run, exit: t.exit, preempting: t.preempting, lastTime: t.lastTime,
		damaged: corrupt}
	var state string
	r.Status, state = runState(sm, md, s.crashRule())
	if state != "" {
		r.Tags = []schema.Tag{{Key: TagPrefix + "state", Value: state}}
	}
	r.Start = schema.CanonicalTime(r.Start)
	r.Canonicalize()
	return r
}

// laterName is the name seg's log gives the run after the run record
// identify read, "" when it tells none: the whole log's when a read of it
// (segment.whole) saw the identity t was read under, else t's (the tail's).
func (seg *segment) laterName(t tailInfo) string {
	if w := seg.whole.Load(); w != nil && w.id == t.id && w.name != "" {
		return w.name
	}
	return t.name
}

// RunHeaders yields the light headers of exp's runs (see above), in the
// order of Runs.
func (s *Source) RunHeaders(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		runs, err := s.index(ctx)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		var list []*runInfo
		for _, ri := range runs {
			if ri.exp == exp {
				list = append(list, ri)
			}
		}
		// The headers are built on headerWorkers goroutines, at most
		// headersAhead ahead of the consumer, and yielded in order: their
		// reads (a few small files a run, mostly waiting on the file
		// system) overlap each other and what the consumer does with each.
		items := make([]headerItem, len(list))
		for i := range items {
			items[i].done = make(chan struct{})
		}
		next := make(chan int)
		stop := make(chan struct{})
		slots := make(chan struct{}, headersAhead)
		go func() {
			defer close(next)
			for i := range list {
				select {
				case slots <- struct{}{}:
				case <-stop:
					return
				}
				select {
				case next <- i:
				case <-stop:
					return
				}
			}
		}()
		var wg sync.WaitGroup
		for range headerWorkers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					items[i].run = s.header(list[i])
					close(items[i].done)
				}
			}()
		}
		defer func() {
			close(stop)
			wg.Wait()
		}()
		for i := range list {
			if ctx.Err() != nil {
				yield(schema.Run{}, ctx.Err())
				return
			}
			<-items[i].done
			<-slots
			if !yield(items[i].run, nil) {
				return
			}
		}
	}
}

// headerWorkers and headersAhead bound the light headers RunHeaders builds
// at once and ahead of its consumer.
const (
	headerWorkers = 4
	headersAhead  = 64
)

// headerItem is one header of RunHeaders' window: run is set, and done
// closed, once it is built.
type headerItem struct {
	run  schema.Run
	done chan struct{}
}

// Run reads the run with origin ref in full, as Runs yields it.
func (s *Source) Run(ctx context.Context, ref schema.Ref) (schema.Run, error) {
	ri, err := s.find(ctx, ref)
	if err != nil {
		return schema.Run{}, err
	}
	return readRun(ctx, ri, s.crashRule())
}

var _ sources.ChangeTimer = (*Source)(nil)

// ChangedAt is the latest modification time of the run's logs and run
// files (pre-0.10: its history, events and run files), or the latest
// timestamp at the end of its last log when that is later (a writer
// whose clock runs ahead of the file system's). ok is false for a run
// not found.
func (s *Source) ChangedAt(ctx context.Context, run schema.Run) (time.Time, bool) {
	ri, err := s.find(ctx, run.Origin)
	if err != nil {
		return time.Time{}, false
	}
	var t time.Time
	later := func(u time.Time) {
		if u.After(t) {
			t = u
		}
	}
	for _, seg := range ri.segments {
		paths := []string{seg.wandbFile}
		if seg.legacy {
			paths = []string{filepath.Join(seg.dir, "wandb-history.jsonl"), filepath.Join(seg.dir, "wandb-events.jsonl")}
		}
		for _, p := range paths {
			if fi, err := os.Stat(p); p != "" && err == nil {
				later(fi.ModTime())
			}
		}
	}
	if files, err := listFiles(ri, true); err == nil {
		for _, f := range files {
			if f.info != nil {
				later(f.info.ModTime())
			}
		}
	}
	if ms := ri.tail(ri.segments[len(ri.segments)-1], true).lastTime; ms > 0 {
		later(time.UnixMilli(ms))
	}
	return t, !t.IsZero()
}

// ListingCount is how many runs of exp the run folders hold, from the
// folder index that Runs and RunHeaders read before their first run (a
// directory walk, no run's files); ok is false when the index cannot be
// read. See sources.ListingCounter.
func (s *Source) ListingCount(ctx context.Context, exp schema.Ref, _ sources.RunFilter) (int64, bool) {
	runs, err := s.index(ctx)
	if err != nil {
		return 0, false
	}
	var n int64
	for _, ri := range runs {
		if ri.exp == exp {
			n++
		}
	}
	return n, true
}
