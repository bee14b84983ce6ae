package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// checkReportPath makes sure that --report FILE can be written before a
// job starts: its folder exists (created, as the ledger's folder is, when
// it does not: `--report .runferry/last-report.json` beside the default
// --state works on a first run) and a file can be created there (the
// report is written beside FILE first, then renamed onto it). A report
// that could not be written at the end would turn a job that committed
// everything into exit 1, after all its work; refused here, it is a usage
// error (exit 2) that names FILE, before anything is read or written. ""
// (no report) is accepted.
func checkReportPath(path string) error {
	if path == "" {
		return nil
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageError{fmt.Errorf("--report %s: is a folder; give the file to write the report to", path)}
	}
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return usageError{fmt.Errorf("--report %s: cannot create the folder %s: %w", path, dir, errors.Unwrap(err))}
		}
		fi, err = os.Stat(dir)
	}
	switch {
	case err != nil:
		return usageError{fmt.Errorf("--report %s: %w", path, err)}
	case !fi.IsDir():
		return usageError{fmt.Errorf("--report %s: %s is not a folder", path, dir)}
	}
	f, err := os.CreateTemp(dir, ".runferry-report-*")
	if err != nil {
		return usageError{fmt.Errorf("--report %s: cannot write in %s: %w", path, dir, errors.Unwrap(err))}
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
