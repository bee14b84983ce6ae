package wandbdir

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// PageSize is the number of points, lines or values in one yielded page.
const PageSize = 10000

// Source reads W&B run folders. Run folders are found on first use and the
// list is kept until Close; run content is read anew on every call, streamed
// from disk.
type Source struct {
	cfg Config
	// now is when the source was opened: runs without an exit record are
	// judged live or crashed against it, so one Source answers alike on
	// every call (a copy and its check agree).
	now time.Time

	mu       sync.Mutex
	runs     []*runInfo              // nil until discovered
	byRef    map[schema.Ref]*runInfo // the first run of each origin in runs
	problems []string                // what discovery could not read
	closed   bool
	// stopFinding cancels the discovery Open starts in the background
	// (nil for a Source made by New).
	stopFinding context.CancelFunc
	// captures are what Metrics passes kept for RichValues and Logs
	// (see onepass.go).
	captures captureSet
	// cache is the log cache of the job (idcache.go), nil without one;
	// written at Close.
	cache *logCache
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.ManifestLister  = (*Source)(nil)
	_ sources.LogReader       = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.Fingerprinter   = (*Source)(nil)
	_ sources.ProblemReporter = (*Source)(nil)
	_ sources.FormerOriginer  = (*Source)(nil)
)

// ErrClosed is returned by every method after Close.
var ErrClosed = errors.New("wandb source: closed")

// Open is the sources.Factory function for wandb: locations. A path that
// does not exist or is not a folder is a fatal error naming it. Open
// starts finding and identifying the run folders in the background, so
// that a command opening its destination meanwhile (a sync loading an
// archive's manifest and its ledger) overlaps the two; the first call that
// needs the runs waits for that discovery, and Close stops it. A discovery
// that failed is not kept: the first call runs it again and returns its
// error.
//
// When ctx carries a sources.InputCache naming the job's ledger, the
// source keeps a log cache beside it (idcache.go): an unchanged log's run
// record and tail are taken from it instead of read, and Close writes it.
func Open(ctx context.Context, loc location.Location) (sources.Source, error) {
	cfg, err := ParseConfig(loc)
	if err != nil {
		return nil, fault.Fatal(err)
	}
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	s.cache = newLogCache(sources.InputCacheOf(ctx), s.cfg.Root, s.now)
	bg, cancel := context.WithCancel(ctx)
	s.stopFinding = cancel
	go func() {
		defer cancel()
		s.index(bg)
	}()
	return s, nil
}

// New returns a source reading cfg.Root.
func New(cfg Config) (*Source, error) {
	abs, err := sources.LocalFolder("wandb", cfg.Root, "give a wandb/ folder or a run folder")
	if err != nil {
		return nil, err
	}
	cfg.Root = abs
	if cfg.CrashedAfter <= 0 {
		cfg.CrashedAfter = DefaultCrashedAfter
	}
	if cfg.ArtifactCache == "" {
		cfg.ArtifactCache = defaultArtifactCache()
	}
	return &Source{cfg: cfg, now: time.Now()}, nil
}

// index returns the runs, discovering them on first use.
func (s *Source) index(ctx context.Context) ([]*runInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fault.Fatal(ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.runs == nil {
		runs, problems, err := discover(ctx, s.cfg.Root, s.cfg.Entity, s.cache)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fault.Fatal(fmt.Errorf("wandb: %w", err))
		}
		s.runs, s.problems = runs, problems
		if s.runs == nil {
			s.runs = []*runInfo{}
		}
		s.byRef = make(map[schema.Ref]*runInfo, len(s.runs))
		for _, ri := range s.runs {
			if _, dup := s.byRef[ri.ref]; !dup {
				s.byRef[ri.ref] = ri
			}
		}
	}
	return s.runs, nil
}

