package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"
)

// spillRuns turns on the spill of committed run entries (runSpill) for
// the writers OpenWriter opens; tests turn it off to compare.
var spillRuns = true

// runSpill keeps, in a local temporary file, the manifest entries of the
// runs a Writer committed, each encoded as manifest.json lists it, so
// that the writer's state keeps of each run only what it looks runs up
// by (origin, experiment, snapshot) and where its entry lies in the file.
// Without it a job kept every committed run's entry (its files and its
// cursors, several KB) until it published the manifest at its end: the
// memory a job held grew with the number of runs it wrote. publish
// copies the entries' bytes from the file into the manifest as they are
// (appendManifestJSON), so the manifest is byte for byte what it was
// when every entry was held. The file is removed from its folder as soon
// as it is created (where the system allows; else at Close) and closed at
// Close. Its methods are safe for concurrent use.
type runSpill struct {
	mu       sync.Mutex
	f        *os.File
	size     int64 // bytes written: where the next entry goes
	unlinked bool  // removed from its folder already
}

// spillRef is where a spilled run entry's bytes lie in its runSpill, and
// which tables its files belong to (a bit per index in Tables), which
// currentSQL needs without reading the entry back.
type spillRef struct {
	s      *runSpill
	off    int64
	n      int
	tables uint32
}

// newRunSpill creates a spill file in dir (a local folder; the store's
// SpillDir), or, where this user may not write dir (a reader of an archive
// it may only read: a summary, a sync that finds nothing to write), in the
// system's temporary folder.
func newRunSpill(dir string) (*runSpill, error) {
	f, err := createRunSpill(dir)
	if errors.Is(err, fs.ErrPermission) {
		f, err = os.CreateTemp("", "runferry-runs-*"+tmpSuffix)
	}
	if err != nil {
		return nil, err
	}
	s := &runSpill{f: f}
	s.unlinked = os.Remove(f.Name()) == nil // an open file stays readable on Unix
	return s, nil
}

func createRunSpill(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, "runs-*"+tmpSuffix)
}

// put writes r's manifest entry to the file and returns r as the writer
// keeps it: its origin, experiment and snapshot, with a reference to the
// rest.
func (s *runSpill) put(r *RunEntry) (*RunEntry, error) {
	frag := appendRunFragment(nil, r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.f.WriteAt(frag, s.size); err != nil {
		return nil, fmt.Errorf("spilling the entry of run %s: %w", r.Origin, err)
	}
	ref := &spillRef{s: s, off: s.size, n: len(frag), tables: tableBits(r.Files)}
	s.size += int64(len(frag))
	return &RunEntry{Origin: r.Origin, Experiment: r.Experiment, Snapshot: r.Snapshot, spilled: ref}, nil
}

// close closes the file, and removes it if it is still in its folder.
func (s *runSpill) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.f.Close()
	if !s.unlinked {
		if rerr := os.Remove(s.f.Name()); err == nil && !os.IsNotExist(rerr) {
			err = rerr
		}
		s.unlinked = true
	}
	return err
}

// appendTo appends the entry's bytes, as spilled, to b.
func (ref *spillRef) appendTo(b []byte) ([]byte, error) {
	b = slices.Grow(b, ref.n)
	n := len(b)
	b = b[:n+ref.n]
	if _, err := ref.s.f.ReadAt(b[n:], ref.off); err != nil {
		return b[:n], fmt.Errorf("reading back a spilled run entry: %w", err)
	}
	return b, nil
}

// load reads the whole entry back.
func (ref *spillRef) load() (RunEntry, error) {
	b, err := ref.appendTo(nil)
	if err != nil {
		return RunEntry{}, err
	}
	var r RunEntry
	if err := json.Unmarshal(b, &r); err != nil {
		return RunEntry{}, fmt.Errorf("decoding a spilled run entry: %w", err)
	}
	return r, nil
}

// full returns r whole: r itself, or its entry read back from its spill.
func (r *RunEntry) full() (RunEntry, error) {
	if r.spilled == nil {
		return *r, nil
	}
	return r.spilled.load()
}

// tableBits returns the bits (per index in Tables) of the tables files
// belong to.
func tableBits(files []FileEntry) uint32 {
	var bits uint32
	for _, f := range files {
		if i := slices.Index(Tables, f.Table); i >= 0 && i < 32 {
			bits |= 1 << i
		}
	}
	return bits
}

// appendRunFragment appends r as appendManifestJSON writes it inside the
// manifest's list of runs (from its '{' to its '}', indented for that
// place).
func appendRunFragment(b []byte, r *RunEntry) []byte {
	e := jsonIndenter{b: b, depth: 2}
	appendRunEntry(&e, r)
	return e.b
}

// spilledRuns counts the run entries m holds whole in memory, and those
// it holds spilled (for tests).
func (m *Manifest) spilledRuns() (held, spilled int) {
	for _, r := range m.Runs {
		if r.spilled != nil {
			spilled++
		} else {
			held++
		}
	}
	return held, spilled
}
