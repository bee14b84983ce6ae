package parquetdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// Description describes the adapter for the registry.
func Description() location.Description {
	return location.Description{
		Scheme:  "parquet",
		Kind:    location.StoreKind,
		Syntax:  "parquet:PATH | parquet:s3://BUCKET/PREFIX | parquet:gs://BUCKET/PREFIX | parquet:azblob://CONTAINER/PREFIX",
		Summary: "runferry Parquet archive: tidy tables for DuckDB, pandas, Polars and Spark, versioned by snapshot",
		Help: "Writes experiments, runs, params, tags, metrics, rich values, console logs, artifacts, the model registry and traces as " +
			"zstd-compressed Parquet tables under PATH, with artifact bodies stored once per content, a " +
			"checksummed manifest (runferry archive check PATH), and one snapshot per job that changed " +
			"something. PATH may be a prefix in S3 or an S3-compatible store (s3://BUCKET/PREFIX, credentials " +
			"from the AWS environment, shared config or instance role; never in the location), in Google Cloud " +
			"Storage (gs://BUCKET/PREFIX, credentials from Google's Application Default Credentials; an emulator " +
			"through endpoint=http://HOST:PORT or STORAGE_EMULATOR_HOST) or in Azure Blob " +
			"Storage (azblob://CONTAINER/PREFIX, credentials from the Azure environment). Runs are identified by origin: a repeated copy adds nothing, a changed run replaces " +
			"its earlier version. Format: docs/ARCHIVE.md.",
		Options: append([]location.Option{{Name: "verify", Default: "size",
			Help: "How a run already archived unchanged is confirmed whole before it is skipped: size " +
				"(each of its data files and artifact bodies is there with its recorded size) or sha256 " +
				"(each is also read and hashed; use it to repair files that 'runferry check' or 'runferry " +
				"archive check' found damaged). A run whose files are not whole is written again, which repairs them."}}, archive.LocationOptions()...),
		Example: "runferry sync mlflow+https://mlflow.example.com parquet:/backups/mlflow",
	}
}

// Open opens the sink at loc.Path (the sinks.Factory Open function).
func Open(_ context.Context, loc location.Location) (sinks.Sink, error) {
	path, err := archive.StoreLocation(loc.Path, loc.URL.Query())
	if err != nil {
		return nil, fault.Fatal(err)
	}
	s, err := New(path)
	if err != nil {
		return nil, err
	}
	switch v := loc.Query("verify"); v {
	case "", "size":
	case "sha256":
		s.hashBodies = true
	default:
		return nil, fault.Fatal(fmt.Errorf("option verify=%q: want size or sha256", v))
	}
	return s, nil
}

// Factory returns the registry entry of the sink.
func Factory() sinks.Factory { return sinks.Factory{Description: Description(), Open: Open} }

// Sink writes to one archive. Opening it changes nothing on disk (a dry
// run opens the sink only to ask FindRun); the first write takes the
// archive's writer lock, which is held until Close.
type Sink struct {
	// FormerOrigins is the engine's word on former origins
	// (sinks.FormerOriginsSetter): FindRun reports a run held under one,
	// OpenRun (or Commit) retires such copies, and an experiment held under
	// one takes the new origin.
	sinks.FormerOrigins

	path  string
	state *archive.State // what the archive held when opened, for FindRun before the first write
	// hashBodies makes VerifyRun hash every body instead of checking sizes.
	hashBodies bool

	mu        sync.Mutex
	w         *archive.Writer
	store     archive.Store // opened in New; shared by the writer, VerifyRun and the sink's reads
	source    string
	traces    map[string][]schema.Trace // by experiment origin, until FlushTraces
	closeOnce sync.Once
	closeErr  error

	// wholeBlobs are the artifact bodies (by SHA-256) VerifyRun found
	// whole in this job: runs share bodies (the same requirements.txt),
	// and a body named by its content stays whole while a run refers to
	// it, so each is checked once a job.
	wholeBlobs map[string]bool
}

var (
	_ sinks.Sink        = (*Sink)(nil)
	_ sinks.LateRunSink = (*Sink)(nil)
	_ sinks.RunFinder   = (*Sink)(nil)
	_ sinks.RunVerifier = (*Sink)(nil)
	_ sinks.Appender    = (*Sink)(nil)
	_ sinks.BaseFinder  = (*Sink)(nil)

	_ sinks.FormerOriginsSetter = (*Sink)(nil)
)

