package archive

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Manifest is the content of manifest.json and of each snapshots/<n>.json:
// the archive's state after snapshot Snapshot, listing every current file.
type Manifest struct {
	Format          string            `json:"format"`
	FormatVersion   int               `json:"format_version"`
	RunferryVersion string            `json:"runferry_version"`
	Source          string            `json:"source"` // redacted location the data came from
	Snapshot        int64             `json:"snapshot"`
	Created         time.Time         `json:"created"`
	Experiments     []ExperimentEntry `json:"experiments"` // sorted by origin
	Runs            []RunEntry        `json:"runs"`        // sorted by origin
	// Models are the registered models of a model registry, sorted by
	// origin (since format version 3; absent when there are none, so a
	// manifest without models encodes as a version 2 one did).
	Models []ModelEntry `json:"models,omitempty"`
	// Checksum is the SHA-256 (hex) of the manifest encoded with Checksum
	// empty; a manifest whose checksum does not match is rejected.
	Checksum string `json:"checksum"`

	// spill holds the run entries read spilled (streamManifest), nil
	// when none were.
	spill *runSpill
}

// release closes the file holding the run entries m was read with
// spilled, before the collector would: m's spilled entries cannot be read
// back after.
func (m *Manifest) release() {
	if m.spill != nil {
		m.spill.close()
		m.spill = nil
	}
}

// FileEntry describes one data file.
type FileEntry struct {
	Path   string `json:"path"` // slash path relative to the archive while current
	Table  string `json:"table"`
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// BlobEntry describes one content-addressed artifact body.
type BlobEntry struct {
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
}

// ExperimentEntry is an experiment's place in the archive.
type ExperimentEntry struct {
	Origin   string `json:"origin"`
	Snapshot int64  `json:"snapshot"` // snapshot that wrote the current files
	Digest   string `json:"digest"`   // SHA-256 of the experiment's content, to skip rewriting it unchanged
	// TracesDigest is the SHA-256 of the experiment's traces file content
	// ("" when it has none): a write of the same traces is skipped.
	TracesDigest string      `json:"traces_digest,omitempty"`
	Files        []FileEntry `json:"files"`
}

// ModelEntry is a registered model's place in the archive: its row in
// registered_models/ and its versions' rows in model_versions/.
type ModelEntry struct {
	Origin   string      `json:"origin"`
	Name     string      `json:"name"`
	Snapshot int64       `json:"snapshot"` // snapshot that wrote the current files
	Digest   string      `json:"digest"`   // SHA-256 of the model's rows, to skip rewriting it unchanged
	Files    []FileEntry `json:"files"`
}

// RunEntry is a committed run's place in the archive.
type RunEntry struct {
	Origin      string `json:"origin"`
	Experiment  string `json:"experiment"`
	Snapshot    int64  `json:"snapshot"` // snapshot that wrote the current files
	Fingerprint string `json:"fingerprint"`
	// Mark is the engine's mark of what the run holds (sinks.Marked),
	// checked before points are appended to it (since version 4).
	Mark string `json:"mark,omitempty"`
	// Cursors is the engine's document of what the run's metrics hold,
	// per key (count, last step and time, digest), from which Mark is
	// derived (sinks.CursorKeeper), kept verbatim as JSON text, so that a
	// sync without a ledger, or whose ledger lags behind the archive,
	// appends from the archive's own record (since version 5).
	Cursors string `json:"cursors,omitempty"`
	Points  int64  `json:"points"`
	// Files lists the run's current files. A run holds at most one file
	// of each table but metrics, of which it holds one per write that
	// added points, in the order written: the first
	// holds the points of the run as first written, each later one the
	// points appended after them (RunWriter from AppendRun; since version 4).
	Files []FileEntry `json:"files"`
	Blobs []BlobEntry `json:"blobs,omitempty"`

	// spilled, in the state a Writer keeps, says where the rest of the
	// entry lies (runSpill): Origin, Experiment and Snapshot are set, the
	// other fields are not, and full reads them back.
	spilled *spillRef
}

// File returns the run's file of table, if any.
func (r *RunEntry) File(table string) (FileEntry, bool) {
	for _, f := range r.Files {
		if f.Table == table {
			return f, true
		}
	}
	return FileEntry{}, false
}

// encodeManifest returns m as JSON with its checksum filled in, as
// json.MarshalIndent(m, "", " ") encodes it (appendManifestJSON). It is
// encoded once, with the checksum empty, and the checksum of those bytes
// is written into the last field (the bytes a second encoding with the
// checksum set would give, and what canonicalChecksum takes apart).
func encodeManifest(m Manifest) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(manifestSize(&m))
	if _, err := writeManifest(&buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeManifest writes m to w as encodeManifest encodes it, a part at a
// time (appendManifestJSONTo), hashing the parts as they go: it holds
// about manifestPart bytes of the encoding, never the whole manifest (tens
// of MB for 10,000 runs, the largest part of a job's peak memory, at its
// end, when it was encoded whole). It returns the bytes written.
func writeManifest(w io.Writer, m Manifest) (int64, error) {
	m.Checksum = ""
	h := sha256.New()
	var n int64
	write := func(b []byte) error {
		h.Write(b)
		k, err := w.Write(b)
		n += int64(k)
		return err
	}
	body, err := appendManifestJSONTo(make([]byte, 0, manifestPart+64<<10), &m, write)
	if err != nil {
		return n, err
	}
	// body is the encoding's end, from the last part handed on: it holds
	// the checksum field, empty, which the hash of everything before it
	// fills.
	end := checksumTail + "\"\n}"
	if !bytes.HasSuffix(body, []byte(end)) {
		return n, fmt.Errorf("encoding the manifest: it does not end with its checksum field")
	}
	h.Write(body)
	out := body[:len(body)-len(end)+len(checksumTail)]
	out = hex.AppendEncode(out, h.Sum(nil))
	out = append(out, "\"\n}\n"...)
	k, err := w.Write(out)
	return n + int64(k), err
}

// manifestFile writes m, encoded as encodeManifest encodes it
// (writeManifest), into a temporary file in the local folder dir (the
// store's SpillDir), removed from its folder at once where the system
// allows (else when closed). The caller reads it (size bytes) and closes
// it.
func manifestFile(dir string, m Manifest) (f *tempFile, size int64, err error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, 0, err
	}
	osf, err := os.CreateTemp(dir, "manifest-*"+tmpSuffix)
	if err != nil {
		return nil, 0, err
	}
	f = &tempFile{File: osf, unlinked: os.Remove(osf.Name()) == nil}
	bw := bufio.NewWriterSize(osf, 64<<10)
	size, err = writeManifest(bw, m)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("writing the manifest to %s: %w", dir, err)
	}
	return f, size, nil
}

