//go:build !unix

package main

import "os"

// flockExclusive does not lock where flock is missing: two runs of one
// job at once are not held back there.
func flockExclusive(*os.File) (held bool, err error) { return false, nil }

// funlock does nothing where flock is missing.
func funlock(*os.File) {}
