// Package sinks defines the contract every sink adapter implements, the
// optional abilities a sink or run writer may add, and the registry that
// picks an adapter by the scheme of a location string.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/runferry/runferry/schema"
)

// Sink writes experiment-tracking data from the common schema.
//
// Identity is the sink's job: everything it writes carries the origin it
// came from, so that repeating a transfer never duplicates anything. Methods
// are safe for concurrent use up to Limits().MaxInFlight runs at once.
// Errors are classified with package fault.
type Sink interface {
	// PutExperiment creates the experiment, or finds the one written earlier
	// from the same origin, and returns the sink's id for it. Idempotent.
	PutExperiment(ctx context.Context, e schema.Experiment) (id string, err error)
	// OpenRun starts writing the run from r.Origin into experiment expID (an
	// id returned by PutExperiment). If an earlier attempt left the run
	// incomplete, OpenRun re-opens it and the sink guarantees that, once
	// Commit returns, the run holds exactly what this writer was given:
	// nothing from the earlier attempt is doubled. Calling OpenRun twice
	// for one origin never creates two runs.
	OpenRun(ctx context.Context, expID string, r schema.Run) (RunWriter, error)
	// Limits declares what the sink accepts; the engine stays within it.
	Limits() Limits
	// Close flushes and releases the sink; it is safe to call more than once.
	Close() error
}

// RunWriter receives one run's data. It is used by one goroutine at a time.
type RunWriter interface {
	// WriteMetrics writes at most Limits().MaxMetricsPerWrite points. The
	// writer may keep the slice only until the call returns.
	WriteMetrics(ctx context.Context, batch []schema.Metric) error
	// Commit makes the run complete and durable. It is the only commit
	// point: the engine records a run as done only after Commit returned nil.
	Commit(ctx context.Context) error
	// Abort releases what the writer holds after a failure; the run stays
	// incomplete and a later OpenRun resumes it.
	Abort(ctx context.Context) error
}

// Limits are a sink's declared limits. Zero means no limit of the sink's own.
type Limits struct {
	MaxInFlight        int // runs written at once
	MaxMetricsPerWrite int // points per WriteMetrics call
	// AdaptiveWrites asks the engine to adapt how many WriteMetrics calls
	// are in flight at once to the number that writes the most points per
	// second, starting at the runs in flight and moving between one and
	// that number: set by sinks whose writes all land on one shared server
	// of unknown capacity.
	AdaptiveWrites bool
}

// ArtifactWriter is a RunWriter that stores files.
type ArtifactWriter interface {
	// WriteArtifact stores body as the run's file a.Path; a.Size is the
	// expected length (-1 if unknown) and a mismatch is an error.
	WriteArtifact(ctx context.Context, a schema.Artifact, body io.Reader) error
}

// LogWriter is a RunWriter that stores console output.
type LogWriter interface {
	WriteLogs(ctx context.Context, lines []schema.LogLine) error
}

// RichValueWriter is a RunWriter that stores non-numeric history values.
type RichValueWriter interface {
	WriteRichValues(ctx context.Context, values []schema.RichValue) error
}

// RunState is what a sink holds for one origin.
type RunState int

// The states FindRun reports.
const (
	RunMissing    RunState = iota // never written
	RunIncomplete                 // written in part; OpenRun resumes it
	RunComplete                   // committed
	// RunUnderFormerOrigin: nothing is held under the origin, but a copy
	// is held under one of its former origins (see FormerOriginsSetter).
	// The engine writes the run again, and OpenRun retires that copy.
	RunUnderFormerOrigin
)

// RunFinder is a sink that can say what it holds for a run's origin, so the
// engine can skip committed runs even without its ledger.
type RunFinder interface {
	FindRun(ctx context.Context, origin schema.Ref) (state RunState, fingerprint string, err error)
}

// FormerOriginsSetter is a sink that recognises what it holds under the
// former origins of an experiment or run (sources.FormerOriginer): the
// origins earlier runferry versions gave it. The engine calls
// SetFormerOrigins before it looks up or writes anything from origin. From
// then on, FindRun(origin) reports RunUnderFormerOrigin when nothing is held
// under origin but a copy is held under a former origin; OpenRun retires
// every copy held under a former origin as it retires earlier attempts, so
// that once Commit returns the sink holds one copy, under origin; and
// PutExperiment takes the place of an experiment held under a former
// origin once no run is left in it.
type FormerOriginsSetter interface {
	SetFormerOrigins(origin schema.Ref, former []schema.Ref)
}