// tempFile is a temporary file removed from its folder when closed, if it
// was not removed when created.
type tempFile struct {
	*os.File
	unlinked bool
}

// Close closes the file and removes it.
func (f *tempFile) Close() error {
	err := f.File.Close()
	if !f.unlinked {
		os.Remove(f.Name())
		f.unlinked = true
	}
	return err
}

// manifestSize estimates the size of m encoded, from above where its run
// entries are spilled (their size is known) and roughly otherwise, so
// that its encoding is not copied as it grows.
func manifestSize(m *Manifest) int {
	n := 1 << 16
	for _, r := range m.Runs {
		if r.spilled != nil {
			n += r.spilled.n + 2
			continue
		}
		n += 512 + len(r.Origin) + len(r.Cursors) + 320*len(r.Files) + 100*len(r.Blobs)
	}
	for _, e := range m.Experiments {
		n += 256 + 320*len(e.Files)
	}
	for _, e := range m.Models {
		n += 256 + 320*len(e.Files)
	}
	return n
}

// decodeManifest parses and verifies a manifest read from name, every
// run entry held whole (streamManifest).
func decodeManifest(name string, data []byte) (*Manifest, error) {
	return streamManifest(name, bytes.NewReader(data), false, "")
}

// checksumTail is how encodeManifest ends a manifest, around its checksum.
const checksumTail = "\"checksum\": \""

