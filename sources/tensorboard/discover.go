package tensorboard

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/tfevents"
	"github.com/runferry/runferry/schema"
)

// mergedSubfolders are the folder names Keras' TensorBoard callback writes
// under one log folder; they belong to the run above them.
var mergedSubfolders = []string{"train", "validation"}

// runInfo is one run found by discover.
type runInfo struct {
	ref, exp schema.Ref
	name     string // relative path (slash form), the root's base name for the root
	rel      string // relative path, "." for the root
	groups   []*group
}

// group is one folder's event files within a run: the run folder itself
// (prefix "") or a merged subfolder (prefix "train/").
type group struct {
	prefix string
	files  []*eventFile
}

// eventFile is one event file, with what discovery saw of it.
type eventFile struct {
	path  string // absolute
	rel   string // relative to the root, slash form
	first float64
	size  int64
	mtime time.Time
}

// isEventFile reports whether a file name is an event file's, as
// TensorBoard decides it (the name holds "tfevents").
func isEventFile(name string) bool { return strings.Contains(name, "tfevents") }

// discover walks root for folders holding event files. Folders it cannot
// list are returned as problems.
func discover(ctx context.Context, root string) ([]*runInfo, []string, error) {
	byDir := map[string][]*eventFile{}
	var problems []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel := relPath(root, p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rel, unwrapPath(err)))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !isEventFile(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", rel, unwrapPath(err)))
			return nil
		}
		f := &eventFile{path: p, rel: rel, size: fi.Size(), mtime: fi.ModTime()}
		f.first = firstWallTime(p)
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], f)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	exp := schema.Ref{System: System, ID: filepath.ToSlash(root)}
	runs := map[string]*runInfo{}
	for dir, files := range byDir {
		slices.SortFunc(files, func(a, b *eventFile) int {
			return cmp.Or(cmp.Compare(a.first, b.first), strings.Compare(a.rel, b.rel))
		})
		runDir, prefix := dir, ""
		if slices.Contains(mergedSubfolders, filepath.Base(dir)) && dir != root {
			runDir, prefix = filepath.Dir(dir), filepath.Base(dir)+"/"
		}
		ri := runs[runDir]
		if ri == nil {
			rel := relPath(root, runDir)
			name := rel
			if rel == "." {
				name = filepath.Base(root)
			}
			ri = &runInfo{ref: schema.Ref{System: System, ID: exp.ID + "#" + rel}, exp: exp, name: name, rel: rel}
			runs[runDir] = ri
		}
		ri.groups = append(ri.groups, &group{prefix: prefix, files: files})
	}
	var out []*runInfo
	for _, ri := range runs {
		slices.SortFunc(ri.groups, func(a, b *group) int { return strings.Compare(a.prefix, b.prefix) })
		out = append(out, ri)
	}
	slices.SortFunc(out, func(a, b *runInfo) int { return strings.Compare(a.rel, b.rel) })
	slices.Sort(problems)
	return out, problems, nil
}

// relPath is p relative to root in slash form ("." for root).
func relPath(root, p string) string {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(rel)
}

// firstWallTime is the wall time of a file's first event, 0 when it has
// none or cannot be read (reading the run names why).
func firstWallTime(p string) float64 {
	f, err := os.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	r := tfevents.NewReader(io.LimitReader(f, 1<<20), p)
	data, _, err := r.Next()
	if err != nil {
		return 0
	}
	var ev tfevents.Event
	if tfevents.DecodeEvent(data, &ev) != nil {
		return 0
	}
	return ev.WallTime
}
