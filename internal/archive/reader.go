package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"iter"
	"slices"
	"strings"

	"github.com/parquet-go/parquet-go"

	"github.com/runferry/runferry/schema"
)

// ErrDamaged marks a file whose content does not match the manifest: a
// wrong size or SHA-256, or Parquet that does not parse.
var ErrDamaged = errors.New("archive file is damaged")

// Reader reads an archive's current state, or an earlier snapshot. It
// never changes the archive, and verifies each data file's size and
// SHA-256 against the manifest before using it. Safe for concurrent use.
type Reader struct {
	root string
	st   Store
	m    *Manifest
	exps []ExperimentEntry
	runs map[string][]RunEntry // by experiment origin, sorted by origin
}

// OpenReader opens the archive at root: its current state (manifest plus
// committed journal lines) when snapshot is 0, else snapshots/<snapshot>.json.
func OpenReader(root string, snapshot int64) (*Reader, error) {
	st, err := OpenStore(root)
	if err != nil {
		return nil, err
	}
	r, err := openStoreReader(root, st, snapshot)
	if err != nil {
		st.Close()
	}
	return r, err
}

func openStoreReader(root string, st Store, snapshot int64) (*Reader, error) {
	if _, err := st.Stat(ManifestFile); err != nil {
		if chunks, jerr := st.ReadJournal(1, 0); jerr != nil || len(chunks) == 0 {
			if !notExist(err) {
				return nil, fmt.Errorf("%s is not readable: %w", root, err)
			}
			return nil, fmt.Errorf("%s is not a runferry archive: %w", root, err)
		}
	}
	var m *Manifest
	if snapshot == 0 {
		state, err := loadState(st)
		if err != nil {
			return nil, err
		}
		m = state.Manifest
	} else {
		var err error
		if m, err = loadSnapshot(st, snapshot); err != nil {
			return nil, err
		}
	}
	r := &Reader{root: root, st: st, m: m, exps: m.Experiments, runs: map[string][]RunEntry{}}
	for _, e := range m.Runs {
		r.runs[e.Experiment] = append(r.runs[e.Experiment], e)
	}
	return r, nil
}

// NewEntryReader returns a Reader of the tables of run entries in st
// (ReadRun, Metrics, RichValues, Logs, Artifacts) that loads no manifest:
// its Manifest, Experiments, Runs and Run are empty. A sink uses it to
// compare a run it is given with the copy it holds (the entry from its
// Writer). Close closes st.
func NewEntryReader(st Store) *Reader {
	return &Reader{st: st, m: &Manifest{}, runs: map[string][]RunEntry{}}
}

// Close releases the reader's connection to the archive's store.
func (r *Reader) Close() error { return r.st.Close() }

// Manifest returns the state being read. The caller must not change it.
func (r *Reader) Manifest() *Manifest { return r.m }