// RunVerifier is a sink that can cheaply confirm that a committed run is
// still whole (for example that every file it stored is still there), so
// that a re-run repairs what the destination lost after the commit even
// though the ledger or FindRun says the run is unchanged. The engine calls
// it for every run it would otherwise skip as unchanged, so it must cost
// little (no download of the run's content).
type RunVerifier interface {
	// VerifyRun returns "" when the committed run with origin is whole,
	// else what is missing or damaged, naming the file. A run the sink
	// does not hold is not its concern ("", nil), except to a sink that
	// keeps each committed run until someone deletes it there (a
	// database): the engine asks only about runs its ledger or FindRun
	// calls committed, so such a sink names the run's absence.
	VerifyRun(ctx context.Context, origin schema.Ref) (problem string, err error)
}

// CopyRestorer is a sink whose users can delete a committed copy without
// it being gone: MLflow keeps a run or experiment deleted through its API or
// UI (runs/delete, experiments/delete) in its deleted lifecycle stage,
// where FindRun still finds it. The engine calls RestoreCopy for every run
// it would otherwise skip as unchanged (ledger or FindRun), unless the
// source deleted the run or its experiment, so that a re-run restores what
// the destination no longer shows, as it rewrites what it lost. It must
// cost little: no read of the run's content.
type CopyRestorer interface {
	// RestoreCopy restores the committed copy of the run from origin when
	// the destination shows it, or its experiment, deleted though it was
	// not committed as deleted, keeping its id and content. It returns what
	// it restored, naming it ("" when nothing was deleted); with dryRun it
	// changes nothing and returns what it would restore.
	RestoreCopy(ctx context.Context, origin schema.Ref, dryRun bool) (restored string, err error)
}

// Fingerprinted is a RunWriter that stores the source fingerprint of the run
// with the commit, so that FindRun can report it for incremental sync.
type Fingerprinted interface {
	SetFingerprint(fp string)
}

// Checker is a sink that can prove, before any write, that it is reachable
// and that its credentials are good. Errors are fatal.
type Checker interface {
	Check(ctx context.Context) error
}

// ExperimentPrefixer is a sink that keeps runs written under an experiment
// name prefix apart from those written under another one (MLflow: the
// experiment-prefix option), so that copies under two prefixes are two
// copies. The CLI's --experiment-prefix sets it where a sink has it, and
// renames experiments on their way (a transform) where it does not.
// SetExperimentPrefix is called before any write; it fails when the
// location already names a different prefix.
type ExperimentPrefixer interface {
	SetExperimentPrefix(prefix string) error
}

// SharedView is a sink whose contents every user of the destination sees
// (a tracking server's UI), as opposed to an archive. The CLI leaves
// personal data (host names, login names, e-mail addresses, local paths,
// command lines, home folders: transform.DropPersonal) out of what it
// writes into such a sink unless --keep-personal asks for it; the run's
// user is kept unless --drop-user.
type SharedView interface {
	SharedView()
}

// FileDeltaReporter is a RunWriter that, appending (Appender), leaves the
// files the destination holds unchanged as they are rather than sending
// them again, and deletes those the source no longer has. Once Commit
// returned, FileDelta says how many files (of how many bytes) were kept,
// not sent, and how many were deleted; the engine counts only the files
// sent as copied.
type FileDeltaReporter interface {
	FileDelta() (keptFiles, keptBytes, deletedFiles int64)
}

// UnchangedReporter is a RunWriter that, appending (Appender), may find
// the run it was given equal to the copy the destination holds (no new
// point, the same mark, every file kept, the same metadata, console lines
// and rich values; never a RUNNING run or one given the fingerprint "")
// and then write nothing. Once Commit returned,
// Unchanged says whether it did; the engine then reports the run as
// unchanged, not copied, and the ledger records the run's new fingerprint
// with the copy's mark.
type UnchangedReporter interface {
	Unchanged() bool
}

