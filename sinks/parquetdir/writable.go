package parquetdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/fault"
)

// CheckWritable tells, before a job plans anything, whether this user may
// write the archive: for a local folder, the folder (or, before the first
// write creates it, the nearest folder above it that exists) and its lock
// file, when there is one, must be writable. It writes nothing (it asks the
// system, access(2)), so a job into an archive it cannot write stops at
// once with one line naming the file, instead of after the plan at the
// first run to write (a job with nothing to write would not notice at
// all). An archive in object storage is not checked (its permissions are
// the store's, known at the first write). A dry run does not call it.
func (s *Sink) CheckWritable() error {
	if archive.IsObjectStorage(s.path) {
		return nil
	}
	root, err := filepath.Abs(s.path)
	if err != nil {
		return nil
	}
	dir := root
	for {
		fi, err := os.Stat(dir)
		if err == nil {
			if !fi.IsDir() {
				return fault.Fatal(fmt.Errorf("%s is not a folder", dir))
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(dir) == dir {
			return nil // the first write says what is wrong
		}
		dir = filepath.Dir(dir)
	}
	paths := []string{dir}
	if lock := filepath.Join(dir, ".lock"); dir == root {
		if _, err := os.Stat(lock); err == nil {
			paths = append(paths, lock)
		}
	}
	for _, p := range paths {
		if err := writable(p); err != nil {
			return fault.Fatal(fmt.Errorf("this user may not write %s (%w): runferry writes the archive's files there; run it as a user who may, or give it write permission", p, err))
		}
	}
	return nil
}
