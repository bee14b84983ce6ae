// Package sources defines the contract every source adapter implements, the
// optional abilities a source may add, and the registry that picks an
// adapter by the scheme of a location string.
package sources

import (
	"context"
	"iter"
	"time"

	"github.com/runferry/runferry/schema"
)

// Source reads experiment-tracking data into the common schema.
//
// Iterator contract, checked by the sourcetest suite:
//   - each element is yielded at most once, in an order that is the same on
//     every call;
//   - on failure the iterator yields one (zero value, err) pair and stops;
//   - it stops promptly when the loop breaks or ctx is done (yielding
//     ctx.Err() in the latter case).
//
// Methods are safe for concurrent use: the engine reads several runs at once.
// Errors are classified with package fault.
type Source interface {
	// Experiments yields every experiment, canonicalised (see schema).
	Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error]
	// Runs yields the runs of the experiment with origin exp, canonicalised.
	Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error]
	// Metrics yields a run's metric history in pages. Within one key, points
	// come in non-decreasing step order; keys may interleave. Pages are owned
	// by the caller once yielded.
	Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error]
	// Close releases the source; it is safe to call more than once.
	Close() error
}

// ArtifactLister is a source that holds files for its runs.
type ArtifactLister interface {
	// Artifacts yields the run's files sorted by path, each with an Open
	// function (nil when Problem says the file cannot be read).
	Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error]
}

// ManifestLister is a source whose runs log or use versioned artifacts
// (W&B Artifacts). The files of the versions a run logged are also among
// its Artifacts, under each version's Folder, with the manifest JSON
// (schema.MarshalManifest) beside them; entries whose content the source
// lacks come there with a Problem.
type ManifestLister interface {
	// Manifests yields the artifact versions the run logged, then those it
	// used, each canonicalised, in the order the run logged or used them.
	Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error]
}

// LogReader is a source that holds console output for its runs.
type LogReader interface {
	// Logs yields the run's console lines in the order they were written.
	Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error]
}

// RichValueReader is a source whose history holds non-numeric values.
type RichValueReader interface {
	// RichValues yields the run's non-numeric history values in step order.
	RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error]
}

// Checker is a source that can prove, before any work, that it is reachable
// and that its credentials are good. Errors are fatal.
type Checker interface {
	Check(ctx context.Context) error
}

// Fingerprinter is a source that can tell cheaply whether a run changed
// since it was last transferred, for incremental sync. Equal fingerprints
// mean equal content. Sources without it are fingerprinted by the engine
// from the run's metadata.
type Fingerprinter interface {
	Fingerprint(ctx context.Context, run schema.Run) (string, error)
}

// ProblemReporter is a source that meets, while listing, things it cannot
// read that belong to no run it can yield: an unreadable folder, a run
// folder without a log. The engine reports each, and the job ends with
// exit code 3, instead of leaving them out without a word. What a yielded
// run lacks belongs in its Run.Damage instead.
type ProblemReporter interface {
	// Problems names each such thing by its path, with the reason. It is
	// called after the experiments and runs were listed.
	Problems(ctx context.Context) []string
}

// FormerOriginer is a source whose origins changed between runferry
// versions (MLflow origins gained the server, W&B origins without an
// entity gained the folder). FormerOrigins returns the origins earlier
// versions gave the experiment or run that now has origin ref, none when it
// is unchanged; it does no I/O. The engine hands them to the sink
// (sinks.FormerOriginsSetter) and looks them up in its ledger, so a copy
// written under a former origin is found and replaced by one under the new
// origin instead of being duplicated.
type FormerOriginer interface {
	FormerOrigins(ref schema.Ref) []schema.Ref
}

// Omitter is a source that leaves things out on purpose (deleted runs and
// experiments unless asked for, kinds of content it does not read) and
// counts them by kind, so that the job's report names them. It is called
// after the experiments and runs were listed.
type Omitter interface {
	Omitted(ctx context.Context) map[string]int64
}

// TransformReader is a source over a runferry destination that can say
// which transform (transform.Chain's String form) the job that wrote a run
// applied to it, so that check compares with the source as transformed.
// It returns "" for none, or for a run runferry did not write.
type TransformReader interface {
	RecordedTransform(ctx context.Context, run schema.Ref) string
}

// Sizer is a source that knows, without reading a run's streams, how many
// metric points and file bytes the run holds, so that progress can be
// shown in points and bytes with a rate and an estimate of the time left.
// ok is false when it cannot tell for this run.
type Sizer interface {
	Size(ctx context.Context, run schema.Run) (points, bytes int64, ok bool)
}