// ContinueReporter is a RunWriter from OpenRun that may continue in
// place, under its destination id, a first copy of the run an earlier
// attempt cut short (never committed), rather than write the run anew.
// Once Commit returned, Continued says whether it did, and how many of
// the points it was given the copy held already and were not sent again.
// The engine then reports the run as continued in place, counting only
// the points sent.
type ContinueReporter interface {
	Continued() (continued bool, keptPoints int64)
}

// CoverageReporter is a RunWriter that says, once Commit returned, what of
// the run it did not hold as given, counted by kind ("param values
// truncated (whole in runferry/run.json)"). Each kind names where the
// original went, or that it is lost. The engine sums the kinds over the job
// for the report and the summary line.
type CoverageReporter interface {
	Coverage() map[string]int64
}

// CoveragePlanner is a sink that can say, without writing, what of a run's
// metadata it would not hold as given, in the kinds of CoverageReporter,
// for a dry run.
type CoveragePlanner interface {
	PlanCoverage(r schema.Run) map[string]int64
}

// ExperimentLinker is a sink whose experiments a person can open in a web
// UI: ExperimentURL returns the address of experiment id (as PutExperiment
// returned it), without credentials. The CLI prints it after a copy.
type ExperimentLinker interface {
	ExperimentURL(id string) string
}

// Identified is a RunWriter that can name the run it wrote in the sink's
// own terms (an MLflow run id, an archive path), for reports and the ledger.
type Identified interface {
	DestID() string
}

// Appender is a Sink that can extend a run it committed earlier, instead of
// writing it again, when the source run grew (new points, log lines,
// files, changed metadata) without changing what was copied.
//
// The engine calls AppendRun only for a run its ledger recorded as
// committed with a mark (Marked) and cursors, under r.Origin or under one
// of its former origins (FormerOriginsSetter, set before): a sink that
// finds no copy under r.Origin looks under those, and either extends that
// copy, which from then on is held under r.Origin only, or refuses
// (ErrCannotAppend) naming the former origin. The writer it returns is
// then given:
//   - r, the run's metadata now, whole (the sink replaces what changed);
//   - through WriteMetrics, only the points of each key beyond the
//     base.LastStep cursors: the first Count points of every key in the
//     source's order are those the sink holds (the engine verified their
//     digest), and every other point comes after them;
//   - console output, rich values and files whole, as for OpenRun (the
//     sink replaces what it held of them).
//
// Once Commit returns, the run must read back exactly as a fresh copy of
// the grown run would, under the same destination id. The sink must prove
// that it holds what base says before it changes anything (the mark it
// stored at the last commit equals base.Mark) and must make the run
// recognisably incomplete before its first write, so that an append cut
// short is never taken for a committed run: the next AppendRun for it
// returns ErrCannotAppend, and the engine writes the run again.
//
// AppendRun, or any write or Commit of its writer, returns an error
// wrapping ErrCannotAppend (see CannotAppend) when the sink cannot extend
// the run as it holds it (it holds another mark, the run was deleted in
// the destination, a param the sink cannot change changed, a point falls
// at a step the sink held already); the engine then aborts the writer and
// writes the run whole with OpenRun, and the report says why.
type Appender interface {
	AppendRun(ctx context.Context, expID string, r schema.Run, base AppendBase) (RunWriter, error)
}

// AppendBase is what the engine's ledger says a sink committed of a run.
type AppendBase struct {
	DestID string // the destination id reported at the last commit (Identified), if any
	Mark   string // the mark given to the last commit (Marked)
	// LastStep is, by metric key, the step of the last point held; keys
	// absent from it have no point held.
	LastStep map[string]int64
}

// HeldFilesLister is an Appender whose appends keep the files the copy
// holds unchanged (FileDeltaReporter). HeldFiles lists, for a dry run,
// the files with a body that the copy of origin holds, by path, when it is
// the copy base describes (ok false otherwise, or when the sink cannot
// tell): the dry run then counts only the files an append would send. It
// writes nothing.
type HeldFilesLister interface {
	HeldFiles(ctx context.Context, origin schema.Ref, base AppendBase) (files map[string]HeldFile, ok bool, err error)
}