// New opens the archive at path for writing; the folder is created by the
// first write. A damaged manifest is a fatal error. The archive's state is
// held with its run entries spilled (archive.LoadStateSpilledIn), so that
// what a sync holds does not grow with the size of the archive's entries.
func New(path string) (*Sink, error) {
	// One store for the sink's reads and its writer: an object store's
	// open loads the cloud's configuration and sends a request of its own.
	store, err := archive.OpenStore(path)
	if err != nil {
		return nil, fault.Fatal(fmt.Errorf("opening archive: %w", err))
	}
	st, err := archive.LoadStateSpilledIn(store)
	if err != nil {
		store.Close()
		return nil, fault.Fatal(fmt.Errorf("opening archive: %w", err))
	}
	return &Sink{path: path, state: st, store: store}, nil
}

// retireFormerExperiments removes the experiments archived under the
// former origins of exp that no run is left in.
func (s *Sink) retireFormerExperiments(w *archive.Writer, exp schema.Ref) error {
	for _, f := range s.FormerKeys(exp) {
		if _, err := w.RetireExperiment(f); err != nil {
			return fmt.Errorf("parquet sink: retiring experiment %s: %w", f, err)
		}
	}
	return nil
}

// writer returns the archive writer, opening it (and creating the archive)
// on first use.
func (s *Sink) writer() (*archive.Writer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != nil {
		return s.w, nil
	}
	if s.store == nil {
		st, err := archive.OpenStore(s.path)
		if err != nil {
			return nil, fault.Fatal(fmt.Errorf("opening archive: %w", err))
		}
		s.store = st
	}
	w, err := archive.OpenWriterIn(s.path, s.store)
	if err != nil {
		if errors.Is(err, archive.ErrLocked) {
			return nil, fault.Fatal(err)
		}
		return nil, fault.Fatal(fmt.Errorf("opening archive: %w", err))
	}
	if s.source != "" {
		w.SetSource(s.source)
	}
	s.w = w
	return w, nil
}

// SetSource records the redacted source location in the manifest.
func (s *Sink) SetSource(redacted string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.source = redacted
	if s.w != nil {
		s.w.SetSource(redacted)
	}
}

// Limits: runs in flight are capped to bound memory (each holds a sort
// buffer and a row group); batches are unlimited.
func (s *Sink) Limits() sinks.Limits { return sinks.Limits{MaxInFlight: 4} }

// PutExperiment stores e unless stored unchanged; the id is its origin.
func (s *Sink) PutExperiment(_ context.Context, e schema.Experiment) (string, error) {
	if err := e.Validate(); err != nil {
		return "", fault.Permanent(err)
	}
	if s.unchangedExperiment(e) {
		return e.Origin.String(), nil
	}
	w, err := s.writer()
	if err != nil {
		return "", err
	}
	if err := w.PutExperiment(e); err != nil {
		return "", denied(fmt.Errorf("parquet sink: experiment %s: %w", e.Origin, err))
	}
	if err := s.retireFormerExperiments(w, e.Origin); err != nil {
		return "", err
	}
	return e.Origin.String(), nil
}

// unchangedExperiment reports whether putting e needs no writer: none is
// open yet, the archive held e as it is now when the sink was opened (with
// its files whole), and it held no experiment under a former origin of e (to be
// retired). A sync that changes nothing then leaves the archive untouched
// and does not pay for opening a writer (its recovery walks every table
// folder).
func (s *Sink) unchangedExperiment(e schema.Experiment) bool {
	s.mu.Lock()
	open := s.w != nil
	s.mu.Unlock()
	if open {
		return false
	}
	st, err := s.openStore()
	if err != nil || !s.state.ExperimentCurrent(st, e) {
		return false
	}
	for _, f := range s.FormerKeys(e.Origin) {
		if s.state.HoldsExperiment(f) {
			return false
		}
	}
	return true
}

// TakesRunsLate says the run writers of OpenRun are sinks.RunSetters: the
// run's fields are written at Commit.
func (s *Sink) TakesRunsLate() bool { return true }

// OpenRun starts writing r. The archive keeps what it held for r.Origin
// until Commit replaces it whole, so re-opening never doubles anything.
func (s *Sink) OpenRun(_ context.Context, expID string, r schema.Run) (sinks.RunWriter, error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	w, err := s.writer()
	if err != nil {
		return nil, err
	}
	if !w.HasExperiment(expID) || r.Experiment.String() != expID {
		return nil, fault.Permanent(fmt.Errorf("parquet sink: run %s: unknown experiment id %q", r.Origin, expID))
	}
	rw := w.OpenRun(r)
	rw.Replace(s.FormerKeys(r.Origin))
	return &writer{rw: rw, done: func() error { return s.retireFormerExperiments(w, r.Experiment) }}, nil
}