// canonicalChecksum reports whether data is a manifest exactly as
// encodeManifest wrote it whose checksum is want: data with want's hex
// taken out of its last field (and the final newline) hashes to want. The
// bytes hashed are then the encoding decodeManifest would compute by
// re-encoding, so it need not (which costs as much as decoding). A
// manifest encoded otherwise (re-indented, fields reordered) answers
// false and is verified by re-encoding what it decodes to.
func canonicalChecksum(data []byte, want string) bool {
	if len(want) != 2*sha256.Size {
		return false
	}
	tail := checksumTail + want + "\"\n}\n"
	if !bytes.HasSuffix(data, []byte(tail)) {
		return false
	}
	h := sha256.New()
	h.Write(data[:len(data)-len(tail)])
	h.Write([]byte(checksumTail + "\"\n}"))
	return hex.EncodeToString(h.Sum(nil)) == want
}

// readManifest reads a manifest file, every run entry held whole; a
// missing file returns (nil, nil).
func readManifest(st Store, p string) (*Manifest, error) {
	return readManifestAs(st, p, false)
}

// readManifestAs reads a manifest file as a stream, never holding its
// bytes whole (streamManifest); with spill its run entries are kept
// spilled in a temporary file in the store's SpillDir. A missing file
// returns (nil, nil).
func readManifestAs(st Store, p string, spill bool) (*Manifest, error) {
	f, err := st.Open(p)
	if notExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", st.Name(p), err)
	}
	defer f.Close()
	return streamManifest(st.Name(p), readerOnly{f}, spill, st.SpillDir())
}

func emptyManifest() *Manifest {
	return &Manifest{Format: FormatName, FormatVersion: FormatVersion}
}

// journalRecord is one line of a journal: a committed experiment or run,
// and the entries it retires (removes from the current state): runs and
// experiments held under former origins of what it commits.
type journalRecord struct {
	Experiment *ExperimentEntry `json:"experiment,omitempty"`
	Run        *RunEntry        `json:"run,omitempty"`
	Model      *ModelEntry      `json:"model,omitempty"` // since format version 3
	// RetireRuns and RetireExperiments are origins whose entries leave
	// the current state (their files move to history/).
	RetireRuns        []string `json:"retire_runs,omitempty"`
	RetireExperiments []string `json:"retire_experiments,omitempty"`
}

// encodeJournalLine returns "<sha256 of json, 16 hex> <json>\n".
func encodeJournalLine(rec journalRecord) ([]byte, error) {
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	line := make([]byte, 0, len(body)+18)
	line = append(line, hex.EncodeToString(sum[:8])...)
	line = append(line, ' ')
	line = append(line, body...)
	return append(line, '\n'), nil
}

// readJournal parses a journal. A damaged or unterminated last line is the
// trace of a crash during an append and is ignored; damage anywhere else is
// an error. A missing journal holds no records.
func readJournal(st Store, jn int64) ([]journalRecord, error) {
	chunks, err := st.ReadJournal(jn, 0)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", st.Name(journalPath(jn)), err)
	}
	var out []journalRecord
	for i, c := range chunks {
		rec, ok := parseJournalLine(c.Line)
		if !ok {
			if i == len(chunks)-1 {
				break
			}
			return nil, fmt.Errorf("%s: %w: line %d", st.Name(journalPath(jn)), ErrDamaged, i+1)
		}
		out = append(out, rec)
	}
	return out, nil
}

func parseJournalLine(line string) (journalRecord, bool) {
	var rec journalRecord
	body, ok := strings.CutSuffix(line, "\n")
	if !ok || len(body) < 17 || body[16] != ' ' {
		return rec, false
	}
	sum := sha256.Sum256([]byte(body[17:]))
	if hex.EncodeToString(sum[:8]) != body[:16] {
		return rec, false
	}
	return rec, json.Unmarshal([]byte(body[17:]), &rec) == nil &&
		(rec.Run != nil || rec.Experiment != nil || rec.Model != nil || len(rec.RetireRuns) > 0 || len(rec.RetireExperiments) > 0)
}