// find returns the run with origin ref.
func (s *Source) find(ctx context.Context, ref schema.Ref) (*runInfo, error) {
	if _, err := s.index(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	ri := s.byRef[ref]
	s.mu.Unlock()
	if ri != nil {
		return ri, nil
	}
	return nil, fault.Permanent(fmt.Errorf("wandb: run %s not found under %s", ref, s.cfg.Root))
}

// FormerOrigins returns, for an experiment or run without an entity, the
// origin runferry gave it before such origins named their folder:
// PROJECT or PROJECT/RUN_ID.
func (s *Source) FormerOrigins(ref schema.Ref) []schema.Ref {
	if f, ok := formerOrigin(ref); ok {
		return []schema.Ref{f}
	}
	return nil
}

// Problems names, by path, what the walk for run folders could not read:
// folders it could not list, `.wandb` files it could not open, and run
// folders without a log (see runFolder). What a readable run lacks is in
// that run's Damage instead.
func (s *Source) Problems(ctx context.Context) []string {
	if _, err := s.index(ctx); err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.problems)
}

// Check proves the root is readable and holds at least one run folder.
func (s *Source) Check(ctx context.Context) error {
	_, err := s.index(ctx)
	return err
}

// Experiments yields one experiment per entity/project, sorted by origin.
// CreatedAt is the start of its earliest run.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		runs, err := s.index(ctx)
		if err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		byRef := map[schema.Ref]*schema.Experiment{}
		var order []schema.Ref
		for _, ri := range runs {
			e := byRef[ri.exp]
			if e == nil {
				e = &schema.Experiment{Origin: ri.exp, Name: ri.name, Tags: []schema.Tag{
					{Key: TagPrefix + "entity", Value: ri.entity}, {Key: TagPrefix + "project", Value: ri.project}}}
				byRef[ri.exp] = e
				order = append(order, ri.exp)
			}
			if st := ri.segments[0].start; !st.IsZero() && (e.CreatedAt.IsZero() || st.Before(e.CreatedAt)) {
				e.CreatedAt = st
			}
		}
		sortRefs(order)
		for _, ref := range order {
			if ctx.Err() != nil {
				yield(schema.Experiment{}, ctx.Err())
				return
			}
			e := *byRef[ref]
			if e.Tags[0].Value == "" {
				e.Tags = e.Tags[1:]
			}
			e.Canonicalize()
			if !yield(e, nil) {
				return
			}
		}
	}
}

// Runs yields the runs of exp ordered by start time, each read once in full
// to fold its config and summary and find its status, end and damage.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		runs, err := s.index(ctx)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		for _, ri := range runs {
			if ri.exp != exp {
				continue
			}
			if ctx.Err() != nil {
				yield(schema.Run{}, ctx.Err())
				return
			}
			r, err := readRun(ctx, ri, s.crashRule())
			if err != nil {
				yield(schema.Run{}, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// Metrics yields the run's history points and system metrics, PageSize at a
// time, in file order (steps never decrease within a key: see stepper).
// System metrics are keyed "system/<name>" and numbered 0, 1, 2... by
// sample, across the run's segments. A pass read to its end also keeps
// what the run's next RichValues and Logs calls yield, so that they need
// not read the logs again, and, for a run not read in full before (only
// its light header), the run in full for RunAfterStreams (see onepass.go).
func (s *Source) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		var c *passCapture
		var rp *runPass // the run's own pass, run beside this one
		if ri, err := s.find(ctx, run); err == nil {
			s.captures.drop(ri)
			if stamps, ok := stampLogs(ri); ok {
				c = &passCapture{stamps: stamps}
				if !ri.readInFull() {
					rp = newRunPass(ri)
				}
			}
		}
		stream(ctx, s, run, func(p *pager[schema.Metric]) (handler, func(*runInfo, []string) error) {
			var steps stepper
			var sample int64
			row := func(_ *segment, r wandbfile.RowValues, pts pointSource) error {
				if rp != nil {
					rp.row(r)
				}
				step, ok := steps.next(&r)
				if !ok {
					return nil
				}
				if c != nil && (len(r.Rich) > 0 || len(r.Bad) > 0) {
					_ = emitRich(r, step, c.addRich)
				}
				return appendPoints(p, pts, step, r.Time)
			}
			h := handler{
				stats: func(_ *segment, t time.Time, items []wandbfile.Value) error {
					defer func() { sample++ }()
					if c != nil {
						_ = emitSystemRich(items, sample, t, c.addRich)
					}
					if rp != nil {
						rp.stats(t)
					}
					return systemItems(items, true, func(key string, f float64, _ wandbfile.Value) error {
						return p.add(schema.Metric{Key: key, Value: f, Step: sample, Time: unixMillis(t)})
					})
				},
			}
			if c == nil {
				return aheadHandler(h, row), nil
			}
			h.record, h.kinds = c.record, consoleKind
			if rp != nil {
				// Every record is decoded, as readRun decodes them (its
				// damage notes count the undecodable ones).
				h.kinds = nil
				h.record = func(seg *segment, rec *wandbfile.Record) error {
					_ = c.record(seg, rec)
					return rp.record(seg, rec)
				}
				h.damage, h.corrupt, h.segmentEnd = rp.console.damage, rp.corrupt, rp.segmentEnd
			}
			return aheadHandler(h, row), func(ri *runInfo, damage []string) error {
				if rp != nil {
					r, err := rp.finish(ctx, damage, nil, s.crashRule())
					if err != nil {
						return err
					}
					c.run = &r
				}
				s.captures.keep(ri, c)
				return nil
			}
		})(yield)
	}
}

