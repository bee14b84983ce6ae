package transfer

import "time"

// EventKind says what an Event reports.
type EventKind int

// The events a job emits: for each run an EventRunStarted, any number of
// EventProgress, and one EventRunDone; and one EventPlanned when the plan
// has ended. A dry run, or a job with Options.Verify, sends EventPlanned
// before any run's events; other jobs transfer runs while they plan, and
// their first runs' events may come before it.
const (
	EventPlanned EventKind = iota
	EventRunStarted
	EventProgress
	EventRunDone
	EventRetry
)

// Event is one progress report. Observers are called from several
// goroutines and must be quick and safe for concurrent use.
type Event struct {
	Kind    EventKind
	Runs    int // EventPlanned: runs to transfer
	Skipped int // EventPlanned: runs already up to date
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
