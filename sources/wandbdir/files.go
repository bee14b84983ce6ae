package wandbdir

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
)

// fileEntry is one run file.
type fileEntry struct {
	path    string      // slash-separated, relative to files/ (the run folder before 0.10)
	abs     string      // where it is on disk
	name    string      // as shown in damage notes
	info    fs.FileInfo // of the file itself (Lstat) for fingerprints
	size    int64       // of the content (the link target for a symlink)
	problem string      // why it cannot be read, or ""
	// unreadable is set when the problem is a file-system error (no
	// permission, I/O error) that may go away, rather than the file's shape.
	unreadable bool
	folder     bool // an unreadable folder, not a file: never an artifact
}

// legacySkip are the entries at the top of a pre-0.10 run folder that are
// not run files.
var legacySkip = map[string]bool{"logs": true, "tmp": true}

// listFiles returns the run's files sorted by path: every file under each
// segment's files/ folder (the whole folder before SDK 0.10, less logs/ and
// tmp/), a later segment's copy winning over an earlier one. Symlinks are
// followed; a dangling one, or one to a folder, is listed with a problem. A
// file that cannot be opened is listed with a problem, and a folder that
// cannot be listed (files/ itself included) as a folder entry with one.
//
// byMode judges a file readable from the mode bits its listing already
// gave (readableByMode) and opens only a file they do not show readable:
// for the fingerprint and headers, which run for every run of every sync.
// Without it every file is opened, as a copy needs.
func listFiles(ri *runInfo, byMode bool) ([]fileEntry, error) {
	byPath := map[string]fileEntry{}
	for _, seg := range ri.segments {
		root := seg.filesDir()
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if path == root && os.IsNotExist(err) {
					return nil
				}
				rel := relPath(root, path)
				byPath["\x00"+rel] = fileEntry{path: rel, abs: path, name: seg.name(path), size: -1, folder: true,
					unreadable: true, problem: fmt.Sprintf("unreadable folder (%v): none of its files was read", cause(err))}
				return nil
			}
			rel := relPath(root, path)
			if seg.legacy && path != root && filepath.Dir(path) == root {
				if d.IsDir() && legacySkip[d.Name()] {
					return fs.SkipDir
				}
				if strings.HasSuffix(d.Name(), ".wandb") {
					return nil
				}
			}
			if d.IsDir() {
				return nil
			}
			byPath[rel] = statFile(rel, path, seg.name(path), d, byMode)
			return nil
		})
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: listing %s: %w", seg.name(root), err))
		}
	}
	out := make([]fileEntry, 0, len(byPath))
	for _, f := range byPath {
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b fileEntry) int {
		return cmp.Or(strings.Compare(a.path, b.path), strings.Compare(a.name, b.name))
	})
	return out, nil
}

// relPath is path relative to root, slash-separated.
func relPath(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return filepath.ToSlash(path)
	}
	return filepath.ToSlash(rel)
}

// statFile describes one walked file; byMode as for listFiles.
func statFile(rel, path, name string, d fs.DirEntry, byMode bool) fileEntry {
	f := fileEntry{path: rel, abs: path, name: name, size: -1}
	info, err := d.Info()
	if err != nil {
		f.problem = "unreadable: " + err.Error()
		return f
	}
	f.info = info
	opened := info // what is opened: the link's target for a symlink
	switch {
	case info.Mode()&fs.ModeSymlink != 0:
		target, _ := os.Readlink(path)
		st, err := os.Stat(path)
		switch {
		case err != nil:
			f.problem = fmt.Sprintf("dangling symlink to %s", target)
		case st.IsDir():
			f.problem = fmt.Sprintf("symlink to a folder (%s), not followed", target)
		case !st.Mode().IsRegular():
			f.problem = "symlink to something that is not a regular file"
		default:
			f.size, opened = st.Size(), st
		}
	case info.Mode().IsRegular():
		f.size = info.Size()
	default:
		f.problem = "not a regular file"
	}
	if f.problem == "" && !(byMode && readableByMode(opened)) {
		if rc, err := os.Open(path); err != nil {
			f.problem, f.unreadable = fmt.Sprintf("unreadable (%v)", cause(err)), true
		} else {
			rc.Close()
		}
	}
	return f
}