var _ sources.StreamedRunReader = (*Source)(nil)

// RunAfterStreams returns the run with origin ref in full, as Run does:
// from the run's last Metrics pass when that pass read the run's fields
// too (a run not read in full before it) and the logs are unchanged since
// (see onepass.go), else read now.
func (s *Source) RunAfterStreams(ctx context.Context, ref schema.Ref) (schema.Run, error) {
	ri, err := s.find(ctx, ref)
	if err != nil {
		return schema.Run{}, err
	}
	if r, ok := s.captures.takeRun(ri); ok {
		return r, nil
	}
	return readRun(ctx, ri, s.crashRule())
}

// RichValues yields the run's non-numeric history values (strings, lists,
// media) in step order, and non-numeric system-metric items: from what the
// run's last Metrics pass kept when it can (see onepass.go), else read
// from the logs.
func (s *Source) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	return func(yield func([]schema.RichValue, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(nil, err)
			return
		}
		if kept, ok := s.captures.takeRich(ri); ok {
			replay(ctx, kept, yield)
			return
		}
		stream(ctx, s, run, func(p *pager[schema.RichValue]) (handler, func(*runInfo, []string) error) {
			var steps stepper
			conv := newConverter()
			var sample int64
			return handler{
				history: func(_ *segment, h histRow) error {
					// A row of numbers holds no rich value; only its step counts.
					r := h.convert(conv, false)
					step, ok := steps.next(&r)
					if !ok {
						return nil
					}
					return emitRich(r, step, p.add)
				},
				stats: func(_ *segment, t time.Time, items []wandbfile.Value) error {
					defer func() { sample++ }()
					return emitSystemRich(items, sample, t, p.add)
				},
			}, nil
		})(yield)
	}
}

// replay yields kept values in pages of PageSize, as stream would have
// (the pages are parts of kept: a capture is used once).
func replay[T any](ctx context.Context, kept []T, yield func([]T, error) bool) {
	for len(kept) > 0 {
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		n := min(len(kept), PageSize)
		if !yield(kept[:n:n], nil) {
			return
		}
		kept = kept[n:]
	}
}

// consoleOut splits a run's console chunks into lines, per stream, and
// adds them to a pager; failed is the pager's first error.
type consoleOut struct {
	p         *pager[schema.LogLine]
	failed    error
	splitters map[string]*lineSplitter
}

func newConsoleOut(p *pager[schema.LogLine]) *consoleOut {
	return &consoleOut{p: p, splitters: map[string]*lineSplitter{}}
}

func (o *consoleOut) out(l schema.LogLine) {
	if o.failed == nil {
		o.failed = o.p.add(l)
	}
}

// splitter returns the line splitter of stream.
func (o *consoleOut) splitter(stream string) *lineSplitter {
	if o.splitters[stream] == nil {
		o.splitters[stream] = &lineSplitter{stream: stream, out: o.out}
	}
	return o.splitters[stream]
}

// write adds one console chunk.
func (o *consoleOut) write(ch consoleChunk) error {
	o.splitter(ch.stream).write(ch.text, ch.time)
	return o.failed
}