// apply folds journal records into m (in place), replacing entries with the
// same origin and removing retired ones, and keeps the entries sorted.
func (m *Manifest) apply(recs []journalRecord) {
	for _, rec := range recs {
		m.Runs = slices.DeleteFunc(m.Runs, func(r RunEntry) bool { return slices.Contains(rec.RetireRuns, r.Origin) })
		m.Experiments = slices.DeleteFunc(m.Experiments, func(e ExperimentEntry) bool { return slices.Contains(rec.RetireExperiments, e.Origin) })
		if e := rec.Experiment; e != nil {
			i, found := slices.BinarySearchFunc(m.Experiments, e.Origin, func(x ExperimentEntry, o string) int { return strings.Compare(x.Origin, o) })
			if found {
				m.Experiments[i] = *e
			} else {
				m.Experiments = slices.Insert(m.Experiments, i, *e)
			}
		}
		if e := rec.Model; e != nil {
			i, found := m.modelIndex(e.Origin)
			if found {
				m.Models[i] = *e
			} else {
				m.Models = slices.Insert(m.Models, i, *e)
			}
		}
		if r := rec.Run; r != nil {
			i, found := slices.BinarySearchFunc(m.Runs, r.Origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) })
			if found {
				m.Runs[i] = *r
			} else {
				m.Runs = slices.Insert(m.Runs, i, *r)
			}
		}
	}
}

// allFiles returns every data file a manifest read from a file lists (one
// that holds no spilled run entry, which a Writer's state alone holds:
// for that, files).
func (m *Manifest) allFiles() []FileEntry {
	out, err := m.files()
	if err != nil {
		panic(fmt.Sprintf("archive: allFiles of a writer's state: %v", err))
	}
	return out
}

// files returns every data file the manifest lists, reading spilled run
// entries back.
func (m *Manifest) files() ([]FileEntry, error) {
	var out []FileEntry
	for _, e := range m.Experiments {
		out = append(out, e.Files...)
	}
	for _, r := range m.Runs {
		full, err := r.full()
		if err != nil {
			return nil, err
		}
		out = append(out, full.Files...)
	}
	for _, e := range m.Models {
		out = append(out, e.Files...)
	}
	return out, nil
}

// modelIndex finds the registered model with origin in m.Models.
func (m *Manifest) modelIndex(origin string) (int, bool) {
	return slices.BinarySearchFunc(m.Models, origin, func(x ModelEntry, o string) int { return strings.Compare(x.Origin, o) })
}

// State is an archive's current content: the manifest with the pending
// journal folded in, as a reader sees it.
type State struct {
	Manifest *Manifest
	// Pending is the number of journal records not yet folded into
	// manifest.json (runs committed by a writer that is still open or
	// crashed before publishing).
	Pending int
}

