package transfer

import (
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/internal/fault"
)

// Outcome is what happened to one run.
type Outcome string

// The outcomes a run can have.
const (
	Committed   Outcome = "committed"   // written and committed now
	Unchanged   Outcome = "unchanged"   // already committed with the same content
	Verified    Outcome = "verified"    // unchanged, and compared in full with the destination (--force)
	Planned     Outcome = "planned"     // dry run: would be written
	Failed      Outcome = "failed"      // gave up: permanent error or retries exhausted
	Interrupted Outcome = "interrupted" // the job stopped before the run finished
)

// RunResult is the report entry of one run.
type RunResult struct {
	Origin     string  `json:"origin"`
	Experiment string  `json:"experiment"`
	Name       string  `json:"name,omitempty"`
	Outcome    Outcome `json:"outcome"`
	Reason     string  `json:"reason,omitempty"` // why skipped or written again
	DestID     string  `json:"dest_id,omitempty"`
	Points     int64   `json:"points"`
	RichValues int64   `json:"rich_values,omitempty"`
	LogLines   int64   `json:"log_lines,omitempty"`
	Files      int64   `json:"files,omitempty"`
	Bytes      int64   `json:"bytes,omitempty"`
	// Estimated is set in a dry run when Points, Files and Bytes are the
	// source's estimate (sources.Estimator, sources.FileEstimator), not
	// counted by reading.
	Estimated bool `json:"estimated,omitempty"`
	// FilesNotEstimated is set in a dry run with Estimated when the
	// source's listing did not tell the run's files: Files is 0 and Bytes
	// holds no file bytes it did not tell, which is not "no files".
	FilesNotEstimated bool   `json:"files_not_estimated,omitempty"`
	Attempts          int    `json:"attempts,omitempty"`
	DurationMS        int64  `json:"duration_ms,omitempty"` // all attempts, waits included
	Error             string `json:"error,omitempty"`
	ErrorKind         string `json:"error_kind,omitempty"`
	// Unreachable is set on a failed run whose last error was that a
	// server could not be reached at all.
	Unreachable bool `json:"unreachable,omitempty"`
	// Damage names what the source could not read of the run (the
	// entries of schema.Run.Damage that are not inherited).
	// InheritedDamage names the damage notes the source only carries
	// (schema.Run.InheritedDamage): an earlier copy found them in the
	// original source; this source holds the run as that copy wrote it,
	// notes included, and they travel on to the destination. They are
	// named and counted (Totals.InheritedDamage) but are no gap of this
	// copy.
	Damage          []string `json:"damage,omitempty"`
	InheritedDamage []string `json:"inherited_damage,omitempty"`
	FileProblem     []string `json:"file_problems,omitempty"`
	// InheritedFileProblems names the files the source holds only as an
	// earlier copy's record that it could not copy them from the original
	// source (schema.Artifact.Inherited), as "PATH: PROBLEM": named and
	// counted (Totals.InheritedFileProblems), written on as they were,
	// but no gap of this copy.
	InheritedFileProblems []string `json:"inherited_file_problems,omitempty"`
	// Coverage counts, by kind, what the destination did not hold as
	// given (sinks.CoverageReporter) and what a transform left out.
	Coverage map[string]int64 `json:"coverage,omitempty"`
	// Appended says the run was extended in place (sinks.Appender): the
	// destination kept KeptPoints points it held from an earlier job and
	// Points counts only the new ones. Console output and rich values are
	// sent whole and counted whole, unless the sink keeps console lines it
	// holds unchanged (sinks.LogDeltaReporter: MLflow, which holds them in
	// segments): then LogLines counts the lines sent and KeptLogLines
	// those held and not sent again. Files are too, unless the sink keeps
	// unchanged files (sinks.FileDeltaReporter): then Files and Bytes
	// count only the files sent (new or changed), KeptFiles those the
	// destination held unchanged, and DeletedFiles those it deleted since
	// the source no longer has them. In a dry run, Appended says the run
	// is to be appended to (planned; Points, KeptPoints as the append
	// would count them: the ledger's cursors compared with the source's
	// history); Files, Bytes and KeptFiles as the append would count
	// them when the sink lists the files its copy holds
	// (sinks.HeldFilesLister), else Files and Bytes count every file;
	// LogLines and KeptLogLines likewise (sinks.HeldLogsLister), else
	// LogLines counts every console line.
	Appended bool `json:"appended,omitempty"`
	// Continued says the run was written by continuing in place, under
	// the same DestID, a first copy an earlier attempt cut short
	// (sinks.ContinueReporter): KeptPoints points the copy held already
	// were not sent again, and Points counts only those sent.
	Continued    bool  `json:"continued,omitempty"`
	KeptPoints   int64 `json:"kept_points,omitempty"`
	KeptFiles    int64 `json:"kept_files,omitempty"`
	DeletedFiles int64 `json:"deleted_files,omitempty"`
	KeptLogLines int64 `json:"kept_log_lines,omitempty"`

	// Restored names what the destination showed deleted of the run's
	// copy and the job restored (sinks.CopyRestorer), keeping its id and
	// content: the copy's run, or its experiment and run. In a dry run,
	// what would be restored.
	Restored string `json:"restored,omitempty"`

	// keys and mark are the run's metric cursors once written, for the
	// ledger.
	keys []state.KeyCursor
	mark string
	// sameAsHeld: the sink found the run equal to its copy and wrote
	// nothing (sinks.UnchangedReporter); the outcome is Unchanged.
	sameAsHeld bool
}

