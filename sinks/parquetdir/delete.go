package parquetdir

import (
	"context"
	"fmt"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.RunDeleter = (*Sink)(nil)

// DeleteRun writes the tombstone of the run with origin, deleted at the
// source (sync --propagate-deletes): the run leaves the archive's current
// state in the next snapshot (archive.Writer.RetireRun), so the archive
// source, the table globs and current.sql no longer see it, while its
// files stay under history/ for the earlier snapshots until `archive
// prune`. held is false when the archive does not hold the run.
func (s *Sink) DeleteRun(_ context.Context, origin schema.Ref, _ string) (held bool, err error) {
	if _, ok := s.committed(origin); !ok {
		return false, nil
	}
	w, err := s.writer()
	if err != nil {
		return false, err
	}
	held, err = w.RetireRun(origin.String())
	if err != nil {
		return false, fmt.Errorf("parquet sink: deleting run %s: %w", origin, err)
	}
	return held, nil
}