// artifact turns a file into a schema.Artifact, hashing its content. A file
// that vanished or cannot be read since it was listed is returned with a
// problem; only ctx errors are returned.
func (f fileEntry) artifact(ctx context.Context) (schema.Artifact, error) {
	a := schema.Artifact{Path: f.path, Size: -1, Problem: f.problem}
	if f.problem != "" {
		return a, nil
	}
	digest, size, err := hashFile(ctx, f.abs)
	if err != nil {
		if ctx.Err() != nil {
			return a, ctx.Err()
		}
		a.Problem = "unreadable: " + err.Error()
		return a, nil
	}
	a.Size, a.Digest = size, digest
	abs := f.abs
	a.Open = func(context.Context) (io.ReadCloser, error) {
		rc, err := os.Open(abs)
		if err != nil {
			return nil, fault.Permanent(fmt.Errorf("wandb: %w", err))
		}
		return rc, nil
	}
	return a, nil
}

// hashFile returns "sha256:<hex>" and the size of a file's content.
func hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, cause(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", 0, err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// fingerprint hashes the names, sizes and modification times of everything
// the run is read from: its `.wandb` files, the pre-0.10 JSON-lines files
// and its run files. It reads no content, so it is cheap; any write to a
// run changes it. crashed adds the judgement that the run crashed, which
// time alone can change. A run with an unreadable file or folder has no
// fingerprint (""): nothing vouches for what could not be read, so the run
// is transferred again, and its damage reported, until it is readable.
// Readable is judged from the mode bits where they grant this process
// read (listFiles' byMode), else by opening the file. What a change is
// seen by: a file's name, size and modification time (a log or run file
// replaced by one of the same size is seen when its modification time
// differs, as it does unless the writer set it back), a file added or
// removed; a change of mode, owner or ACL alone is not.
func fingerprint(ri *runInfo, crashed bool) (string, error) {
	h := sha256.New()
	if crashed {
		fmt.Fprintf(h, "state\t%s\n", stateCrashed)
	}
	stat := func(seg *segment, path string) {
		if fi, err := os.Lstat(path); err == nil {
			fmt.Fprintf(h, "%s\t%d\t%d\n", seg.name(path), fi.Size(), fi.ModTime().UnixNano())
		} else {
			fmt.Fprintf(h, "%s\tmissing\n", seg.name(path))
		}
	}
	for _, seg := range ri.segments {
		if seg.wandbFile != "" {
			stat(seg, seg.wandbFile)
		}
		if seg.legacy {
			stat(seg, filepath.Join(seg.dir, "wandb-history.jsonl"))
			stat(seg, filepath.Join(seg.dir, "wandb-events.jsonl"))
		}
	}
	files, err := listFiles(ri, true)
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if f.unreadable {
			return "", nil
		}
		if f.info != nil {
			fmt.Fprintf(h, "%s\t%s\t%d\t%d\t%d\n", f.name, f.path, f.info.Size(), f.size, f.info.ModTime().UnixNano())
		} else {
			fmt.Fprintf(h, "%s\t%s\n", f.name, f.problem)
		}
	}
	return "wandbdir1:" + hex.EncodeToString(h.Sum(nil)), nil
}

// mergeNonZero copies every non-zero field of src into *dst (both structs
// of the same type with exported fields): later records refine earlier ones.
func mergeNonZero[T any](dst *T, src T) {
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src)
	for i := range sv.NumField() {
		if f := sv.Field(i); !f.IsZero() && dv.Field(i).CanSet() {
			dv.Field(i).Set(f)
		}
	}
}
