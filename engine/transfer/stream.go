package transfer

import (
	"context"
	"iter"
	"sync"
	"time"

	"github.com/runferry/runferry/schema"
)

// streams reports whether the job transfers runs while it plans: the first
// runs decided are written while later ones are still listed (a W&B cloud
// project's listing pages, an MLflow server's run pages), instead of after
// the whole plan. A dry run plans first (it counts from the whole plan),
// as does a job with Options.Verify (--force, --lookback: Verify reads the
// destination while deciding, one run at a time).
//
// What a streamed job reports is what a planned-first job reports: the
// runs the plan skipped first, in listing order, then the transferred runs
// as they end; the same EventPlanned (the runs to transfer, those up to
// date, their points and bytes), sent when the plan has ended, which may
// be after some runs' events (progress totals are then known only from
// that moment; the plan keeps at most about queueLimit + planBatch runs
// ahead of the transfer, so in a job of many runs that moment is near
// its end). The differences: a fatal listing error ends the job after
// the runs already started end (they are committed and recorded as usual;
// those handed to the transfer but not started are reported interrupted),
// and an interruption or a fatal error in a run names the runs listed so
// far, not those the listing had not reached.
func (j *job) streams() bool {
	return !j.opt.DryRun && j.opt.Verify == nil
}

// runQueue hands the plan's runs to the transfer, in listing order, as the
// plan decides them. It holds at most queueLimit runs before add waits for
// the transfer to take some: a planned run holds its listed metadata
// (config, summary, tags: a few KB), and a listing faster than the
// transfer (a W&B cloud project's pages of 50 runs against runs of
// thousands of points) would otherwise hold every run of the job until
// the transfer reached it (2.7 KB a run, 80 MB at 30,000 runs). The plan
// is thus never more than about queueLimit + planBatch runs ahead of the
// transfer.
type runQueue struct {
	mu   sync.Mutex
	runs []planned
	done bool // the plan has ended
	// failed is set when the plan ended with an error: no queued run is
	// taken any more.
	failed bool
	wake   chan struct{} // signalled when runs are added or the plan ends
	room   chan struct{} // signalled when a run is taken
}

// queueLimit is how many planned runs the queue holds before the plan
// waits: enough to keep every worker supplied while the next batch is
// decided (planBatch), so that bounding the plan costs the transfer no
// wait.
const queueLimit = planBatch

func newRunQueue() *runQueue {
	return &runQueue{wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
}

func (q *runQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// add queues runs, in order, once the queue holds fewer than queueLimit
// runs, waiting for the transfer to take them; when ctx ends (the plan is
// stopped) it queues them at once, to be reported interrupted (rest).
func (q *runQueue) add(ctx context.Context, runs []planned) {
	for {
		q.mu.Lock()
		if len(q.runs) < queueLimit || q.done || ctx.Err() != nil {
			q.runs = append(q.runs, runs...)
			q.mu.Unlock()
			q.signal()
			return
		}
		q.mu.Unlock()
		select {
		case <-q.room:
		case <-ctx.Done():
		}
	}
}

// end says the plan gave its last run; failed, that it ended with an
// error.
func (q *runQueue) end(failed bool) {
	q.mu.Lock()
	q.done, q.failed = true, failed
	q.mu.Unlock()
	q.signal()
}

// next returns the next queued run, waiting for the plan to give one; ok
// is false when the plan has ended and every run was taken, when the plan
// failed, or when ctx ended first.
func (q *runQueue) next(ctx context.Context) (p planned, ok bool) {
	for {
		q.mu.Lock()
		if q.failed {
			q.mu.Unlock()
			return planned{}, false
		}
		if len(q.runs) > 0 {
			p = q.runs[0]
			q.runs[0] = planned{}
			q.runs = q.runs[1:]
			q.mu.Unlock()
			select {
			case q.room <- struct{}{}:
			default:
			}
			return p, true
		}
		done := q.done
		q.mu.Unlock()
		if done {
			return planned{}, false
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return planned{}, false
		}
	}
}

// rest takes every run still queued.
func (q *runQueue) rest() []planned {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.runs
	q.runs = nil
	return out
}

// planAndTransfer plans the job in one goroutine and transfers the runs
// it gives, as it gives them, with up to Concurrency in flight (see
// streams); *plannedAt is set when the plan has ended. Only fatal errors
// and cancellation end it early; run failures go into the report.
func (j *job) planAndTransfer(ctx context.Context, plannedAt *time.Time) error {
	j.streamed = true
	q := newRunQueue()
	pctx, stopPlan := context.WithCancel(ctx)
	defer stopPlan()
	var planErr error
	planDone := make(chan struct{})
	go func() {
		defer close(planDone)
		defer func() { q.end(planErr != nil) }()
		var sz runSizes
		idle, err := j.plan(pctx, func(kept []planned) {
			for _, p := range kept {
				sz.add(pctx, j.src, p)
			}
			q.add(pctx, kept)
		})
		if err != nil {
			planErr = err
			return
		}
		*plannedAt = time.Now().UTC()
		j.mu.Lock()
		skipped := j.planN
		j.mu.Unlock()
		j.opt.Observer(Event{Kind: EventPlanned, Runs: j.emitted, Skipped: skipped, TotalPoints: sz.points, TotalBytes: sz.bytes})
		planErr = j.putIdle(pctx, idle)
	}()

	pool := j.newRunPool(ctx)
	for {
		p, ok := q.next(pool.ctx)
		if !ok {
			break
		}
		pool.start(p)
	}
	if pool.ctx.Err() != nil {
		// A run's fatal error or the job's interruption: the plan stops,
		// and the runs it had given are not started.
		stopPlan()
	}
	<-planDone
	if planErr != nil || pool.ctx.Err() != nil {
		for _, p := range q.rest() {
			j.interrupted(p)
		}
	}
	err := pool.wait(ctx)
	if err == nil && planErr != nil {
		err = planErr
	}
	j.rep.Warnings = j.opt.Filter.Unmatched()
	return err
}

// eager lists runs on a goroutine of its own, a few ahead, and yields them
// in order; whenever the next run is not listed yet (the listing waits for
// its next page), it calls idle first. The plan decides and hands on the
// runs listed so far in idle, so that the transfer does not wait for a
// batch to fill. Stopping early waits for the listing's goroutine to see
// the stop at its next run.
func eager(runs iter.Seq2[schema.Run, error], idle func()) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		type item struct {
			run schema.Run
			err error
		}
		ch := make(chan item, 64)
		stop := make(chan struct{})
		go func() {
			defer close(ch)
			for r, err := range runs {
				select {
				case ch <- item{r, err}:
				case <-stop:
					return
				}
			}
		}()
		defer func() {
			close(stop)
			for range ch {
			}
		}()
		for {
			var it item
			var ok bool
			select {
			case it, ok = <-ch:
			default:
				idle()
				it, ok = <-ch
			}
			if !ok || !yield(it.run, it.err) {
				return
			}
		}
	}
}
