package main

import (
	"fmt"
	"strings"
)

// includeDeleted gives the source location raw with deleted=true among its
// options, for --include-deleted: the sources that hold deleted
// experiments and runs (MLflow's) take that option, and one meaning is
// kept for the flag and the option. A source without the option is a
// usage error naming the flag; a location that says deleted=false
// contradicts the flag.
func (a *app) includeDeleted(raw string) (string, error) {
	loc, err := a.sources.Parse(raw)
	if err != nil {
		return raw, nil // openSource reports it
	}
	switch v := loc.Query("deleted"); v {
	case "true":
		return raw, nil
	case "":
	default:
		return "", usageError{fmt.Errorf("--include-deleted: the source location says deleted=%s", v)}
	}
	sep := "?"
	if strings.Contains(raw, "?") {
		sep = "&"
	}
	with := raw + sep + "deleted=true"
	if _, err := a.sources.Parse(with); err != nil {
		return "", usageError{fmt.Errorf("--include-deleted: source %w", err)}
	}
	return with, nil
}