// LoadState reads the current state of the archive at root without
// changing anything. A folder with no manifest is an empty archive.
func LoadState(root string) (*State, error) {
	st, err := OpenStore(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return loadState(st)
}

// LoadStateIn is LoadState of the archive in st, an open store (which
// stays open): a caller that goes on to read or write the archive opens
// its store once (OpenStore proves an object store reachable with a
// request of its own, and loads the cloud's configuration).
func LoadStateIn(st Store) (*State, error) { return loadState(st) }

// LoadStateSpilled is LoadState holding the state's run entries spilled
// in a local temporary file (the store's SpillDir), so that what it holds
// grows by about a hundred bytes a run rather than by each entry's size
// (several KB): the entries of Manifest.Runs then hold only Origin,
// Experiment and Snapshot, and Manifest.Run reads an entry back whole.
// The file is closed and gone once the state is no longer reachable.
func LoadStateSpilled(root string) (*State, error) {
	st, err := OpenStore(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return LoadStateSpilledIn(st)
}

// LoadStateSpilledIn is LoadStateSpilled of the archive in st, an open
// store (which stays open), as LoadStateIn is LoadState's.
func LoadStateSpilledIn(st Store) (*State, error) { return loadStateAs(st, true) }

func loadState(st Store) (*State, error) { return loadStateAs(st, false) }

// loadStateAs is loadState, with the run entries spilled if spill.
func loadStateAs(st Store, spill bool) (*State, error) {
	before, serr := st.Stat(ManifestFile)
	var m *Manifest
	if !notExist(serr) { // none to read when the Stat found none
		var err error
		if m, err = readManifestAs(st, ManifestFile, spill); err != nil {
			return nil, err
		}
	}
	if m != nil && serr == nil {
		if after, err := st.Stat(ManifestFile); err == nil && after.Version == before.Version {
			rememberManifest(st, before.Version, m)
		}
	}
	if m == nil {
		m = emptyManifest()
	}
	recs, err := readJournal(st, m.Snapshot+1)
	if err != nil {
		return nil, err
	}
	m.apply(recs)
	return &State{Manifest: m, Pending: len(recs)}, nil
}

// LoadSnapshot reads the state recorded for snapshot n
// (snapshots/<n>.json), for reading an archive as it was.
func LoadSnapshot(root string, n int64) (*Manifest, error) {
	st, err := OpenStore(root)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	return loadSnapshot(st, n)
}

func loadSnapshot(st Store, n int64) (*Manifest, error) { return loadSnapshotAs(st, n, false) }

// loadSnapshotAs is loadSnapshot, with the run entries spilled if spill.
func loadSnapshotAs(st Store, n int64, spill bool) (*Manifest, error) {
	m, err := readManifestAs(st, snapshotPath(n), spill)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%s: snapshot %d does not exist (pruned?)", st.Name(snapshotPath(n)), n)
	}
	return m, nil
}

// Run returns the entry of the run archived from origin, if any, whole
// (read back from its spill when the state holds it spilled: see
// LoadStateSpilled). An entry that cannot be read back from its spill (a
// local temporary file) is answered as absent: the run is then written
// again, not lost.
func (m *Manifest) Run(origin string) (RunEntry, bool) {
	r, ok := m.find(origin)
	if !ok {
		return RunEntry{}, false
	}
	full, err := r.full()
	if err != nil {
		return RunEntry{}, false
	}
	return full, true
}

// find returns the entry of the run archived from origin as m holds it
// (spilled or whole).
func (m *Manifest) find(origin string) (RunEntry, bool) {
	i, ok := slices.BinarySearchFunc(m.Runs, origin, func(x RunEntry, o string) int { return strings.Compare(x.Origin, o) })
	if !ok {
		return RunEntry{}, false
	}
	return m.Runs[i], true
}

// lastManifest is the last manifest.json this process decoded and
// verified in loadState (or wrote in publish), with the store name and
// version of the file it came from: a writer opened next on that archive
// (a sink's, after it read the state) takes it from here instead of
// decoding the same bytes again, when manifest.json is still that
// version (replaced by rename, a new version is a new file). Only
// Writer.refresh recalls it; readers and Check always read the file.
var lastManifest struct {
	sync.Mutex
	name, version string
	m             *Manifest
}

// rememberManifest keeps m as the manifest.json of st at version.
func rememberManifest(st Store, version string, m *Manifest) {
	if version == "" {
		return
	}
	lastManifest.Lock()
	defer lastManifest.Unlock()
	lastManifest.name, lastManifest.version, lastManifest.m = st.Name(ManifestFile), version, m.clone()
}

// recallManifest returns a copy of the manifest remembered for st's
// manifest.json at version, or nil.
func recallManifest(st Store, version string) *Manifest {
	lastManifest.Lock()
	defer lastManifest.Unlock()
	if version == "" || lastManifest.m == nil || lastManifest.version != version || lastManifest.name != st.Name(ManifestFile) {
		return nil
	}
	return lastManifest.m.clone()
}

// clone returns a copy of m that apply may change without changing m
// (apply replaces, inserts and deletes whole entries; it never changes
// an entry's own slices).
func (m *Manifest) clone() *Manifest {
	c := *m
	c.Experiments, c.Runs, c.Models = slices.Clone(m.Experiments), slices.Clone(m.Runs), slices.Clone(m.Models)
	return &c
}
