package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// dirStore is an archive in a local folder: files written to a temporary
// name, fsynced and renamed; moves are renames; locks are flock(2).
type dirStore struct {
	root string
}

func newDirStore(root string) *dirStore { return &dirStore{root: root} }

func (d *dirStore) full(p string) string { return abs(d.root, p) }

func (d *dirStore) Name(p string) string {
	if p == "" {
		return d.root
	}
	return d.full(p)
}

type dirFile struct {
	*os.File
	size int64
}

func (f dirFile) Size() int64 { return f.size }

func (d *dirStore) Open(p string) (ReadAtFile, error) {
	f, err := os.Open(d.full(p))
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return dirFile{f, fi.Size()}, nil
}

func (d *dirStore) ReadFile(p string) ([]byte, error) { return os.ReadFile(d.full(p)) }

func (d *dirStore) Stat(p string) (ObjectInfo, error) {
	fi, err := os.Stat(d.full(p))
	if err != nil {
		return ObjectInfo{}, err
	}
	return ObjectInfo{Size: fi.Size(), ModTime: fi.ModTime(), Version: fileIdentity(fi)}, nil
}

type dirWriter struct {
	d     *dirStore
	f     *os.File
	final string
	done  bool
}

func (d *dirStore) Create(p string) (ObjectWriter, error) {
	final := d.full(p)
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, err
	}
	f, err := createTemp(dir, "."+filepath.Base(final)+".", tmpSuffix)
	if err != nil {
		return nil, err
	}
	return &dirWriter{d: d, f: f, final: final}, nil
}

func (w *dirWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

func (w *dirWriter) Commit() error {
	if w.done {
		return errors.New("file already committed or aborted")
	}
	w.done = true
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(w.f.Name(), w.final)
	}
	if err != nil {
		os.Remove(w.f.Name())
		return fmt.Errorf("writing %s: %w", w.final, err)
	}
	return syncDir(filepath.Dir(w.final))
}

func (w *dirWriter) Abort() {
	if !w.done {
		w.done = true
		w.f.Close()
		os.Remove(w.f.Name())
	}
}

func (d *dirStore) WriteFile(p string, data []byte) error { return writeFileAtomic(d.full(p), data) }

func (d *dirStore) CreateExclusive(p string, data []byte) error {
	return d.CreateExclusiveFrom(p, bytes.NewReader(data), int64(len(data)))
}

func (d *dirStore) WriteFileFrom(p string, r io.ReaderAt, size int64) error {
	w, err := d.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, io.NewSectionReader(r, 0, size)); err != nil {
		w.Abort()
		return fmt.Errorf("writing %s: %w", d.full(p), err)
	}
	return w.Commit()
}

func (d *dirStore) CreateExclusiveFrom(p string, r io.ReaderAt, size int64) error {
	// Written whole under a temporary name, then linked to p: link fails
	// when p exists, so two writers never both create it.
	full := d.full(p)
	if err := os.MkdirAll(filepath.Dir(full), dirMode); err != nil {
		return err
	}
	f, err := createTemp(filepath.Dir(full), "."+filepath.Base(full)+".", tmpSuffix)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, io.NewSectionReader(r, 0, size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(f.Name(), full)
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(full))
}

func (d *dirStore) Move(from, to string) error { return moveFile(d.full(from), d.full(to)) }

func (d *dirStore) Remove(p string) error { return os.Remove(d.full(p)) }

func (d *dirStore) RemoveAll(dir string) error { return os.RemoveAll(d.full(dir)) }

func (d *dirStore) Walk(dir string, fn func(p string, size int64) error) error {
	err := filepath.WalkDir(d.full(dir), func(full string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(d.root, full)
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if notExist(err) {
			return nil // moved meanwhile
		}
		if err != nil {
			return err
		}
		return fn(filepath.ToSlash(rel), fi.Size())
	})
	if notExist(err) {
		return nil
	}
	return err
}

func (d *dirStore) Top() ([]string, error) {
	ents, err := os.ReadDir(d.root)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ents))
	for i, e := range ents {
		out[i] = e.Name()
	}
	return out, nil
}

func (d *dirStore) SyncDir(dir string) error { return syncDir(d.full(dir)) }

func (d *dirStore) ReadJournal(jn, from int64) ([]JournalChunk, error) {
	f, err := os.Open(d.full(journalPath(jn)))
	if err != nil {
		if notExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	var out []JournalChunk
	end := from
	for _, line := range strings.SplitAfter(string(data), "\n") {
		if line == "" {
			continue
		}
		end += int64(len(line))
		out = append(out, JournalChunk{Line: line, End: end})
	}
	return out, nil
}

func (d *dirStore) AppendJournal(jn, at int64, line []byte) (int64, error) {
	jp := d.full(journalPath(jn))
	if err := os.MkdirAll(filepath.Dir(jp), dirMode); err != nil {
		return 0, err
	}
	_, serr := os.Stat(jp)
	f, err := os.OpenFile(jp, os.O_CREATE|os.O_WRONLY, fileMode)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if notExist(serr) {
		if err := syncDir(filepath.Dir(jp)); err != nil {
			return 0, err
		}
	}
	if err := f.Truncate(at); err != nil {
		return 0, fmt.Errorf("appending to the journal: %w", err)
	}
	if _, err := f.WriteAt(line, at); err != nil {
		return 0, fmt.Errorf("appending to the journal: %w", err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("fsync journal: %w", err)
	}
	return at + int64(len(line)), nil
}

func (d *dirStore) Journals() ([]int64, error) {
	ents, err := os.ReadDir(d.full(journalDir))
	if err != nil {
		if notExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		n, err := strconv.ParseInt(strings.TrimSuffix(e.Name(), ".jsonl"), 10, 64)
		if err != nil {
			// Not a journal: removed with the stale ones.
			if err := os.Remove(d.full(path.Join(journalDir, e.Name()))); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func (d *dirStore) RemoveJournal(jn int64) error {
	err := os.Remove(d.full(journalPath(jn)))
	if notExist(err) {
		return nil
	}
	return err
}

type dirLock struct{ f *os.File }

func (d *dirStore) Lock(name string) (StoreLock, error) {
	if err := os.MkdirAll(d.root, dirMode); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(d.full(name), os.O_CREATE|os.O_RDWR, fileMode)
	if err != nil {
		return nil, err
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) Take(exclusive, wait bool) error {
	if err := takeLock(l.f, exclusive, wait); err != nil {
		if !wait {
			return fmt.Errorf("%w: %v", errNotLocked, err)
		}
		return fmt.Errorf("locking %s: %w", l.f.Name(), err)
	}
	return nil
}

func (l *dirLock) Drop() error  { return dropLock(l.f) }
func (l *dirLock) Close() error { return l.f.Close() }

func (d *dirStore) SpillDir() string { return d.full(stagingDir + "/spill") }

func (d *dirStore) Close() error { return nil }

// fileIdentity names a version of a local file: manifest.json is replaced
// by rename, so a new version is a new file (inode), and its size and
// time tell rewrites in place apart too.
func fileIdentity(fi os.FileInfo) string {
	return fmt.Sprintf("%s/%d/%d", sysIdentity(fi), fi.Size(), fi.ModTime().UnixNano())
}