// RunFilter is what a job selects among a source's runs, handed to a
// RunFilterer so it can ask its backend only for those. The zero value
// selects every run.
type RunFilter struct {
	// RunIDs are the --run ids: an origin as `ls` prints it
	// ("wandb:ent/proj/abc"), an origin id ("ent/proj/abc") or a suffix of
	// one after a "/" ("abc"). Empty means all.
	RunIDs []string
	// Since and Until bound Run.Start: Since <= Start < Until; zero means
	// unbounded.
	Since, Until time.Time
}

// RunFilterer is a source that can narrow its run listing to what a filter
// selects (a server-side query filter), so that a job that selects a few
// runs of a large project does not list all of them.
//
// Contract: FilteredRuns yields a subset of Runs(ctx, exp), in the same
// order, that holds every run f selects; it may yield more. The engine
// still applies the filter to what comes back, so a source that narrows
// less than it could (or not at all) stays correct, and one that narrows
// more than f says loses runs: that is a bug. Experiment selection
// (--include/--exclude) is applied by the engine before any run of an
// unselected experiment is listed.
type RunFilterer interface {
	FilteredRuns(ctx context.Context, exp schema.Ref, f RunFilter) iter.Seq2[schema.Run, error]
}

// RunCounter is a source that can count an experiment's runs without
// listing them (W&B's runCount), and whose location can name so many runs
// that listing each is slow (a whole W&B entity): `ls` then lists its
// experiments with their run counts instead of every run.
type RunCounter interface {
	// RunCount is the number of the experiment's runs f may select; like
	// RunFilterer it may count runs f would not select (it is exact for
	// the zero RunFilter).
	RunCount(ctx context.Context, exp schema.Ref, f RunFilter) (int64, error)
	// ListsExperiments reports whether `ls` should list experiments with
	// run counts by default (its --runs flag lists runs all the same).
	ListsExperiments() bool
}

// ListingCounter is a source that can tell cheaply how many runs its
// listing of an experiment will yield before it has yielded them (a W&B
// run folder's index, which it reads before its first run; the run count
// of a W&B cloud project), so that the progress of a job that transfers
// while it lists has a total long before its listing ends.
//
// Contract: ListingCount is how many runs the listing of exp yields (Runs,
// RunHeaders, or FilteredRuns with f when the job narrows its listing
// that way; f is the zero RunFilter otherwise), counted before the job's
// own filters, up-to-date checks and shards; ok is false when the source
// cannot tell without listing. It must be cheap: what the source already
// holds or reads for its listing anyway, or at most one request. The
// count is used for progress only: nothing is decided from it, and a
// listing that yields more or fewer runs (runs made or deleted meanwhile)
// is not an error. It is called on the plan's goroutine, once for each
// experiment, just before that experiment's runs are listed.
type ListingCounter interface {
	ListingCount(ctx context.Context, exp schema.Ref, f RunFilter) (n int64, ok bool)
}

// Estimator is a source whose runs are slow to read in full (a remote API
// paging through every history row), which can estimate, from what its
// listing already told, how many metric points and file bytes a run
// holds. A dry run (copy --dry-run) uses it instead of reading the run's
// streams, and marks the counts as estimated. The estimate should not be
// below what reading the run would yield; ok is false when it cannot tell
// for this run (the dry run then reads the run).
type Estimator interface {
	Estimate(ctx context.Context, run schema.Run) (points, bytes int64, ok bool)
}

// FileEstimator is an Estimator that can also tell, from what its listing
// told, how many files a copy of a run would carry. ok is false when the
// listing does not tell them all; a dry run then says that the run's files
// were not estimated rather than counting none.
type FileEstimator interface {
	EstimateFiles(ctx context.Context, run schema.Run) (files int64, ok bool)
}

// EveryRunReader is a source that can list its runs with what reading
// them needs when told, before the runs are listed, that the job will read
// (nearly) every run it lists: a first job, whose ledger holds none of
// them. A job that may skip most runs (a sync with a ledger) does not tell
// it, so that listing stays cheap; being told wrongly costs only the
// listing's size, never a run.
type EveryRunReader interface {
	ReadsEveryRun()
}

// Paced is a source that reads through a remote server's API (the W&B
// cloud): `--rate` caps its requests, and it tells when it waits because
// the server asked it to (a 429, a used-up rate limit).
type Paced interface {
	// SetRate caps the requests sent per second, retries included (0: no
	// cap).
	SetRate(perSecond float64)
	// OnWait sets the function told about every wait the server asked
	// for, with its reason and length; it must be quick and safe for
	// concurrent use.
	OnWait(func(reason string, d time.Duration))
}

