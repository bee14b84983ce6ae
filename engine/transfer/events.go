package transfer

import "time"

// EventKind says what an Event reports.
type EventKind int

// The events a job emits: for each run an EventRunStarted, any number of
// EventProgress, and one EventRunDone; and one EventPlanned when the plan
// has ended. A dry run, or a job with Options.Verify, sends EventPlanned
// before any run's events; other jobs transfer runs while they plan, and
// their first runs' events may come before it; such a job sends, before
// EventPlanned, an EventListing as each experiment's listing begins and
// whenever the plan has handed on more runs: the plan so far, whose counts
// are not final.
const (
	EventPlanned EventKind = iota
	EventRunStarted
	EventProgress
	EventRunDone
	EventRetry
	EventListing
)

// Event is one progress report. Observers are called from several
// goroutines and must be quick and safe for concurrent use.
type Event struct {
	Kind    EventKind
	Runs    int // EventPlanned: runs to transfer; EventListing: so far
	Skipped int // EventPlanned: runs already up to date; EventListing: so far
	// EventListing: the runs the source's listings have yielded so far
	// (Listed), before the job's filters; and how many they yield in all
	// (Expected), counting the experiments whose listing has begun, when
	// the source told it (sources.ListingCounter) for the one being
	// listed, else 0. Expected is for progress: the listing may yield more
	// or fewer runs, and experiments not yet reached are not counted.
	Listed, Expected int
	// EventPlanned: the points and file bytes the planned runs hold, when
	// the source could tell for every one of them (sources.Sizer); else 0.
	TotalPoints, TotalBytes int64
	Run                     string
	Name                    string
	Points                  int64 // EventProgress: points written since the last event
	Bytes                   int64 // EventProgress: artifact bytes written since the last event
	Result                  *RunResult
	Wait                    time.Duration // EventRetry: delay before the next attempt
	Err                     error         // EventRetry: the error that caused it
}

// Observer receives events.
type Observer func(Event)
