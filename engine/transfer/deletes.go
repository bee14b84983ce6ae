package transfer

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// Ledger statuses of runs gone from the source (see deletes).
const (
	// statusGone marks a run reported deleted at the source and kept in
	// the destination.
	statusGone = "deleted at source"
	// statusDeleted marks a run whose deletion was mirrored in the
	// destination (--propagate-deletes).
	statusDeleted = "deleted"
)

// DeletedRun is the report entry of a run deleted at the source: one a
// previous job committed (the ledger says so) that the source no longer
// lists.
type DeletedRun struct {
	Origin string `json:"origin"`
	Name   string `json:"name,omitempty"` // as recorded when it was committed
	DestID string `json:"dest_id,omitempty"`
	// Propagated is set when the deletion was mirrored in the destination
	// (--propagate-deletes); Error says why it could not be.
	Propagated bool   `json:"propagated,omitempty"`
	Error      string `json:"error,omitempty"`
}

// entryLister is a Ledger that can list its entries, one at a time,
// without their cursors (state.Ledger); the loop's body does not call the
// Ledger.
type entryLister interface {
	All() iter.Seq2[state.Entry, error]
}

// listed records that the plan saw the run with origin ref (under any
// selection), and its former origins, when the job has a ledger to find
// the runs deleted at the source in (see deletes).
func (j *job) listed(ref schema.Ref, former []schema.Ref) error {
	if _, ok := j.opt.Ledger.(entryLister); !ok {
		return nil
	}
	j.originsMu.Lock()
	defer j.originsMu.Unlock()
	for _, o := range append([]schema.Ref{ref}, former...) {
		if err := j.origins.list(o.String()); err != nil {
			return fault.Fatal(fmt.Errorf("noting the run %s listed: %w", o, err))
		}
	}
	return nil
}

// deletes finds the runs deleted at the source: runs the ledger holds as
// committed by an earlier job of the same source, sink and options (so
// the same selection) that the source listed no more. Each is reported
// once and marked in the ledger; with PropagateDeletes the sink mirrors
// the deletion (sinks.RunDeleter), and a run reported earlier but not
// mirrored then is mirrored now. Nothing is judged deleted when the
// listing was incomplete (a listing error, something the source could not
// read, an interruption): a warning says so. A failed deletion is a
// problem of the job.
func (j *job) deletes(ctx context.Context) error {
	lister, ok := j.opt.Ledger.(entryLister)
	if !ok {
		return nil // no ledger: nothing to compare the listing with
	}
	// The ledger's entries are read one at a time; only those gone are
	// kept (each is reported).
	var gone []state.Entry
	for e, err := range lister.All() {
		if err != nil {
			return fault.Fatal(fmt.Errorf("state: %w", err))
		}
		if !(e.Status == string(Committed) || e.Status == statusGone && j.opt.PropagateDeletes) {
			continue
		}
		j.originsMu.Lock()
		seen, err := j.origins.listed(e.Origin)
		j.originsMu.Unlock()
		if err != nil {
			return fault.Fatal(fmt.Errorf("the origins listed: %w", err))
		}
		if !seen {
			gone = append(gone, e)
		}
	}
	j.mu.Lock()
	incomplete := len(j.rep.Problems) > 0
	j.mu.Unlock()
	if len(gone) == 0 {
		return nil
	}
	if incomplete {
		j.rep.Warnings = append(j.rep.Warnings, fmt.Sprintf(
			"%d run(s) the ledger holds were not listed, but the listing was incomplete (see the problems): none is reported deleted at the source", len(gone)))
		return nil
	}
	deleter, _ := j.dst.(sinks.RunDeleter)
	if j.opt.PropagateDeletes && deleter == nil {
		j.addProblem("--propagate-deletes: the destination cannot delete runs; %d run(s) deleted at the source are kept", len(gone))
	}
	for _, e := range gone {
		if err := ctx.Err(); err != nil {
			return err
		}
		d := DeletedRun{Origin: e.Origin, Name: e.Name, DestID: e.DestID}
		status := statusGone
		if j.opt.PropagateDeletes && deleter != nil && !j.opt.DryRun {
			ref, ok := schema.ParseRef(e.Origin)
			if !ok {
				d.Error = "not an origin: " + e.Origin
			} else if _, err := deleter.DeleteRun(ctx, ref, e.DestID); err != nil {
				if k := fault.KindOf(err); k == fault.KindFatal || k == fault.KindCanceled {
					return err
				}
				d.Error = err.Error()
			} else {
				d.Propagated, status = true, statusDeleted
			}
			if d.Error != "" {
				j.addProblem("run %s (%s) deleted at the source: deleting its copy: %s", e.Origin, e.Name, d.Error)
			}
		}
		if !j.opt.DryRun && d.Error == "" {
			e.Status = status
			if err := j.opt.Ledger.Put(e); err != nil {
				return fault.Fatal(fmt.Errorf("state: %w", err))
			}
		}
		j.mu.Lock()
		j.rep.Deleted = append(j.rep.Deleted, d)
		j.mu.Unlock()
	}
	slices.SortFunc(j.rep.Deleted, func(a, b DeletedRun) int { return strings.Compare(a.Origin, b.Origin) })
	return nil
}
