package transfer

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// plan lists the selected runs and drops those the ledger or the sink
// already holds with the same fingerprint, reporting them as unchanged
// (in j.planRuns). It gives the runs to transfer to emit, in listing
// order, a batch at a time as they are decided, so that a job can start
// transferring the first runs while later ones are listed (emit is called
// from plan's goroutine only). It also returns the selected experiments
// none of whose runs is planned, so that they are written too (an
// experiment without runs is data as well). Listing errors are fatal
// unless classified permanent, in which case the experiment is reported
// and skipped. What the source could not read outside any run
// (sources.ProblemReporter) is reported as problems.
func (j *job) plan(ctx context.Context, emit func([]planned)) ([]schema.Experiment, error) {
	var idle []schema.Experiment
	finder, _ := j.dst.(sinks.RunFinder)
	verifier, _ := j.dst.(sinks.RunVerifier)
	// A first job (a ledger that has never seen this job) reads every run
	// it lists, but those the sink already holds.
	if er, ok := j.src.(sources.EveryRunReader); ok && j.opt.Ledger != nil && j.opt.LastStart.IsZero() {
		er.ReadsEveryRun()
	}
	for e, err := range j.src.Experiments(ctx) {
		if err != nil {
			return nil, fmt.Errorf("listing experiments: %w", err)
		}
		if !j.opt.Filter.Experiment(e) {
			continue
		}
		if dup, err := j.sameOrigin("experiment", e.Origin.String(), strconv.Quote(e.Name)); err != nil || dup {
			if err != nil {
				return nil, err
			}
			continue
		}
		j.formerOrigins(e.Origin)
		j.exps = append(j.exps, e)
		before, selected := j.emitted, 0
		runs, light := listRuns(ctx, j.src, e.Origin, j.opt.Filter, j.opt.Verify == nil || j.opt.Lookback > 0)
		if j.streamed {
			j.listing.begin(ctx, j.src, e.Origin, j.opt.Filter)
			j.listingEvent()
		}
		// The runs listed are decided in batches, several at once (see
		// decideAll); what each batch keeps is appended in listing order.
		batch := make([]planned, 0, planBatch)
		flush := func() error {
			kept, err := j.decideAll(ctx, batch, finder, verifier)
			if len(kept) > 0 {
				j.emitted += len(kept)
				emit(kept)
			}
			if j.streamed && j.listing.listed != j.listing.told {
				j.listingEvent()
			}
			batch = batch[:0]
			return err
		}
		var listErr, idleErr error
		if j.streamed {
			// The runs listed so far are decided and handed on whenever
			// the listing waits (for its next page), not only when a
			// batch is full.
			runs = eager(runs, func() {
				if idleErr == nil {
					idleErr = flush()
				}
			})
		}
		for r, err := range runs {
			if idleErr != nil {
				return nil, idleErr
			}
			if err == nil {
				j.listing.listed++
			}
			if err != nil {
				if fault.KindOf(err) == fault.KindPermanent {
					// Reported after the runs listed before it.
					if ferr := flush(); ferr != nil {
						return nil, ferr
					}
					j.addProblem("experiment %s (%s): listing runs: %v", e.Name, e.Origin, err)
					break
				}
				listErr = fmt.Errorf("listing runs of experiment %s: %w", e.Origin, err)
				break
			}
			if !j.opt.Filter.Run(r) {
				j.release(r.Origin)
				continue
			}
			selected++
			if !j.opt.Shard.Holds(r.Origin.String()) {
				// Another shard's: not read, not counted as filtered.
				j.mu.Lock()
				j.rep.otherShards++
				j.mu.Unlock()
				j.release(r.Origin)
				continue
			}
			if dup, err := j.sameOrigin("run", r.Origin.String(), fmt.Sprintf("%q in experiment %s", r.Name, e.Name)); err != nil || dup {
				if err != nil {
					return nil, err
				}
				continue
			}
			p := planned{exp: e, run: r, reason: "new", former: j.formerOrigins(r.Origin), light: light}
			if err := j.listed(r.Origin, p.former); err != nil {
				return nil, err
			}
			batch = append(batch, p)
			if len(batch) == cap(batch) {
				if err := flush(); err != nil {
					return nil, err
				}
			}
		}
		if idleErr != nil {
			return nil, idleErr
		}
		if err := flush(); err != nil {
			return nil, err
		}
		if listErr != nil {
			return nil, listErr
		}
		if j.streamed {
			j.listing.end()
			j.listingEvent()
		}
		// An experiment none of whose selected runs this shard plans is
		// written here only if it has no selected run at all (a run of
		// another shard brings it there) and it falls in this shard, so
		// that N shards do not all write it. Runs selected by id or start
		// time (--run, --since, --until) bring their experiments: one
		// holding none of them is not written (restoring one run does not
		// create every experiment of the source, empty).
		if j.emitted == before && (selected > 0 || !j.opt.Filter.SelectsRuns()) &&
			(j.opt.Shard.IsZero() || selected == 0 && j.opt.Shard.Holds(e.Origin.String())) {
			idle = append(idle, e)
		}
	}
	if o, ok := j.src.(sources.Omitter); ok {
		j.mu.Lock()
		j.rep.omitted = map[string]int64{}
		for k, n := range o.Omitted(ctx) {
			j.rep.omitted["source: "+k] += n
		}
		j.mu.Unlock()
	}
	if pr, ok := j.src.(sources.ProblemReporter); ok {
		for _, p := range pr.Problems(ctx) {
			j.addProblem("source: %s", p)
		}
	}
	return idle, nil
}