// segmentEnd ends segment seg: its lines come from its output.log when
// fromFile, else its unfinished lines are flushed.
func (o *consoleOut) segmentEnd(ctx context.Context, seg *segment, fromFile bool) error {
	if fromFile {
		return readOutputLog(ctx, seg, o.splitter(schema.Stdout), func() error { return o.failed })
	}
	for _, st := range []string{schema.Stdout, schema.Stderr} {
		if sp := o.splitters[st]; sp != nil {
			sp.flush()
		}
	}
	return o.failed
}

// Logs yields the run's console output, line by line, segment by segment:
// from the output and output_raw records of its `.wandb` files, or from a
// segment's files/output.log (all lines then count as stdout, time
// unknown) when the run's logs hold no console record at all, or when the
// segment's log is damaged and output.log holds more lines (see
// consoleCounter.plan; Run.Damage names that choice). The records come
// from what the run's last Metrics pass kept when it can (see onepass.go),
// else from the logs.
func (s *Source) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return func(yield func([]schema.LogLine, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(nil, err)
			return
		}
		plan, err := ri.consolePlan(ctx)
		if err != nil {
			yield(nil, err)
			return
		}
		fromFile := map[*segment]bool{}
		for i, seg := range ri.segments {
			fromFile[seg] = plan.fromFile[i]
		}
		if kept, ok := s.captures.takeConsole(ri); ok {
			replayConsole(ctx, ri, kept, fromFile, yield)
			return
		}
		stream(ctx, s, run, func(p *pager[schema.LogLine]) (handler, func(*runInfo, []string) error) {
			o := newConsoleOut(p)
			return handler{
				record: func(seg *segment, rec *wandbfile.Record) error {
					if fromFile[seg] {
						return nil
					}
					if ch, ok := chunkOf(seg, rec); ok {
						return o.write(ch)
					}
					return nil
				},
				segmentEnd: func(seg *segment) error {
					return o.segmentEnd(ctx, seg, fromFile[seg])
				},
			}, nil
		})(yield)
	}
}

// replayConsole yields the lines of kept, the console chunks of the run's
// segments in log order, as Logs's pass over the logs yields them.
func replayConsole(ctx context.Context, ri *runInfo, kept []consoleChunk, fromFile map[*segment]bool, yield func([]schema.LogLine, error) bool) {
	p := &pager[schema.LogLine]{yield: yield}
	o := newConsoleOut(p)
	err := func() error {
		for _, seg := range ri.segments {
			if err := ctx.Err(); err != nil {
				return err
			}
			for n := 0; len(kept) > 0 && kept[0].seg == seg; n++ {
				if n%ctxCheckEvery == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				if !fromFile[seg] {
					if err := o.write(kept[0]); err != nil {
						return err
					}
				}
				kept = kept[1:]
			}
			if err := o.segmentEnd(ctx, seg, fromFile[seg]); err != nil {
				return err
			}
		}
		return nil
	}()
	switch {
	case errors.Is(err, errStop):
	case err != nil:
		yield(nil, err)
	case len(p.page) > 0:
		yield(p.page, nil)
	}
}

// Artifacts yields the run's files sorted by path, each hashed (SHA-256)
// as it is yielded. Files that cannot be read come with a Problem; an
// unreadable folder yields nothing (the run's Damage names it). Among them
// are the artifact versions the run logged (see artifactFiles): each
// entry's content under wandb-artifacts/<name>/<version or digest>/, with
// a Problem when it was not found, and the version's manifest.json.
func (s *Source) Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		files, err := listFiles(ri, false)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		recs, err := ri.artifactRecords(ctx)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		find, err := newFinder(ri, s.cfg.ArtifactCache)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		carried, err := artifactFiles(ctx, recs, find)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		taken := map[string]bool{}
		for _, f := range files {
			taken[f.path] = true
		}
		for _, f := range files {
			if ctx.Err() != nil {
				yield(schema.Artifact{}, ctx.Err())
				return
			}
			for len(carried) > 0 && carried[0].Path < f.path {
				if !yield(carried[0], nil) {
					return
				}
				carried = carried[1:]
			}
			if f.folder {
				continue // not a file: named in the run's Damage
			}
			a, err := f.artifact(ctx)
			if err != nil {
				yield(schema.Artifact{}, err)
				return
			}
			if !yield(a, nil) {
				return
			}
			for len(carried) > 0 && carried[0].Path == f.path {
				// A run file already has the path: it wins.
				carried = carried[1:]
			}
		}
		for _, a := range carried {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// Manifests yields the artifact versions the run logged (offline
// log_artifact records; version "" as the server assigns it on sync, so
// their folder is named by digest), then those it used (use_artifact
// records of runs that were online; no entries).
func (s *Source) Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error] {
	return func(yield func(schema.ArtifactManifest, error) bool) {
		ri, err := s.find(ctx, run)
		if err != nil {
			yield(schema.ArtifactManifest{}, err)
			return
		}
		recs, err := ri.artifactRecords(ctx)
		if err != nil {
			yield(schema.ArtifactManifest{}, err)
			return
		}
		logged, used := recs.versions()
		for _, v := range logged {
			if !yield(v.manifest, nil) {
				return
			}
		}
		for _, m := range used {
			if !yield(m, nil) {
				return
			}
		}
	}
}