// HeldFile is a file a run's copy holds with its body, as an append
// compares a file given again with it: kept when the size and SHA-256 are
// equal (the SHA-256 alone when Size is -1: the sink did not record it).
type HeldFile struct {
	Size   int64
	SHA256 string // hex
	// ByAnnounced says the sink compares the digest the source announces
	// (schema.Artifact.Digest), not the body: a file given without one is
	// stored again.
	ByAnnounced bool
}

// LogDeltaReporter is a RunWriter that, appending (Appender), may keep
// console lines the destination holds unchanged rather than send them
// again. Once Commit returned, LogDelta says how many of the lines it was
// given it kept, not sent; the engine counts only the lines sent.
type LogDeltaReporter interface {
	LogDelta() (keptLines int64)
}

// HeldLogsLister is an Appender whose appends keep console lines the copy
// holds (LogDeltaReporter). HeldLogs returns, for a dry run, a planner for
// the copy of origin when it is the copy base describes (ok false
// otherwise, or when the sink cannot tell): given the run's console lines
// as an append would be given them, it says how many the append would
// keep. It writes nothing.
type HeldLogsLister interface {
	HeldLogs(ctx context.Context, origin schema.Ref, base AppendBase) (plan LogPlanner, ok bool, err error)
}

// LogPlanner is given a run's console lines in order (Add, page by page),
// then says how many of them an append would keep as held (Kept, once).
type LogPlanner interface {
	Add(lines []schema.LogLine) error
	Kept() int64
}

// CursorKeeper is a RunWriter that stores, with the commit, the engine's
// per-key cursors of what it was given (an opaque document), so that a
// job without a ledger can append to the run (BaseFinder).
type CursorKeeper interface {
	SetCursors(doc []byte)
}

// BaseFinder is an Appender that can say, without the engine's ledger,
// what it committed of a run: FindBase returns the destination id, the
// mark and the cursors document (CursorKeeper) stored with the one
// complete copy of origin (or one whose append was cut short, which
// AppendRun continues), or ok false when it holds no such copy (none,
// several, incomplete, or written without cursors). The engine appends
// with it as with a ledger entry; the mark is checked again by AppendRun.
type BaseFinder interface {
	FindBase(ctx context.Context, origin schema.Ref) (destID, mark string, cursors []byte, ok bool, err error)
}

// LateRunSink is a sink whose run writers (those of OpenRun) are
// RunSetters: the engine may open a run with its light header
// (sources.HeaderLister) and give the run in full before Commit.
type LateRunSink interface {
	TakesRunsLate() bool
}

// RunSetter is a RunWriter that takes the run's fields at any time before
// Commit: SetRun replaces the run given to OpenRun by r, which must have
// the same Origin and Experiment (else it is an error of kind permanent,
// and the writer keeps the run it had). Commit stores the run last set.
type RunSetter interface {
	SetRun(r schema.Run) error
}

// MetricsEnder is a RunWriter that can start storing a run's metrics once
// it knows they are complete, while the run's other data arrive.
type MetricsEnder interface {
	// EndMetrics says no WriteMetrics follows for this run (one that does
	// is an error). The engine calls it once the source's metrics are
	// read, before the rich values, logs and artifacts.
	EndMetrics(ctx context.Context) error
}

// Marked is a RunWriter that stores a mark with the commit: a token the
// engine derives from what the run holds, which AppendRun compares with
// the ledger's before it appends.
type Marked interface {
	SetMark(mark string)
}

// ErrCannotAppend says a sink cannot extend a run as it holds it; the
// engine writes the run whole instead.
var ErrCannotAppend = errors.New("cannot append")

// CannotAppend returns an error wrapping ErrCannotAppend that says why.
func CannotAppend(why string) error { return fmt.Errorf("%w: %s", ErrCannotAppend, why) }

// RunDeleter is a sink that can mirror the deletion of a run at the source
// (sync --propagate-deletes) the way its own users delete a run, keeping
// the data recoverable: MLflow moves it to the deleted lifecycle stage,
// an archive writes a tombstone. DeleteRun finds the run's copy by origin
// (destID is what the sink reported at commit, if anything) and reports
// whether it held one; a copy already deleted, or none, is not an error.
type RunDeleter interface {
	DeleteRun(ctx context.Context, origin schema.Ref, destID string) (held bool, err error)
}