// listingCount is what a streamed job's plan tells in EventListing of the
// runs listed: listed, the runs the listings yielded so far, before the
// job's filters; ended, those of the experiments whose listing has ended;
// told, listed when EventListing was last sent;
// and count, what the source said the current experiment's listing yields
// (sources.ListingCounter), known when known is set. Only the plan's
// goroutine uses it.
type listingCount struct {
	listed, ended int
	count         int64
	known         bool
	told          int // listed when EventListing was last sent
}

// begin starts the count of an experiment's listing, asking the source
// (sources.ListingCounter) how many runs it yields, with the filter
// listRuns gives the listing.
func (c *listingCount) begin(ctx context.Context, src sources.Source, exp schema.Ref, f Filter) {
	c.ended, c.count, c.known = c.listed, 0, false
	lc, ok := src.(sources.ListingCounter)
	if !ok {
		return
	}
	var rf sources.RunFilter
	if _, ok := src.(sources.RunFilterer); ok && (len(f.RunIDs) > 0 || !f.Since.IsZero() || !f.Until.IsZero()) {
		rf = sources.RunFilter{RunIDs: f.RunIDs, Since: f.Since, Until: f.Until}
	}
	c.count, c.known = lc.ListingCount(ctx, exp, rf)
}

// end ends the count of an experiment's listing: what it yielded is now
// known.
func (c *listingCount) end() {
	c.ended, c.count, c.known = c.listed, 0, true
}

// expected is the runs the listings begun so far yield in all, as far as
// known: those of the ended ones, and the source's count for the current
// one (never below what it has yielded so far); 0 when the current one's
// count is not known.
func (c *listingCount) expected() int {
	if !c.known {
		return 0
	}
	return max(c.ended+int(c.count), c.listed)
}

// listingEvent sends EventListing: the plan so far.
func (j *job) listingEvent() {
	j.mu.Lock()
	skipped := j.planN
	j.mu.Unlock()
	j.listing.told = j.listing.listed
	j.opt.Observer(Event{Kind: EventListing, Runs: j.emitted, Skipped: skipped, Listed: j.listing.listed, Expected: j.listing.expected()})
}

// planBatch is how many listed runs the plan decides at a time (see
// decideAll): enough to keep Concurrency goroutines busy, few enough that
// the headers waiting for a decision stay small.
const planBatch = 256

