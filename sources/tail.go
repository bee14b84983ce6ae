package sources

import (
	"context"
	"errors"
	"iter"

	"github.com/runferry/runferry/schema"
)

// HeldKey is what a destination holds of one metric key of a run, as the
// engine's ledger recorded it at the last commit: the step and time (Unix
// milliseconds) of the key's last point.
type HeldKey struct {
	LastStep, LastTime int64
}

// ErrTailChanged says a run's history no longer continues what the
// destination holds (sources.TailReader): a held point is gone or was
// rewritten, or the run gained what a tail read cannot carry. The engine
// then reads the run whole and writes it whole.
var ErrTailChanged = errors.New("history changed before the held tail")

// TailReader is a source whose runs' histories grow only by whole steps
// at their end (W&B's history rows), and that can read a run's history
// from a step on without reading what came before (a remote API that pages
// history by step: the W&B cloud). When a grown run is appended to, the
// engine asks it for only what the destination does not hold yet, so that
// the points copied earlier are neither requested nor read again.
//
// Contract: MetricsTail yields, in pages as Metrics would and in the same
// order within a key, every point of the run's history that held does not
// cover: for a key in held, its points after its point at held LastStep;
// for any other key, all of its points. It may yield too, for a key in
// held, the point at its held LastStep, which the engine compares with the
// held time (and does not write); never a point of such a key before it.
// ok is false, with nothing read, when the source cannot read the run's
// tail (the engine then reads Metrics, whole): for one, a run whose
// history holds non-numeric values, which are written whole at every
// append (RichValues) and so need the whole history read anyway. After a
// complete MetricsTail, RichValues of the run yields what the run holds
// (nothing, for a run MetricsTail read). An error wrapping ErrTailChanged
// says the history does not continue what held describes.
type TailReader interface {
	MetricsTail(ctx context.Context, run schema.Ref, held map[string]HeldKey) (pages iter.Seq2[[]schema.Metric, error], ok bool)
}
