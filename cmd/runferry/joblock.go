package main

import (
	"errors"
	"fmt"
	"os"
)

// errJobRunning is what lockJob returns while another process runs the
// same job (the same SRC, DST and options, with the same ledger).
var errJobRunning = errors.New("another copy or sync of the same SRC, DST and options is running")

// lockJob takes the lock of one job of the ledger at statePath, a file
// beside the ledger named by the job's key, held until release is called
// (or the process ends: the kernel drops it, so a killed job leaves no
// stale lock). While another process holds it, lockJob fails at once with
// errJobRunning and the lock file's path, before anything is planned or
// written: two runs of one nightly job at once (a cron entry that fires
// while the last one still runs) would otherwise both read and write every
// changed run. Jobs with other SRC, DST or options, and shards (each with
// its own ledger), are not held back.
func lockJob(statePath, key string) (release func(), err error) {
	path := statePath + ".job-" + key + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	held, err := flockExclusive(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("state %s: %w", path, err)
	}
	if held {
		f.Close()
		return nil, fmt.Errorf("%w (it holds %s); this one stopped before copying anything: run it again once that one ended, or give it another --state", errJobRunning, path)
	}
	return func() { funlock(f); f.Close() }, nil
}