// decided is what deciding one run gave: the run to transfer (keep), the
// result of a run skipped as unchanged, a problem to report, or a fatal
// error.
type decided struct {
	keep    bool
	result  *RunResult
	problem string
	err     error
}

// decideAll decides the runs of batch (listed in this order) as the plan
// did one at a time, up to Concurrency at once: for each, decide, and
// readFull for a run to transfer. Results, problems and the runs kept are
// recorded in batch order, so the report is the same whatever the
// goroutines' timing. The first error in batch order is returned, after
// the outcomes of the runs before it; runs after a failed one are not
// started, and those already started are not recorded, as if the plan
// had stopped there.
func (j *job) decideAll(ctx context.Context, batch []planned, finder sinks.RunFinder, verifier sinks.RunVerifier) ([]planned, error) {
	if len(batch) == 0 {
		return nil, nil
	}
	res := make([]decided, len(batch))
	var failed atomic.Int64 // lowest index that failed; len(batch) while none
	failed.Store(int64(len(batch)))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	workers := min(j.opt.Concurrency, len(batch))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batch) || int64(i) > failed.Load() {
					return
				}
				res[i] = j.decideOne(ctx, &batch[i], finder, verifier)
				if res[i].err != nil {
					for {
						f := failed.Load()
						if int64(i) >= f || failed.CompareAndSwap(f, int64(i)) {
							break
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	var kept []planned
	for i := range batch {
		d := res[i]
		if d.result != nil {
			j.addPlanResult(*d.result)
		}
		if d.problem != "" {
			j.addProblem("%s", d.problem)
		}
		if d.err != nil {
			return kept, d.err
		}
		if d.keep {
			kept = append(kept, batch[i])
		} else {
			j.release(batch[i].run.Origin)
		}
	}
	return kept, nil
}

// decideOne decides run p: whether it is skipped (decide) and, if not,
// reads it in full.
func (j *job) decideOne(ctx context.Context, p *planned, finder sinks.RunFinder, verifier sinks.RunVerifier) decided {
	skip, result, err := j.decide(ctx, p, finder, verifier)
	if err != nil || skip {
		return decided{result: result, err: err}
	}
	// Only a run the job transfers is read in full, and one the sink takes
	// late only after its streams (see lateRun).
	if j.lateRun(p) {
		return decided{keep: j.opt.Filter.Run(p.run)}
	}
	if err := j.readFull(ctx, p); err != nil {
		if fault.KindOf(err) == fault.KindPermanent {
			return decided{problem: fmt.Sprintf("run %s (%s): reading it: %v", p.run.Name, p.run.Origin, err)}
		}
		return decided{err: fmt.Errorf("reading run %s: %w", p.run.Origin, err)}
	}
	// A run its header's start put in the selection may be out of it.
	return decided{keep: j.opt.Filter.Run(p.run)}
}

// listRuns lists the runs of experiment exp, narrowed by the source when
// it can (sources.RunFilterer); the caller still applies f to each run.
// When headers is set and the source lists light headers
// (sources.HeaderLister), it lists those and light is true: the caller
// reads in full (readFull) only the runs it transfers.
func listRuns(ctx context.Context, src sources.Source, exp schema.Ref, f Filter, headers bool) (runs iter.Seq2[schema.Run, error], light bool) {
	if rf, ok := src.(sources.RunFilterer); ok && (len(f.RunIDs) > 0 || !f.Since.IsZero() || !f.Until.IsZero()) {
		return rf.FilteredRuns(ctx, exp, sources.RunFilter{RunIDs: f.RunIDs, Since: f.Since, Until: f.Until}), false
	}
	if hl, ok := src.(sources.HeaderLister); ok && headers {
		return hl.RunHeaders(ctx, exp), true
	}
	return src.Runs(ctx, exp), false
}

// lateRun reports whether run p, listed by its light header, is written
// without being read in full first: opened with its header, and given in
// full (sources.StreamedRunReader) just before its commit
// (sinks.RunSetter), so that a source that learns the run's fields while
// its metrics are read reads its logs once. Only for a run written whole
// by a job that needs nothing of the full run before: no dry run (it
// counts from the run), no --force (Verify compares the full run), no
// --since/--until (the header's start decided the selection, and the
// full run is not filtered again), and a sink and source that both can.
func (j *job) lateRun(p *planned) bool {
	if !p.light || p.base != nil || j.opt.DryRun || j.opt.Verify != nil || !j.opt.Filter.Since.IsZero() || !j.opt.Filter.Until.IsZero() {
		return false
	}
	if _, ok := j.src.(sources.StreamedRunReader); !ok {
		return false
	}
	ls, ok := j.dst.(sinks.LateRunSink)
	return ok && ls.TakesRunsLate()
}

// readFull reads in full a run the plan listed by its light header
// (p.light), once.
func (j *job) readFull(ctx context.Context, p *planned) error {
	if !p.light {
		return nil
	}
	r, err := j.src.(sources.HeaderLister).Run(ctx, p.run.Origin)
	if err != nil {
		return err
	}
	p.run, p.light = r, false
	return nil
}

// recheck reports whether Verify compares the run p the fingerprints call
// unchanged: every run without a Lookback (--force), else a run whose
// change time (sources.ChangeTimer, else its start and end) is at or after
// LastStart minus Lookback, or unknown. With a Lookback and no LastStart
// (no previous sync recorded) it compares none.
func (j *job) recheck(ctx context.Context, p *planned) bool {
	if j.opt.Lookback <= 0 {
		return true
	}
	if j.opt.LastStart.IsZero() {
		return false
	}
	changed, ok := changedAt(ctx, j.src, p.run)
	return !ok || !changed.Before(j.opt.LastStart.Add(-j.opt.Lookback))
}

// changedAt is when run last changed: as the source tells
// (sources.ChangeTimer), else the later of its start and end.
func changedAt(ctx context.Context, src sources.Source, run schema.Run) (time.Time, bool) {
	if ct, ok := src.(sources.ChangeTimer); ok {
		return ct.ChangedAt(ctx, run)
	}
	t := run.Start
	if run.End.After(t) {
		t = run.End
	}
	return t, !t.IsZero()
}

// decide fills p.fingerprint and p.reason and reports whether the run can
// be skipped because it is already committed with the same content (and,
// when the sink can verify it, is still whole there: a run whose stored
// files were lost is written again, with the reason naming what was lost).
// A skipped run's result is returned for the caller to record. decide is
// called for several runs at once (see decideAll); Verify, which is not
// safe for concurrent use, is called one run at a time.
func (j *job) decide(ctx context.Context, p *planned, finder sinks.RunFinder, verifier sinks.RunVerifier) (skip bool, result *RunResult, err error) {
	skip, err = j.decideRun(ctx, p, finder, verifier, &result)
	return skip, result, err
}

// decideRun is decide, setting *result for a skipped run.
func (j *job) decideRun(ctx context.Context, p *planned, finder sinks.RunFinder, verifier sinks.RunVerifier, result **RunResult) (skip bool, err error) {
	fp, err := Fingerprint(ctx, j.src, p.run)
	if err != nil {
		if fault.KindOf(err) == fault.KindFatal || fault.KindOf(err) == fault.KindCanceled {
			return false, err
		}
		fp = "" // cannot tell: transfer again
	}
	// The transform is part of what was written: a later job without it
	// (or with another) finds the run changed and writes it whole.
	fp = j.opt.Transform.Fingerprint(fp)
	p.fingerprint = fp
	origin := p.run.Origin.String()
	// known is the ledger's entry of a run found unchanged by it: the
	// source's gaps it was copied with are reported again (the copy is
	// still incomplete) until the source changes.
	var known *state.Entry
	// A copy its destination shows deleted (by a user there) is not held:
	// it is restored first, keeping its id and content, then found
	// unchanged and verified, or appended to, as any other. Not when the
	// source deleted the run or its experiment: the copy is deleted on
	// purpose then.
	if cr, ok := j.dst.(sinks.CopyRestorer); ok && !p.run.Deleted && !p.exp.Deleted {
		what, err := cr.RestoreCopy(ctx, p.run.Origin, j.opt.DryRun)
		switch k := fault.KindOf(err); {
		case err != nil && k != fault.KindPermanent:
			return false, fmt.Errorf("sink: restoring run %s: %w", origin, err)
		case err == nil:
			p.restored = what // a permanent error: the worker meets it again and reports it
		}
	}
	restored := p.restored
	unchanged := func(destID, why string) (bool, error) {
		if verifier != nil {
			problem, err := verifier.VerifyRun(ctx, p.run.Origin)
			if err != nil {
				if fault.KindOf(err) == fault.KindPermanent {
					return false, nil // the worker will meet the same problem and report it
				}
				return false, fmt.Errorf("sink: verifying run %s: %w", origin, err)
			}
			if problem != "" {
				p.reason = "repairing: " + problem
				return false, nil
			}
		}
		outcome := Unchanged
		if j.opt.Verify != nil && j.recheck(ctx, p) {
			if err := j.readFull(ctx, p); err != nil {
				if k := fault.KindOf(err); k == fault.KindFatal || k == fault.KindCanceled {
					return false, err
				}
				p.reason = "repairing: could not read the run to verify it: " + err.Error()
				return false, nil
			}
			j.verifyMu.Lock()
			diff, err := j.opt.Verify(ctx, p.exp, p.run)
			j.verifyMu.Unlock()
			switch k := fault.KindOf(err); {
			case err != nil && (k == fault.KindFatal || k == fault.KindCanceled):
				return false, err
			case err != nil:
				p.reason = "repairing: could not verify against the destination: " + err.Error()
				return false, nil
			case diff != "":
				p.reason = "repairing: " + diff
				return false, nil
			}
			flag := "--force"
			if j.opt.Lookback > 0 {
				flag = fmt.Sprintf("--lookback: changed within %s of the previous sync's start", j.opt.Lookback)
			}
			outcome, why = Verified, why+"; verified against the destination ("+flag+")"
		}
		*result = &RunResult{Origin: origin, Experiment: p.exp.Name, Name: p.run.Name,
			Outcome: outcome, Reason: why, DestID: destID, Restored: restored}
		if restored != "" {
			(*result).Reason += "; deleted at the destination, restored: " + restored
			if j.opt.DryRun {
				(*result).Reason = why + "; deleted at the destination, would be restored: " + restored
			}
		}
		if known != nil && (len(known.Damage) > 0 || len(known.FileProblems) > 0) {
			(*result).Damage, (*result).FileProblem = known.Damage, known.FileProblems
			(*result).Reason += "; the copy is incomplete: the source's gaps recorded at its commit are named again"
		}
		if known != nil {
			(*result).InheritedDamage = known.InheritedDamage // named again, not a gap
			// Named as its copy holds it (the name recorded at its commit,
			// from the run read in full), not as a light header may tell
			// it (a W&B run renamed in the middle of a large log).
			(*result).Name = cmp.Or(known.Name, (*result).Name)
		}
		return true, nil
	}
	if j.opt.Ledger != nil {
		e, ok, err := j.ledgerEntry(origin, fp)
		if err != nil {
			return false, fault.Fatal(fmt.Errorf("state: %w", err))
		}
		if ok && e.Status == "committed" {
			if fp != "" && j.sameContent(ctx, p, e.Fingerprint, fp) {
				known = &e
				return unchanged(e.DestID, "committed earlier (ledger)")
			}
			p.reason = "changed since last transfer"
			// Committed under this origin, the copies under its former
			// origins were retired with that commit: the run's former
			// origins do not keep it from being appended to.
			if _, can := j.dst.(sinks.Appender); can && e.Mark != "" {
				// The worker appends what is new, or writes the run whole
				// when the source changed what was copied.
				p.base = &e
				p.reason = "changed since last transfer: appending"
			}
		} else if ok {
			p.reason = fmt.Sprintf("resuming (%s earlier)", e.Status)
			// An append that failed dropped the ledger's cursors; the sink
			// may still hold them with the copy it was extending.
			if err := j.baseFromSink(ctx, p, false); err != nil {
				return false, err
			}
		}
		for _, f := range p.former {
			if p.reason != "new" {
				break
			}
			fe, ok, err := j.opt.Ledger.Get(f.String())
			if err != nil {
				return false, fault.Fatal(fmt.Errorf("state: %w", err))
			}
			if !ok {
				continue
			}
			p.reason = underFormer(f)
			// The ledger recorded the copy under the former origin (by an
			// earlier runferry, whose origins were those): its cursors are
			// carried to the new origin, so that the sink re-keys and
			// extends that copy rather than writing the run again (a sink
			// that cannot refuses, and the run is written whole).
			if _, can := j.dst.(sinks.Appender); can && fe.Status == string(Committed) && fe.Mark != "" {
				fe.Origin = p.run.Origin.String()
				p.base, p.baseFormer = &fe, f
				p.reason = underFormerAppending(f)
			}
		}
	}
	if finder != nil && p.reason == "new" {
		st, have, err := finder.FindRun(ctx, p.run.Origin)
		if err != nil {
			if fault.KindOf(err) == fault.KindPermanent {
				return false, nil // the worker will meet the same problem and report it
			}
			return false, fmt.Errorf("sink: looking up run %s: %w", origin, err)
		}
		switch st {
		case sinks.RunComplete:
			if fp != "" && j.sameContent(ctx, p, have, fp) {
				return unchanged("", "committed earlier (found in sink)")
			}
			p.reason = "changed since last transfer"
			if err := j.baseFromSink(ctx, p, true); err != nil {
				return false, err
			}
		case sinks.RunIncomplete:
			p.reason = "resuming incomplete run"
			// An append cut short (by a job whose ledger did not record
			// the copy) is continued in place from the cursors the sink
			// keeps with the copy it extends, when it keeps them.
			if err := j.baseFromSink(ctx, p, false); err != nil {
				return false, err
			}
		case sinks.RunUnderFormerOrigin:
			p.reason = underFormer(schema.Ref{})
		}
	}
	return false, nil
}

// headLedger is a Ledger that also gives an entry without its cursors
// (state.Ledger.Head).
type headLedger interface {
	Head(origin string) (state.Entry, bool, error)
}

// ledgerEntry is the ledger's entry for origin, with its cursors, except
// for a run committed with fingerprint fp (then unchanged: the plan needs
// only its DestID) when the ledger can give the entry without them
// (headLedger): decoding every run's cursors was most of a no-change
// plan's ledger work.
// sameContent reports whether the run p, recorded with fingerprint have,
// is written as the fingerprint fp says (transform.SameFingerprint): when
// only the run's user can tell (a copy made under the former default
// drop-personal, which dropped it), the run is read whole for it (a light
// listing may not hold it); a run that cannot be read is called changed
// (the worker meets the error again and reports it).
func (j *job) sameContent(ctx context.Context, p *planned, have, fp string) bool {
	if have == fp {
		return true
	}
	if !transform.SameFingerprint(have, fp, schema.Run{}) {
		return false
	}
	if err := j.readFull(ctx, p); err != nil {
		return false
	}
	return transform.SameFingerprint(have, fp, p.run)
}

func (j *job) ledgerEntry(origin, fp string) (state.Entry, bool, error) {
	if h, ok := j.opt.Ledger.(headLedger); ok {
		e, found, err := h.Head(origin)
		if err != nil || !found || e.Status == string(Committed) && fp != "" && e.Fingerprint == fp {
			return e, found, err
		}
	}
	return j.opt.Ledger.Get(origin)
}

// formerOrigins returns the origins earlier runferry versions gave the
// experiment or run with origin ref (sources.FormerOriginer) and hands them
// to the sink (sinks.FormerOriginsSetter), which then finds and retires
// what it holds under them.
func (j *job) formerOrigins(ref schema.Ref) []schema.Ref {
	fo, ok := j.src.(sources.FormerOriginer)
	if !ok {
		return nil
	}
	former := fo.FormerOrigins(ref)
	if len(former) == 0 {
		return nil
	}
	if set, ok := j.dst.(sinks.FormerOriginsSetter); ok {
		set.SetFormerOrigins(ref, former)
	}
	return former
}

// underFormer is the plan's reason for a run held under a former origin
// (zero when the sink did not say which).
func underFormer(f schema.Ref) string {
	if f.IsZero() {
		return "held under its former origin: written again under the new one"
	}
	return fmt.Sprintf("held under its former origin %s: written again under the new one", f)
}

// underFormerAppending is the plan's reason for a run the ledger recorded
// under its former origin f, planned for appending.
func underFormerAppending(f schema.Ref) string {
	return fmt.Sprintf("held under its former origin %s: appending under the new one (cursors carried over)", f)
}

// cursorDoc is the cursors document a sink keeps with a commit
// (sinks.CursorKeeper): the mark and the per-key cursors it derives from.
type cursorDoc struct {
	Mark string            `json:"mark"`
	Keys []state.KeyCursor `json:"keys"`
}

// baseFromSink plans, without a ledger entry, an append to the copy the
// sink holds of p's run, from the cursors the sink kept with it
// (sinks.BaseFinder), when that can be proven safe: the document's mark
// must be the one derived from its cursors and the one the copy carries
// (the cursors' digests are then checked against the source as with a
// ledger). Otherwise the run is written whole, and the reason says why.
func (j *job) baseFromSink(ctx context.Context, p *planned, say bool) error {
	bf, ok := j.dst.(sinks.BaseFinder)
	if !ok {
		return nil
	}
	why := func(s string) {
		if say {
			p.reason += ", written whole: " + s
		}
	}
	destID, mark, doc, found, err := bf.FindBase(ctx, p.run.Origin)
	switch {
	case err != nil && (fault.KindOf(err) == fault.KindFatal || fault.KindOf(err) == fault.KindCanceled):
		return err
	case err != nil:
		why("the destination's record of the copy could not be read: " + err.Error())
		return nil
	case !found:
		why("no ledger, and the destination keeps no cursors of its copy")
		return nil
	}
	var d cursorDoc
	if err := json.Unmarshal(doc, &d); err != nil || d.Mark != mark || markOf(d.Keys) != mark {
		why("the cursors the destination keeps do not match its copy's mark")
		return nil
	}
	p.base = &state.Entry{Origin: p.run.Origin.String(), DestID: destID, Status: string(Committed), Mark: mark, Keys: d.Keys}
	if say {
		p.reason = "changed since last transfer: appending (cursors kept in the destination)"
	} else {
		p.reason += ": continuing the append (cursors kept in the destination)"
	}
	return nil
}

// sameOrigin reports whether an experiment or run (kind) with this origin
// was listed before in this job, naming it (what: its name, and a run's
// experiment) as a problem then: the destination finds experiments and
// runs by origin, so it would hold one of the two, whichever came last
// (an experiment's runs merged into the first's), and each sync would
// write the other over it. An MLflow server holding two copies runferry
// made of one W&B project (under two experiment prefixes:
// nlp6/Entity_Marker and restore/nlp6/Entity_Marker) lists two
// experiments, and two of each run, with the source's origins. A second
// experiment is not copied, nor are its runs.
func (j *job) sameOrigin(kind, origin, what string) (bool, error) {
	j.originsMu.Lock()
	before, dup, err := j.origins.name(kind+"\x00"+origin, what)
	j.originsMu.Unlock()
	if err != nil {
		return false, fault.Fatal(fmt.Errorf("noting the %s %s listed: %w", kind, origin, err))
	}
	if dup {
		nor := ""
		if kind == "experiment" {
			nor = ", nor its runs"
		}
		j.addProblem("%s %s (%s): not copied%s: the source lists another %s with the same origin (%s), and the destination can hold only one of them (--include or --exclude selects one)", kind, origin, what, nor, kind, before)
	}
	return dup, nil
}
