package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/sources"
)

// proveSource asks src, when it can tell (sources.Checker), to prove before
// anything is listed or compared that it is reachable, that its
// credentials are good and that what the location names exists, as copy
// and sync do before their plan: a W&B entity or project that does not
// exist is then an error naming it, never an empty listing or a check of
// nothing that passes. side is "source" or "destination"; the error names
// the side's location (redacted).
func proveSource(ctx context.Context, src sources.Source, side string, loc location.Location) error {
	c, ok := src.(sources.Checker)
	if !ok {
		return nil
	}
	if err := c.Check(ctx); err != nil {
		return sideError{msg: fmt.Sprintf("%s %s: %s", side, loc, err), err: err}
	}
	return nil
}

// logLockWaits logs, every archive.LockWaitEvery, a wait for a lock of an
// archive in object storage that another holder keeps: a writer killed
// while it held one blocks the next for up to archive.LockTTL (2 minutes),
// which without this line looked like a hang.
func logLockWaits(log *slog.Logger) {
	archive.OnLockWaiting(func(w archive.LockWaiting) {
		log.Warn("waiting for the archive's lock", "lock", w.Lock, "held_by", w.Holder,
			"renewed_ago", w.Renewed.Round(time.Second).String(), "broken_in", w.Expires.Round(time.Second).String(),
			"because", "a lock not renewed for "+archive.LockTTL.String()+" is a killed writer's")
	})
}