// Fingerprint hashes the sizes and modification times of the run's files
// (see fingerprint): equal fingerprints mean nothing was written since. It
// reads no more than the run's light header (see header.go), whatever run
// holds beyond its Origin, so a header and its full run have one
// fingerprint and a sync's plan decodes no history. A run the header judges
// crashed (wandb.state=crashed) hashes that too, so a run copied while live
// is copied again once its silence makes it crashed.
//
// Content of a logged artifact version that was missing when the run was
// copied and turns up later (in the W&B artifact cache) without any of the
// run's files changing does not change the fingerprint: telling would need
// the whole log read. sync --force compares the files and copies it.
func (s *Source) Fingerprint(ctx context.Context, run schema.Run) (string, error) {
	ri, err := s.find(ctx, run.Origin)
	if err != nil {
		return "", err
	}
	return fingerprint(ri, s.crashed(ri))
}

// crashed reports whether the run's header calls it crashed. A run whose
// last log ends with a complete exit record, or with a preempting record
// and no exit, is not; only for the others is the header built (it reads
// wandb-metadata.json), as runState decides.
func (s *Source) crashed(ri *runInfo) bool {
	last := ri.segments[len(ri.segments)-1]
	if last.wandbFile != "" {
		if ri.tail(last, false).exitDecides() {
			return false
		}
	}
	h := s.header(ri)
	return slices.Contains(h.Tags, schema.Tag{Key: TagPrefix + "state", Value: stateCrashed})
}

// crashRule is the rule for runs without an exit record.
func (s *Source) crashRule() crashRule {
	return crashRule{now: s.now, after: s.cfg.CrashedAfter}
}

// Close makes every later call fail with ErrClosed. A source with a log
// cache writes it first, from the runs it found (once; a source whose
// discovery did not finish writes none). A cache that cannot be written
// is not an error of the job: the next job reads the logs again.
func (s *Source) Close() error {
	if s.stopFinding != nil {
		s.stopFinding()
	}
	s.captures.clear()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.runs != nil {
		_ = s.cache.save(s.runs)
	}
	s.closed = true
	return nil
}

// joinPath joins an item's key path with "/".
func joinPath(path []string) string {
	if len(path) == 1 {
		return path[0]
	}
	out := path[0]
	for _, p := range path[1:] {
		out += "/" + p
	}
	return out
}

// sortRefs sorts refs by ID.
func sortRefs(refs []schema.Ref) {
	slices.SortFunc(refs, func(a, b schema.Ref) int { return strings.Compare(a.ID, b.ID) })
}

// systemItems calls fn for each parsed item of a stats record that is
// numeric (numeric true) or not (numeric false), with its key under
// SystemPrefix. Items whose value did not parse or that have no key are
// skipped. It stops at fn's first error.
func systemItems(items []wandbfile.Value, numeric bool, fn func(key string, f float64, it wandbfile.Value) error) error {
	for _, it := range items {
		if it.Err != nil || len(it.Path) == 0 {
			continue
		}
		if f, ok := wandbfile.ValueFloat(it.Value); ok == numeric {
			if err := fn(SystemPrefix+joinPath(it.Path), f, it); err != nil {
				return err
			}
		}
	}
	return nil
}
