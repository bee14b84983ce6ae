// Package mlflowlocal holds what the readers of MLflow's own stores
// (sources/mlflowfile for mlruns/ folders, sources/mlflowsql for SQL
// stores) share in answering as a tracking server serving the store
// would: listing an artifact folder on this machine as MLflow's local
// artifact repository lists it, the check on a relative path taken from
// outside, MLflow's pick of a metric key's latest point and its view
// types.
package mlflowlocal

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// WalkFiles yields the files below root/dir, recursively in lexical
// order, with paths relative to root (slash-separated) and sizes. A
// symbolic link to a file is followed; one to a folder is not (MLflow's
// listing shows it empty). A missing root/dir holds no files. It stops
// when yield returns false; the error is the walk's (a folder or file
// that cannot be read, or ctx's end), for the caller to classify.
func WalkFiles(ctx context.Context, root, dir string, yield func(mlflowapi.FileInfo, error) bool) error {
	start := filepath.Join(root, filepath.FromSlash(dir))
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == start && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(p) // follows a symlink to its file
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		size := fi.Size()
		if !yield(mlflowapi.FileInfo{Path: filepath.ToSlash(rel), FileSize: &size}, nil) {
			return fs.SkipAll
		}
		return nil
	})
}

// ValidRel reports whether rel names a path below a folder: relative,
// slash-separated, with no empty, "." or ".." element and no backslash.
func ValidRel(rel string) bool {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.Contains(rel, `\`) {
		return false
	}
	for _, seg := range strings.Split(rel, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// Later orders metric points as MLflow picks a key's latest one (Python's
// max over (step, timestamp, value)); NaN compares false both ways there,
// so a NaN never replaces a point.
func Later(a, b mlflowapi.Metric) bool {
	if a.Step != b.Step {
		return a.Step > b.Step
	}
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	av, bv := float64(a.Value), float64(b.Value)
	return !math.IsNaN(av) && !math.IsNaN(bv) && av > bv
}

// InView reports whether an experiment or run in lifecycle stage is in
// view (mlflowapi.ViewActive, ViewDeleted or ViewAll), as a server's
// searches select them.
func InView(stage, view string) bool {
	switch view {
	case mlflowapi.ViewActive:
		return stage != mlflowapi.StageDeleted
	case mlflowapi.ViewDeleted:
		return stage == mlflowapi.StageDeleted
	}
	return true
}
