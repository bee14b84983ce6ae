package check

import (
	"context"
	"fmt"
	"strings"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// RunVerifier compares single runs of a source with their copies in a
// destination, as Run does for every run: it is what `copy --force` and
// `sync --force` use to re-verify the runs their fingerprints call
// unchanged. It is not safe for concurrent use.
type RunVerifier struct {
	src, dst sources.Source
	opt      Options
	index    *destination
}

// NewRunVerifier lists the destination's experiments and runs once; Verify
// lists them again when a run is not among them (a copy the job restored
// at the destination since, sinks.CopyRestorer), once per such run.
func NewRunVerifier(ctx context.Context, src, dst sources.Source, opt Options) (*RunVerifier, error) {
	res := &Result{}
	index, err := res.indexDestination(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return &RunVerifier{src: src, dst: dst, opt: opt, index: index}, nil
}

// Verify compares the source run (of experiment exp) with its copy in the
// destination: metadata, params, tags, every metric key's count, steps,
// extremes and digest, console output, rich values and files by size and
// SHA-256, exactly as Run does. It returns the differences as one line ("" when
// the copy matches); a run the destination lacks or holds twice is a
// difference. Errors are those of reading either side.
func (v *RunVerifier) Verify(ctx context.Context, exp schema.Experiment, run schema.Run) (string, error) {
	res := &Result{}
	copies := v.index.runs[run.Origin]
	if len(copies) == 0 {
		index, err := res.indexDestination(ctx, v.dst)
		if err != nil {
			return "", fmt.Errorf("destination: %w", err)
		}
		v.index, copies = index, index.runs[run.Origin]
	}
	switch {
	case len(copies) == 0:
		return "missing in the destination", nil
	case len(copies) > 1:
		return fmt.Sprintf("held %d times in the destination", len(copies)), nil
	}
	want, got := run, copies[0]
	if exp.Deleted && v.index.deleted(got.Experiment) {
		want.Deleted, got.Deleted = true, true
	}
	opt := v.opt
	if len(opt.Transform) == 0 {
		opt.Transform = res.recordedTransform(ctx, v.dst, got.Origin)
	}
	if err := res.compareRun(ctx, v.src, v.dst, want, got, opt); err != nil {
		return "", err
	}
	var what []string
	for _, d := range res.Differences {
		d.Run = ""
		what = append(what, d.String())
	}
	return strings.Join(what, "; "), nil
}