// AppendRun extends the run the archive holds for r.Origin
// (sinks.Appender): its metrics files stay current and the points written
// go to one more metrics file after them, while its other tables are
// written anew from what the writer is given (files given again unchanged
// are kept, not stored again, and those no longer given leave its
// artifacts table: sinks.FileDeltaReporter); Commit publishes the new
// entry (with its mark) in one journal line, so the next snapshot holds
// only the delta and the run's earlier tables, and readers (read_parquet
// over metrics/, the archive source) still see each point once. An append
// cut short leaves the run as it was, with its mark, so the next one
// starts from the same base. An append that holds nothing the copy does
// not (no point, the same files, metadata, console lines and rich values:
// appendCheck) writes nothing at Commit and reports the run unchanged
// (sinks.UnchangedReporter); a RUNNING run, or one given without a
// fingerprint (a file of it could not be read), is always written. It refuses (sinks.ErrCannotAppend) a run the
// archive does not hold with the mark base.Mark (also one held under a
// former origin, whose metrics files name that origin), or whose metrics
// files are not all there with their recorded sizes.
func (s *Sink) AppendRun(_ context.Context, expID string, r schema.Run, base sinks.AppendBase) (sinks.RunWriter, error) {
	if err := r.Validate(); err != nil {
		return nil, fault.Permanent(err)
	}
	w, err := s.writer()
	if err != nil {
		return nil, err
	}
	if !w.HasExperiment(expID) || r.Experiment.String() != expID {
		return nil, fault.Permanent(fmt.Errorf("parquet sink: run %s: unknown experiment id %q", r.Origin, expID))
	}
	prev, ok := w.Run(r.Origin.String())
	if !ok {
		for _, f := range s.FormerKeys(r.Origin) {
			if _, held := w.Run(f); held {
				// Its metrics files name the former origin in every row
				// and live under its folder: they cannot be kept.
				return nil, sinks.CannotAppend(fmt.Sprintf("the archive holds the run under its former origin %s, whose metrics files name that origin", f))
			}
		}
	}
	switch {
	case !ok:
		return nil, sinks.CannotAppend("the archive does not hold the run")
	case prev.Mark == "" || prev.Mark != base.Mark:
		return nil, sinks.CannotAppend("the archive's copy is not the one the ledger recorded (written by another job, or the record of its last commit was lost)")
	}
	var kept []archive.FileEntry
	for _, f := range prev.Files {
		if f.Table == archive.TableMetrics {
			kept = append(kept, f)
		}
	}
	problem, err := s.verify(archive.RunEntry{Files: kept}, false)
	if err != nil {
		return nil, fmt.Errorf("parquet sink: run %s: %w", r.Origin, err)
	}
	if problem != "" {
		return nil, sinks.CannotAppend("the archive's copy lost points: " + problem)
	}
	rw, err := w.AppendRun(r, prev)
	if errors.Is(err, archive.ErrDamaged) {
		return nil, sinks.CannotAppend("the archive's copy lost its files table: " + err.Error())
	}
	if err != nil {
		return nil, fmt.Errorf("parquet sink: %w", err)
	}
	rw.Replace(s.FormerKeys(r.Origin))
	return &writer{rw: rw, done: func() error { return s.retireFormerExperiments(w, r.Experiment) },
		sink: s, check: newAppendCheck(prev, r)}, nil
}

// HeldFiles lists the files with a body that the archive's copy of origin
// holds, when it is the copy base describes (sinks.HeldFilesLister): an
// append keeps such a file when the body given again has its SHA-256
// (archive.RunWriter.WriteArtifact). It reads the run's artifacts table.
func (s *Sink) HeldFiles(_ context.Context, origin schema.Ref, base sinks.AppendBase) (map[string]sinks.HeldFile, bool, error) {
	e, ok := s.committed(origin)
	if !ok || e.Mark == "" || e.Mark != base.Mark {
		return nil, false, nil
	}
	st, err := s.openStore()
	if err != nil {
		return nil, false, err
	}
	rows, err := archive.ArtifactsIn(st, e)
	if err != nil {
		return nil, false, err
	}
	out := map[string]sinks.HeldFile{}
	for _, r := range rows {
		if r.SHA256 != nil && r.Size != nil {
			out[r.Path] = sinks.HeldFile{Size: *r.Size, SHA256: *r.SHA256}
		}
	}
	return out, true, nil
}