// Retrier is a source that retries its own requests to a server (the W&B
// cloud): SetRetries bounds how many times each request or download is
// retried after a passing failure (a 5xx answer, a failed connection), as
// --retries bounds the attempts of a run; waits the server asks for (a
// 429) are waited out and not counted.
type Retrier interface {
	SetRetries(n int)
}

// KeyReporter is a source that reads a run's metrics one request (or
// more) per key (an MLflow server: thousands of keys make a long read):
// it tells how many of the run's keys it has yielded, so progress can
// show a long read moving.
type KeyReporter interface {
	// OnKeys sets the function told, for the run whose metrics are being
	// read, the keys yielded so far and the run's keys in all: (0, total)
	// before the first and (total, total) after the last. It must be
	// quick and safe for concurrent use (runs are read in parallel).
	OnKeys(func(run schema.Ref, done, total int))
}

// HeaderLister is a source whose Runs reads each run in full to describe
// it (W&B run folders: every log is decoded to fold config and summary and
// find the status), but that can describe a run from a few small reads
// instead: a light header. A sync's plan lists headers, takes each run's
// fingerprint (Fingerprinter) from its header, and reads in full only the
// runs it will transfer; `ls --no-count` lists headers. So a sync in which
// nothing changed reads no history.
//
// Contract: RunHeaders yields the same runs as Runs, in the same order,
// each with at least Origin, Experiment, Name, Start and Status as Runs
// gives them (the source documents where they may differ); the other
// fields may be empty. Fingerprint gives a header and its full run the
// same fingerprint. Damage holds only what the header's reads found.
type HeaderLister interface {
	RunHeaders(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error]
	// Run reads the run with origin ref in full, as Runs yields it.
	Run(ctx context.Context, ref schema.Ref) (schema.Run, error)
}

// StreamedRunReader is a HeaderLister that learns a run's remaining fields
// while its Metrics are read: a job that opened a run with its light
// header (into a sink that takes the run's fields at commit,
// sinks.RunSetter) asks for the full run after the run's streams instead
// of reading it in full before them, so that its logs are read once, not
// twice.
//
// Contract: RunAfterStreams returns the run as Run would at that moment
// (the same value); it may read the run again when its streams did not
// (a stopped or failed Metrics pass, logs changed since).
type StreamedRunReader interface {
	HeaderLister
	RunAfterStreams(ctx context.Context, ref schema.Ref) (schema.Run, error)
}

// RunReleaser is a source that keeps something of each run it lists (what
// its listing told of it) until a job is done with the run. ReleaseRun
// tells it that the job will ask nothing more of run: its transfer ended
// (whatever the outcome), or the plan skipped it (unchanged, out of the
// selection, another shard's). The source may then forget what it kept of
// the run, so that what it holds does not grow with the runs it lists; a
// later question about the run is answered as for a run it did not list.
type RunReleaser interface {
	ReleaseRun(run schema.Ref)
}

// ChangeTimer is a source that can tell, as cheaply as its Fingerprint,
// when a run last changed as far as the source's own clock says: the
// latest modification time or timestamp among the run's data. sync
// --lookback compares in full with the destination the runs that changed
// near the previous sync's start, whose fingerprint may not have seen the
// change (a write in the same tick of a coarse file-system clock, clock
// skew between writers and the source). ok is false when it cannot tell.
// Sources without it are judged by the run's Start and End.
type ChangeTimer interface {
	ChangedAt(ctx context.Context, run schema.Run) (t time.Time, ok bool)
}

// Gap is a known, named difference between what a source can give and
// what another source of the same runs holds: W&B's API, for one, cannot
// give everything a local run folder has.
type Gap struct {
	// Name says what the source cannot give, and why, in a few words.
	Name string
	// Match reports whether a difference check found is this gap: what
	// the difference is about ("field Start", "tag wandb.segments
	// missing"), the value on this source's side and on the other's, as
	// check prints them ("" for none).
	Match func(what, this, other string) bool
}

// ConsoleTimes is the difference check names (Gap.Match's what) when a
// run's console lines are the same text, streams and order on both sides
// and only their times differ; a source that cannot give the times the
// lines were written matches it with a Gap.
const ConsoleTimes = "console output times"

// GapLister is a source that cannot give some of what another source of
// the same runs holds. check counts the differences its gaps match as
// known differences, printed and counted apart, which do not make it fail.
type GapLister interface {
	KnownGaps() []Gap
}
