package main

import "github.com/runferry/runferry/engine/transfer"

// The exit codes of runferry: every one is decided here, in the command
// (the engine judges a job with a transfer.Verdict). The root help and
// README.md list them.
const (
	exitOK          = 0
	exitFatal       = 1
	exitUsage       = 2
	exitRunsFailed  = 3
	exitDifferences = 4 // check found differences, archive check found damage, mapping check found problems
	exitInterrupted = 130
)

// verdictExit maps the engine's verdict on a job to the exit code.
func verdictExit(v transfer.Verdict) int {
	switch v {
	case transfer.VerdictRunsFailed:
		return exitRunsFailed
	case transfer.VerdictFatal:
		return exitFatal
	case transfer.VerdictInterrupted:
		return exitInterrupted
	}
	return exitOK
}