// FindRun reports a committed run as complete with its fingerprint, one
// archived under a former origin as such; anything else is missing (an
// unfinished write leaves no trace).
func (s *Sink) FindRun(_ context.Context, origin schema.Ref) (sinks.RunState, string, error) {
	if e, ok := s.committed(origin); ok {
		return sinks.RunComplete, e.Fingerprint, nil
	}
	for _, f := range s.FormerOf(origin) {
		if _, held := s.committed(f); held {
			return sinks.RunUnderFormerOrigin, "", nil
		}
	}
	return sinks.RunMissing, "", nil
}

// FindBase implements sinks.BaseFinder: the committed run's folder key,
// and the mark and cursors document its entry holds (archive.RunEntry),
// so that a sync without a ledger, or whose ledger did not record the
// archive's last commit, appends from the archive's own record. A run
// committed without cursors (by a runferry before format version 5, or
// by a sink that was given none) is not found.
func (s *Sink) FindBase(_ context.Context, origin schema.Ref) (destID, mark string, cursors []byte, ok bool, err error) {
	e, held := s.committed(origin)
	if !held || e.Mark == "" || e.Cursors == "" {
		return "", "", nil, false, nil
	}
	return archive.EntityKey(e.Origin), e.Mark, []byte(e.Cursors), true, nil
}

func (s *Sink) committed(origin schema.Ref) (archive.RunEntry, bool) {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	if w != nil {
		return w.Run(origin.String())
	}
	return s.state.Manifest.Run(origin.String())
}

// VerifyRun reports a run the archive does not hold, and the committed
// run's data files and artifact bodies that are missing or have another
// size than recorded (with
// ?verify=sha256, also another SHA-256), so that the engine writes the run
// again, which stores them anew. It reads no file unless ?verify=sha256.
// A body found whole for one run is not checked again for another in the
// same job.
func (s *Sink) VerifyRun(_ context.Context, origin schema.Ref) (string, error) {
	e, ok := s.committed(origin)
	if !ok {
		// The engine asks only about a run its ledger calls committed
		// here: the archive lost it since (removed, or restored from an
		// older copy), and the run is written again.
		return "the archive's current state does not list the run (the archive was removed or replaced since its commit)", nil
	}
	s.mu.Lock()
	var blobs []archive.BlobEntry
	for _, b := range e.Blobs {
		if !s.wholeBlobs[b.SHA256] {
			blobs = append(blobs, b)
		}
	}
	s.mu.Unlock()
	e.Blobs = blobs
	problem, err := s.verify(e, s.hashBodies)
	if err != nil {
		return "", fmt.Errorf("parquet sink: run %s: %w", origin, err)
	}
	if problem == "" && len(blobs) > 0 {
		s.mu.Lock()
		if s.wholeBlobs == nil {
			s.wholeBlobs = map[string]bool{}
		}
		for _, b := range blobs {
			s.wholeBlobs[b.SHA256] = true
		}
		s.mu.Unlock()
	}
	return problem, nil
}

// verify is archive.VerifyRunFiles through one store opened on first use
// (an object-storage client is opened once, not per run).
func (s *Sink) verify(e archive.RunEntry, hash bool) (string, error) {
	st, err := s.openStore()
	if err != nil {
		return "", err
	}
	return archive.VerifyRunFilesIn(st, e, hash)
}

// openStore returns the sink's store for reading, opened on first use.
func (s *Sink) openStore() (archive.Store, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.store == nil {
		st, err := archive.OpenStore(s.path)
		if err != nil {
			return nil, err
		}
		s.store = st
	}
	return s.store, nil
}

// Close publishes the snapshot and releases the archive.
func (s *Sink) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.w != nil {
			s.closeErr = s.w.Close()
		}
		if s.store != nil {
			// The writer's store too (OpenWriterIn): its error counts
			// when a writer wrote through it.
			if err := s.store.Close(); err != nil && s.w != nil && s.closeErr == nil {
				s.closeErr = err
			}
		}
	})
	return s.closeErr
}

type writer struct {
	rw   *archive.RunWriter
	done func() error // after the commit: retire emptied former experiments

	// Appending: what the writer was given, to commit nothing when the
	// run equals the copy held (see appendCheck), and the sink to read it.
	sink      *Sink
	check     *appendCheck
	unchanged bool
}

