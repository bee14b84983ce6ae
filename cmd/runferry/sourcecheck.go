package main

import (
	"context"
	"fmt"

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