// Experiments returns the archived experiments sorted by origin.
func (r *Reader) Experiments() ([]schema.Experiment, error) {
	var out []schema.Experiment
	for _, e := range r.exps {
		for _, f := range e.Files {
			if f.Table != TableExperiments {
				continue
			}
			err := readTable(r.st, f, 16, func(rows []ExperimentRow) error {
				for _, row := range rows {
					x, err := row.Decode()
					if err != nil {
						return err
					}
					out = append(out, x)
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// Runs returns the entries of the runs of experiment exp, sorted by origin.
func (r *Reader) Runs(exp string) []RunEntry { return r.runs[exp] }

// Run returns the entry of the run with origin, if archived.
func (r *Reader) Run(origin string) (RunEntry, bool) {
	i, ok := slices.BinarySearchFunc(r.m.Runs, origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) })
	if !ok {
		return RunEntry{}, false
	}
	return r.m.Runs[i], true
}

// ReadRun reads a run's metadata, params, tags and dataset inputs.
func (r *Reader) ReadRun(e RunEntry) (schema.Run, error) {
	var run schema.Run
	var params []schema.Param
	var tags []schema.Tag
	var inputs []schema.DatasetInput
	found := false
	for _, f := range e.Files {
		var err error
		switch f.Table {
		case TableRuns:
			err = readTable(r.st, f, 16, func(rows []RunRow) error {
				for _, row := range rows {
					var derr error
					if run, derr = row.Decode(); derr != nil {
						return derr
					}
					found = true
				}
				return nil
			})
		case TableParams:
			err = readTable(r.st, f, 1024, func(rows []KVRow) error {
				for _, row := range rows {
					params = append(params, schema.Param{Key: row.Key, Value: row.Value})
				}
				return nil
			})
		case TableTags:
			err = readTable(r.st, f, 1024, func(rows []KVRow) error {
				for _, row := range rows {
					tags = append(tags, schema.Tag{Key: row.Key, Value: row.Value})
				}
				return nil
			})
		case TableInputs:
			err = readTable(r.st, f, 64, func(rows []InputRow) error {
				for _, row := range rows {
					in, derr := row.DatasetInput()
					if derr != nil {
						return derr
					}
					inputs = append(inputs, in)
				}
				return nil
			})
		}
		if err != nil {
			return schema.Run{}, err
		}
	}
	if !found {
		return schema.Run{}, fmt.Errorf("run %s: %w: no row in runs/", e.Origin, ErrDamaged)
	}
	run.Params, run.Tags, run.Inputs = params, tags, inputs
	return run, nil
}

// Metrics calls fn with the run's points in archive order (key, step), in
// pages of at most page points. fn owns each page. A run whose points are
// in several files (appended to: see RunEntry.Files) reads as one file
// holding them all would: by key, and within a key the points of each
// file after those of the files before it.
func (r *Reader) Metrics(e RunEntry, page int, fn func([]schema.Metric) error) error {
	var files []FileEntry
	for _, f := range e.Files {
		if f.Table == TableMetrics {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	if len(files) > 1 {
		return r.mergeMetrics(files, page, fn)
	}
	return readTable(r.st, files[0], page, func(rows []MetricRow) error {
		out := make([]schema.Metric, len(rows))
		for i, row := range rows {
			out[i] = row.Metric()
		}
		return fn(out)
	})
}

// RichValues calls fn with the run's rich values in the order written.
func (r *Reader) RichValues(e RunEntry, page int, fn func([]schema.RichValue) error) error {
	f, ok := e.File(TableRichValues)
	if !ok {
		return nil
	}
	return readTable(r.st, f, page, func(rows []RichValueRow) error {
		out := make([]schema.RichValue, len(rows))
		for i, row := range rows {
			var err error
			if out[i], err = row.RichValue(); err != nil {
				return err
			}
		}
		return fn(out)
	})
}

// Logs calls fn with the run's console lines in the order written.
func (r *Reader) Logs(e RunEntry, page int, fn func([]schema.LogLine) error) error {
	f, ok := e.File(TableLogs)
	if !ok {
		return nil
	}
	return readTable(r.st, f, page, func(rows []LogRow) error {
		out := make([]schema.LogLine, len(rows))
		for i, row := range rows {
			out[i] = row.LogLine()
		}
		return fn(out)
	})
}

// Artifacts returns the run's file manifest sorted by path.
func (r *Reader) Artifacts(e RunEntry) ([]ArtifactRow, error) { return ArtifactsIn(r.st, e) }

// ArtifactsIn returns the rows of run e's artifacts table in st (none when
// it has none), as Reader.Artifacts does.
func ArtifactsIn(st Store, e RunEntry) ([]ArtifactRow, error) {
	f, ok := e.File(TableArtifacts)
	if !ok {
		return nil, nil
	}
	var out []ArtifactRow
	err := readTable(st, f, 256, func(rows []ArtifactRow) error {
		out = append(out, rows...)
		return nil
	})
	return out, err
}

// OpenBlob opens the artifact body with the given SHA-256 (hex) and size.
// The body is verified as it is read: where it ends, the reader returns an
// error wrapping ErrDamaged and naming the file, instead of io.EOF, when
// its size or SHA-256 differ, so that no damaged body is taken for the
// real one. A missing body is an ErrDamaged error naming the file too.
func (r *Reader) OpenBlob(sha string, size int64) (io.ReadCloser, error) {
	if len(sha) != 64 {
		return nil, fmt.Errorf("%w: bad blob name %q", ErrDamaged, sha)
	}
	p := r.st.Name(blobPath(sha))
	f, err := r.st.Open(blobPath(sha))
	if notExist(err) {
		return nil, fmt.Errorf("%s: %w: the artifact body is missing", p, ErrDamaged)
	}
	if err != nil {
		return nil, err
	}
	return &verifyingReader{f: f, path: p, sha: sha, size: size, h: sha256.New()}, nil
}

// verifyingReader checks a blob's size and SHA-256 as it is read.
type verifyingReader struct {
	f    ReadAtFile
	path string
	sha  string
	size int64
	h    hash.Hash
	n    int64
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.f.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.size {
		return n, fmt.Errorf("%s: %w: longer than the %d bytes recorded", v.path, ErrDamaged, v.size)
	}
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); v.n != v.size || got != v.sha {
			return n, fmt.Errorf("%s: %w: %d bytes with SHA-256 %s, want %d bytes with SHA-256 %s", v.path, ErrDamaged, v.n, got, v.size, v.sha)
		}
	}
	return n, err
}

func (v *verifyingReader) Close() error { return v.f.Close() }

// readTable verifies a data file against its entry and calls fn with its
// rows, page rows at a time (fn may keep the slice).
func readTable[T any](st Store, e FileEntry, page int, fn func([]T) error) (err error) {
	rel, err := resolve(st, e.Path)
	if notExist(err) {
		return fmt.Errorf("%s: %w: the file is missing (%w)", st.Name(e.Path), ErrDamaged, fs.ErrNotExist)
	}
	if err != nil {
		return err
	}
	full := st.Name(rel)
	f, err := st.Open(rel)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := verifyFile(full, f, e); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w: %v", full, ErrDamaged, p)
		}
	}()
	pf, err := parquet.OpenFile(f, e.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", full, ErrDamaged, err)
	}
	rd := parquet.NewGenericReader[T](pf)
	defer rd.Close()
	// A page is at most the file's rows: a buffer of a whole page for a
	// file of a few rows (a run's one log line, read with the source's
	// page of 10,000) cost more than reading the file.
	if rows := pf.NumRows(); rows < int64(page) {
		page = int(max(rows, 1))
	}
	var n int64
	for {
		rows := make([]T, page)
		k, rerr := rd.Read(rows)
		n += int64(k)
		if k > 0 {
			if err := fn(rows[:k]); err != nil {
				return err
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("%s: %w: %v", full, ErrDamaged, rerr)
		}
	}
	if n != e.Rows {
		return fmt.Errorf("%s: %w: %d rows, manifest says %d", full, ErrDamaged, n, e.Rows)
	}
	return nil
}

// verifyFile checks a file's size and SHA-256 against its entry.
func verifyFile(full string, f ReadAtFile, e FileEntry) error {
	h := sha256.New()
	n, err := io.Copy(h, f) // f is at its start
	if err != nil {
		return fmt.Errorf("reading %s: %w", full, err)
	}
	sha := hex.EncodeToString(h.Sum(nil))
	if n != e.Bytes {
		return fmt.Errorf("%s: %w: %d bytes, manifest says %d (truncated?)", full, ErrDamaged, n, e.Bytes)
	}
	if sha != e.SHA256 {
		return fmt.Errorf("%s: %w: SHA-256 %s, manifest says %s", full, ErrDamaged, sha, e.SHA256)
	}
	return nil
}

// mergeMetrics reads several metrics files of one run, each sorted by key,
// as one: key by key, the files in order within a key.
func (r *Reader) mergeMetrics(files []FileEntry, page int, fn func([]schema.Metric) error) error {
	return r.mergeRows(files, page, func(rows []MetricRow) error {
		out := make([]schema.Metric, len(rows))
		for i, row := range rows {
			out[i] = row.Metric()
		}
		return fn(out)
	})
}

// mergeRows is mergeMetrics on the files' rows, in pages of at most page
// rows; fn must not keep the slice.
func (r *Reader) mergeRows(files []FileEntry, page int, fn func([]MetricRow) error) error {
	type head struct {
		row  MetricRow
		ok   bool
		next func() (MetricRow, error, bool)
	}
	heads := make([]*head, len(files))
	for i, f := range files {
		next, stop := iter.Pull2(r.metricRows(f, page))
		defer stop()
		h := &head{next: next}
		heads[i] = h
	}
	advance := func(h *head) error {
		row, err, ok := h.next()
		if ok && err != nil {
			return err
		}
		h.row, h.ok = row, ok
		return nil
	}
	for _, h := range heads {
		if err := advance(h); err != nil {
			return err
		}
	}
	out := make([]MetricRow, 0, page)
	for {
		var pick *head
		for _, h := range heads {
			if h.ok && (pick == nil || h.row.Key < pick.row.Key) {
				pick = h
			}
		}
		if pick == nil {
			break
		}
		key := pick.row.Key
		for pick.ok && pick.row.Key == key {
			out = append(out, pick.row)
			if len(out) == page {
				if err := fn(out); err != nil {
					return err
				}
				out = out[:0]
			}
			if err := advance(pick); err != nil {
				return err
			}
		}
	}
	if len(out) > 0 {
		return fn(out)
	}
	return nil
}

// metricRows yields the rows of one metrics file.
func (r *Reader) metricRows(f FileEntry, page int) iter.Seq2[MetricRow, error] {
	return func(yield func(MetricRow, error) bool) {
		stopped := errors.New("stopped")
		err := readTable(r.st, f, page, func(rows []MetricRow) error {
			for _, row := range rows {
				if !yield(row, nil) {
					return stopped
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, stopped) {
			yield(MetricRow{}, err)
		}
	}
}