var (
	_ sinks.RunWriter       = (*writer)(nil)
	_ sinks.ArtifactWriter  = (*writer)(nil)
	_ sinks.LogWriter       = (*writer)(nil)
	_ sinks.RichValueWriter = (*writer)(nil)
	_ sinks.Fingerprinted   = (*writer)(nil)
	_ sinks.Identified      = (*writer)(nil)
	_ sinks.Marked          = (*writer)(nil)
	_ sinks.RunSetter       = (*writer)(nil)
	_ sinks.CursorKeeper    = (*writer)(nil)
	// The metrics file is encoded and stored while the run's rich values,
	// logs and artifacts are read (archive.RunWriter.EndMetrics).
	_ sinks.MetricsEnder = (*writer)(nil)
	// Appending, files given again unchanged are kept, not stored again,
	// and those not given again are left out of the new snapshot.
	_ sinks.FileDeltaReporter = (*writer)(nil)
)

func (w *writer) WriteMetrics(_ context.Context, batch []schema.Metric) error {
	if w.check != nil {
		w.check.points += int64(len(batch))
	}
	return denied(w.rw.WriteMetrics(batch))
}

// SetRun replaces the run's fields before Commit (sinks.RunSetter).
func (w *writer) SetRun(r schema.Run) error {
	if err := r.Validate(); err != nil {
		return fault.Permanent(err)
	}
	if err := w.rw.SetRun(r); err != nil {
		return fault.Permanent(err)
	}
	if w.check != nil {
		w.check.run = r
	}
	return nil
}

func (w *writer) EndMetrics(context.Context) error {
	return denied(w.rw.EndMetrics())
}

func (w *writer) WriteRichValues(_ context.Context, values []schema.RichValue) error {
	if w.check != nil {
		w.check.addRich(w.check.prev.Origin, values)
	}
	return denied(w.rw.WriteRichValues(values))
}

func (w *writer) WriteLogs(_ context.Context, lines []schema.LogLine) error {
	if w.check != nil {
		w.check.addLogs(w.check.prev.Origin, lines)
	}
	return denied(w.rw.WriteLogs(lines))
}

// denied makes an error of a write the object store refused for lack of
// permission fatal: every later write would be refused too, so the job
// stops (exit 1) instead of failing each run in turn. What was committed
// before stays committed; a re-run once the permission is back completes.
func denied(err error) error {
	if errors.Is(err, archive.ErrDenied) {
		return fault.Fatal(err)
	}
	return err
}

func (w *writer) WriteArtifact(_ context.Context, a schema.Artifact, body io.Reader) error {
	err := w.rw.WriteArtifact(a, body)
	if w.check != nil && err == nil {
		w.check.addArtifact(a, body != nil)
	}
	if errors.Is(err, archive.ErrSizeMismatch) {
		return fault.Permanent(err)
	}
	return denied(err)
}

func (w *writer) SetFingerprint(fp string) {
	w.rw.SetFingerprint(fp)
	if w.check != nil {
		w.check.fingerprint = fp
	}
}
func (w *writer) SetMark(mark string) {
	w.rw.SetMark(mark)
	if w.check != nil {
		w.check.mark = mark
	}
}

// SetCursors implements sinks.CursorKeeper: the document goes into the
// run's manifest entry with the commit.
func (w *writer) SetCursors(doc []byte) { w.rw.SetCursors(doc) }

// FileDelta implements sinks.FileDeltaReporter (see archive.RunWriter).
func (w *writer) FileDelta() (keptFiles, keptBytes, deletedFiles int64) {
	return w.rw.FileDelta()
}
func (w *writer) DestID() string { return w.rw.DestID() }

// Commit publishes the run, unless it was appended to and holds nothing
// the archive's copy does not (appendCheck): then nothing is written, the
// copy stays as it is with its snapshot, mark and fingerprint, and
// Unchanged says so. A copy that cannot be read to compare is written
// again, as without the comparison.
func (w *writer) Commit(context.Context) error {
	if w.check != nil {
		kept, _, deleted := w.rw.FileDelta()
		if st, err := w.sink.openStore(); err == nil {
			if same, err := w.check.unchanged(st, kept, deleted); err == nil && same {
				w.unchanged = true
				return w.rw.Abort()
			}
		}
	}
	if err := w.rw.Commit(); err != nil {
		return denied(fmt.Errorf("parquet sink: %w", err))
	}
	return w.done()
}
func (w *writer) Abort(context.Context) error { return w.rw.Abort() }

// Unchanged implements sinks.UnchangedReporter: after Commit, whether the
// appended run equalled the archive's copy, so that nothing was written.
func (w *writer) Unchanged() bool { return w.unchanged }

var _ sinks.HeldFilesLister = (*Sink)(nil)