// ExperimentResult is one experiment a job wrote: the source's origin and
// name, the destination's id, and, for sinks with a web UI
// (sinks.ExperimentLinker), the address that opens it there.
type ExperimentResult struct {
	Origin string `json:"origin"`
	Name   string `json:"name"`
	DestID string `json:"dest_id"`
	URL    string `json:"url,omitempty"`
}

// Report is the result of a job. It is returned even when the job failed,
// so the caller can say what finished.
type Report struct {
	// FormatVersion is the version of this document's shape
	// (ReportFormatVersion; docs/REPORT.md).
	FormatVersion int `json:"format_version"`
	// Version is the runferry that ran the job; Options the job's options
	// as given (redacted), both set by the caller.
	Version  string            `json:"runferry_version,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
	Source   string            `json:"source"`
	Sink     string            `json:"sink"`
	DryRun   bool              `json:"dry_run,omitempty"`
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Runs     []RunResult       `json:"runs"`
	// Deleted are the runs deleted at the source since the previous job
	// (see DeletedRun), by origin.
	Deleted  []DeletedRun `json:"deleted,omitempty"`
	Totals   Totals       `json:"totals"`
	Timings  Timings      `json:"timings"`
	Fatal    string       `json:"fatal,omitempty"`
	Canceled bool         `json:"interrupted,omitempty"`
	// Experiments lists the experiments written (runs committed into them,
	// or their metadata), sorted by name.
	Experiments []ExperimentResult `json:"experiments,omitempty"`
	// Problems lists failures outside any run (an experiment that could
	// not be listed or written).
	Problems []string `json:"problems,omitempty"`
	// Coverage counts, by kind, what did not arrive as given: what the
	// destination holds differently or not at all (summed over the runs
	// counted in Totals), what a transform left out, and what the source
	// left out on purpose (sources.Omitter). Each kind says where the
	// original is, or that it is not copied.
	Coverage map[string]int64 `json:"coverage,omitempty"`
	// Warnings lists what the job was asked for and did not find: a
	// filter pattern that matched nothing.
	Warnings []string `json:"warnings,omitempty"`
	// WritesInFlight is the number of metric writes in flight the engine
	// settled on (the limit in force longest), for a sink that asks for
	// AdaptiveWrites.
	WritesInFlight int `json:"writes_in_flight,omitempty"`
	// Reached says the source and the sink answered (their Check passed, for
	// those that have one). A job that failed before copied nothing, and the
	// CLI prints its error alone, without a summary.
	Reached bool `json:"-"`

	// Registry counts the registered models copied after the runs (nil
	// when the source has none, or holds no registry).
	Registry *RegistryResult `json:"registry,omitempty"`
	// Traces counts the traces copied after the runs (nil when the source
	// has none, or holds no traces).
	Traces *TraceResult `json:"traces,omitempty"`

	// Shard is the share of the runs this job covered ("K/N", --shard;
	// empty when not sharded).
	Shard string `json:"shard,omitempty"`

	// AcceptedGaps says the job was run with Options.AcceptGaps: the
	// source's gaps (Totals.Damaged, Totals.FilesNotCopied) are named and
	// counted but do not fail the job.
	AcceptedGaps bool `json:"accepted_gaps,omitempty"`

	otherShards      int              // selected runs held by other shards, for Totals
	omitted          map[string]int64 // the source's, for Coverage
	registryCoverage map[string]int64 // the model registry's, for Coverage
	traceCoverage    map[string]int64 // the traces', for Coverage
	spill            *spilledRuns     // the run results, with Options.SpillRuns (Results)
}

// ReportFormatVersion is the version of the report's JSON shape. It grows
// when a field changes meaning or goes away; new fields do not change it.
const ReportFormatVersion = 1

// Timings says where a job's time went, in milliseconds.
type Timings struct {
	// PlanMS is until the plan ended (listing, filtering, change
	// detection); TransferMS the rest of the job. A job that transfers
	// while it plans (see job.streams) has written runs within PlanMS.
	PlanMS     int64 `json:"plan_ms"`
	TransferMS int64 `json:"transfer_ms"`
	TotalMS    int64 `json:"total_ms"`
}

// Totals sums the report's runs. Points, Files and Bytes count only runs
// committed (or, in a dry run, planned): what a failed or interrupted run
// wrote before it stopped is not counted as copied.
type Totals struct {
	Runs        int `json:"runs"`
	Committed   int `json:"committed"`
	Unchanged   int `json:"unchanged"`
	Verified    int `json:"verified,omitempty"` // runs compared in full and found whole (--force)
	Planned     int `json:"planned,omitempty"`
	Failed      int `json:"failed"`
	Interrupted int `json:"interrupted,omitempty"`
	// Damaged counts runs written or planned from a damaged source, and
	// runs found unchanged whose copy the ledger records as made from
	// one: all that was readable arrived, the rest is named in the run's
	// Damage. Inherited notes alone do not make a run damaged.
	Damaged int `json:"damaged,omitempty"`
	// InheritedDamage counts the runs of the same outcomes whose source
	// carries damage notes of an earlier copy (RunResult.InheritedDamage):
	// whole copies of a run first read from damaged data. They do not
	// fail the job.
	InheritedDamage int `json:"inherited_damage,omitempty"`
	// FilesNotCopied counts the files the source names but could not give
	// (RunResult.FileProblem) of the runs written or planned, and of runs
	// found unchanged whose copy the ledger records without them.
	FilesNotCopied int `json:"files_not_copied,omitempty"`
	// InheritedFileProblems counts the inherited file problems
	// (RunResult.InheritedFileProblems) of the runs written or planned.
	// They do not fail the job.
	InheritedFileProblems int `json:"inherited_file_problems,omitempty"`
	// FilesNotEstimated counts the planned runs of a dry run whose files
	// the source's estimate could not tell (RunResult.FilesNotEstimated):
	// Files leaves them out.
	FilesNotEstimated int `json:"files_not_estimated,omitempty"`
	// Appended counts the committed runs extended in place (in a dry
	// run, the planned runs to be appended to; see RunResult.Appended).
	Appended int `json:"appended,omitempty"`
	// Continued counts the committed runs written by continuing a first
	// copy cut short in place (see RunResult.Continued).
	Continued int `json:"continued,omitempty"`
	// Restored counts the runs whose copy the destination showed deleted
	// and the job restored (RunResult.Restored; in a dry run, would
	// restore). They count as unchanged or verified too.
	Restored int `json:"restored,omitempty"`
	// OtherShards counts the selected runs another shard holds (--shard):
	// not read, not written here, not in Runs and not in Runs' count.
	OtherShards int `json:"other_shards,omitempty"`
	// Deleted counts the runs deleted at the source (Report.Deleted),
	// DeletesPropagated those whose deletion the destination mirrored.
	Deleted           int   `json:"deleted,omitempty"`
	DeletesPropagated int   `json:"deletes_propagated,omitempty"`
	Points            int64 `json:"points"`
	Files             int64 `json:"files"`
	Bytes             int64 `json:"bytes"`
	// KeptFiles and DeletedFiles sum the committed runs' (see
	// RunResult.KeptFiles).
	KeptFiles    int64 `json:"kept_files,omitempty"`
	DeletedFiles int64 `json:"deleted_files,omitempty"`
}

func (r *Report) total() {
	t := Totals{OtherShards: r.otherShards}
	r.Coverage = nil
	for k, n := range r.omitted {
		r.addCoverage(k, n)
	}
	for k, n := range r.registryCoverage {
		r.addCoverage(k, n)
	}
	for k, n := range r.traceCoverage {
		r.addCoverage(k, n)
	}
	for run, err := range r.Results() {
		if err != nil {
			if r.Fatal == "" {
				r.Fatal = err.Error()
			}
			break
		}
		t.Runs++
		if run.Restored != "" {
			t.Restored++
		}
		switch run.Outcome {
		case Committed:
			t.Committed++
			if run.Appended {
				t.Appended++
			}
			if run.Continued {
				t.Continued++
			}
		case Unchanged:
			t.Unchanged++
		case Verified:
			t.Verified++
		case Planned:
			t.Planned++
			if run.Appended {
				t.Appended++
			}
			if run.FilesNotEstimated {
				t.FilesNotEstimated++
			}
		case Failed:
			t.Failed++
		case Interrupted:
			t.Interrupted++
		}
		// A run found unchanged or verified whose copy the ledger
		// records as incomplete counts as well: its gaps are still there.
		switch run.Outcome {
		case Committed, Planned, Unchanged, Verified:
			if len(run.Damage) > 0 {
				t.Damaged++
			}
			if len(run.InheritedDamage) > 0 {
				t.InheritedDamage++
			}
			t.FilesNotCopied += len(run.FileProblem)
			t.InheritedFileProblems += len(run.InheritedFileProblems)
		}
		// Only what arrived counts: a failed or interrupted run's partial
		// writes are not in the destination as a run anyone can use.
		if run.Outcome == Committed || run.Outcome == Planned {
			for k, n := range run.Coverage {
				r.addCoverage(k, n)
			}
			t.Points += run.Points
			t.Files += run.Files
			t.Bytes += run.Bytes
			t.KeptFiles += run.KeptFiles
			t.DeletedFiles += run.DeletedFiles
		}
	}
	for _, d := range r.Deleted {
		t.Deleted++
		if d.Propagated {
			t.DeletesPropagated++
		}
	}
	r.Totals = t
}

func (r *Report) addCoverage(kind string, n int64) {
	if n == 0 {
		return
	}
	if r.Coverage == nil {
		r.Coverage = map[string]int64{}
	}
	r.Coverage[kind] += n
}

// Verdict is how a job ended, as far as the engine can tell; the command
// maps each verdict to its exit code.
type Verdict int

// The verdicts, from best to worst.
const (
	VerdictOK          Verdict = iota // every selected run committed or unchanged, no problem
	VerdictRunsFailed                 // finished, with failed runs, problems, or (unless AcceptedGaps) runs read from damaged source data or files not copied
	VerdictFatal                      // stopped: nothing more could be done
	VerdictInterrupted                // stopped by cancellation; a re-run resumes
)

// Verdict judges the report and the error Copy returned.
func (r *Report) Verdict(err error) Verdict {
	switch {
	case r.Canceled || fault.KindOf(err) == fault.KindCanceled && err != nil:
		return VerdictInterrupted
	case err != nil || r.Fatal != "":
		return VerdictFatal
	case r.Totals.Failed > 0 || len(r.Problems) > 0:
		return VerdictRunsFailed
	case !r.AcceptedGaps && (r.Totals.Damaged > 0 || r.Totals.FilesNotCopied > 0):
		return VerdictRunsFailed
	}
	return VerdictOK
}
