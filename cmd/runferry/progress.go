package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/runferry/runferry/engine/transfer"
)

// progress renders engine events: a bar on a terminal, a JSON line every
// few seconds otherwise, nothing with --quiet. Failures and retries are
// logged as they happen.
type progress struct {
	a     *app
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	lines bool // periodic JSON lines

	// done counts the runs finished (committed, unchanged, failed...);
	// interrupted those the job stopped before they finished (a re-run
	// resumes them): not done.
	total, done, failed, interrupted int
	points, bytes                    int64
	// totalPoints and totalBytes are what the planned runs hold, when the
	// source could tell (0 otherwise): progress is then in points, with a
	// rate and the time left.
	totalPoints, totalBytes int64
	planned                 time.Time
	// final is set when the plan has ended (EventPlanned): until then
	// total counts the runs planned so far (EventListing), listed the runs
	// the listings yielded and expected what the source said they yield
	// in all (0: not told).
	final            bool
	listed, expected int
	// rateFrom is when the first run started or the plan ended, whichever
	// came first: rates count from it.
	rateFrom time.Time
	started  time.Time
	last     time.Time
	interval time.Duration

	// Waits on a source's server (sources.Paced): the latest one's reason
	// and end, and the time spent waiting so far (overlapping waits of
	// requests in parallel counted once).
	waitReason string
	waitUntil  time.Time
	waited     time.Duration
	waits      int
	now        func() time.Time

	// A run whose metrics are read a key at a time (sources.KeyReporter):
	// the latest one told, until its last key is read.
	keysRun             string
	keysDone, keysTotal int
}

func (a *app) newProgress() *progress {
	now := time.Now()
	p := &progress{a: a, started: now, last: now, interval: 5 * time.Second, now: time.Now}
	a.waitMu.Lock()
	a.prog = p
	a.waitMu.Unlock()
	if a.quiet {
		return p
	}
	if f, ok := unwrap(a.stderr).(*os.File); ok && term.IsTerminal(int(f.Fd())) && a.logFormat == "text" {
		p.bar = progressbar.NewOptions(-1,
			progressbar.OptionSetWriter(a.stderr),
			progressbar.OptionSetDescription("planning"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond))
		return p
	}
	p.lines = true
	return p
}

func unwrap(w io.Writer) io.Writer {
	if s, ok := w.(*scrubWriter); ok {
		return s.w
	}
	return w
}

func (p *progress) observe(e transfer.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case transfer.EventPlanned:
		p.total, p.totalPoints, p.totalBytes, p.planned, p.final = e.Runs, e.TotalPoints, e.TotalBytes, time.Now(), true
		if p.rateFrom.IsZero() {
			p.rateFrom = p.planned
		}
		if e.Runs > 0 && e.TotalPoints == 0 && e.TotalBytes == 0 {
			// The source does not count before reading (W&B folders'
			// light headers): 0 would read as nothing to move.
			p.a.log.Info("plan", "runs", e.Runs, "up_to_date", e.Skipped, "points", "not known before the runs are read")
		} else {
			p.a.log.Info("plan", "runs", e.Runs, "up_to_date", e.Skipped, "points", e.TotalPoints, "bytes", e.TotalBytes)
		}
		if p.bar != nil {
			if p.totalPoints > 0 {
				p.bar.ChangeMax64(p.totalPoints)
			} else {
				p.bar.ChangeMax(e.Runs)
			}
		}
	case transfer.EventListing:
		if p.final {
			break
		}
		p.total, p.listed, p.expected = e.Runs, e.Listed, e.Expected
		if p.bar != nil && p.expected > 0 {
			p.bar.ChangeMax(p.expected)
		}
	case transfer.EventRunStarted:
		if p.rateFrom.IsZero() {
			p.rateFrom = time.Now()
		}
	case transfer.EventProgress:
		p.points += e.Points
		p.bytes += e.Bytes
		if p.bar != nil && p.totalPoints > 0 {
			_ = p.bar.Add64(e.Points)
		}
	case transfer.EventRetry:
		p.a.log.Warn("retrying run", "run", e.Run, "name", e.Name, "in", e.Wait.String(), "error", e.Err)
	case transfer.EventRunDone:
		r := e.Result
		if r.Outcome == transfer.Interrupted {
			p.interrupted++
		} else {
			p.done++
		}
		switch r.Outcome {
		case transfer.Failed:
			p.failed++
			p.a.log.Error("run failed", "run", r.Origin, "name", r.Name, "attempts", r.Attempts, "error", r.Error)
		default:
			p.a.log.Debug("run "+string(r.Outcome), "run", r.Origin, "name", r.Name, "points", r.Points, "files", r.Files)
		}
		if p.bar != nil && p.totalPoints == 0 {
			_ = p.bar.Add(1)
		}
	}
	p.show()
}

// show updates the bar, or writes a JSON line when one is due; callers
// hold p.mu.
func (p *progress) show() {
	if p.bar != nil {
		var d string
		switch {
		case !p.final:
			d = fmt.Sprintf("%d/%d runs so far, %s (%d failed) · %d points · %s · %s", p.done, p.total, p.listingText(), p.failed, p.points, bytesText(p.bytes), p.rateText())
		case p.totalPoints > 0:
			d = fmt.Sprintf("%d/%d runs (%d failed) · %s · %s", p.done, p.total, p.failed, bytesText(p.bytes), p.rateText())
		default:
			d = fmt.Sprintf("runs (%d failed) · %d points · %s · %s", p.failed, p.points, bytesText(p.bytes), p.rateText())
		}
		if p.keysTotal > 0 {
			d += fmt.Sprintf(" · %d/%d metric keys of %s", p.keysDone, p.keysTotal, p.keysRun)
		}
		if left := p.waitUntil.Sub(p.now()); left > 0 {
			d += fmt.Sprintf(" · waiting on the server %s: %s", left.Round(100*time.Millisecond), p.waitReason)
		}
		p.bar.Describe(d)
		return
	}
	if p.lines && time.Since(p.last) >= p.interval {
		p.emit()
	}
}

// waiting records a wait on the source's server (sources.Paced.OnWait):
// the bar says it and why until it ends, JSON progress lines carry it
// (waiting_reason, waiting_s, server_wait_s, server_waits), and a line is
// written at once when one is due, since nothing else moves meanwhile.
func (p *progress) waiting(reason string, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	end := now.Add(d)
	start := now
	if p.waitUntil.After(start) {
		start = p.waitUntil
	}
	if end.After(start) {
		p.waited += end.Sub(start)
	}
	p.waits++
	if !end.Before(p.waitUntil) {
		p.waitUntil, p.waitReason = end, reason
	}
	p.show()
}

// keys records how many of a run's metric keys the source has read
// (sources.KeyReporter): the bar and the JSON lines (keys_run, keys_done,
// keys_total) show the latest run told until its last key is read.
func (p *progress) keys(run string, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case done < total:
		p.keysRun, p.keysDone, p.keysTotal = run, done, total
	case run == p.keysRun:
		p.keysRun, p.keysDone, p.keysTotal = "", 0, 0
	}
	p.show()
}

// emit writes one progress line; callers hold p.mu.
func (p *progress) emit() {
	p.last = time.Now()
	fields := map[string]any{
		"progress":   true,
		"runs_done":  p.done,
		"runs_total": p.total,
		// runs_total counts the runs planned so far until the plan ends
		"runs_total_final": p.final,
		"failed":           p.failed,
		"points":           p.points,
		"bytes":            p.bytes,
		"elapsed_s":        time.Since(p.started).Round(time.Millisecond).Seconds(),
	}
	if rate := p.rate(); rate > 0 {
		fields["points_per_s"] = int64(rate)
	}
	if p.interrupted > 0 {
		fields["interrupted"] = p.interrupted
	}
	if !p.final {
		fields["runs_listed"] = p.listed
		if p.expected > 0 {
			fields["runs_expected"] = p.expected
			if eta, ok := p.runsETA(); ok {
				fields["eta_s"] = eta.Round(time.Second).Seconds()
			}
		}
	}
	if p.waits > 0 {
		fields["server_waits"], fields["server_wait_s"] = p.waits, p.waited.Round(time.Millisecond).Seconds()
	}
	if left := p.waitUntil.Sub(p.now()); left > 0 {
		fields["waiting_s"], fields["waiting_reason"] = left.Round(time.Millisecond).Seconds(), p.waitReason
	}
	if p.keysTotal > 0 {
		fields["keys_run"], fields["keys_done"], fields["keys_total"] = p.keysRun, p.keysDone, p.keysTotal
	}
	if p.totalPoints > 0 {
		fields["points_total"], fields["bytes_total"] = p.totalPoints, p.totalBytes
		if eta, ok := p.eta(); ok {
			fields["eta_s"] = eta.Round(time.Second).Seconds()
		}
	}
	line, _ := json.Marshal(fields)
	fmt.Fprintf(p.a.stderr, "%s\n", line)
}

// rate is the points written per second since the first run started (or
// the plan ended, if earlier); callers hold p.mu.
func (p *progress) rate() float64 {
	if p.rateFrom.IsZero() {
		return 0
	}
	d := time.Since(p.rateFrom).Seconds()
	if d < 0.5 {
		return 0
	}
	return float64(p.points) / d
}

// eta estimates the time left from the rate so far, when the total is known.
func (p *progress) eta() (time.Duration, bool) {
	r := p.rate()
	if p.totalPoints == 0 || r <= 0 {
		return 0, false
	}
	left := max(p.totalPoints-p.points, 0)
	return time.Duration(float64(left) / r * float64(time.Second)), true
}

// runsETA estimates, while the plan goes on, the time left from the runs
// ended per second and the runs the source said its listings yield
// (expected), as if every one of them were transferred: the plan may skip
// or filter out some. ok is false before the first run has ended.
func (p *progress) runsETA() (time.Duration, bool) {
	if p.final || p.expected == 0 || p.done == 0 || p.rateFrom.IsZero() {
		return 0, false
	}
	d := time.Since(p.rateFrom)
	left := max(p.expected-p.done, 0)
	return time.Duration(float64(d) / float64(p.done) * float64(left)), true
}

// listingText says, for the bar, how far the listing has gone while the
// plan goes on.
func (p *progress) listingText() string {
	if p.expected > 0 {
		return fmt.Sprintf("%d of %d runs listed", p.listed, p.expected)
	}
	return fmt.Sprintf("%d runs listed, total not known yet", p.listed)
}

// rateText renders the rate and the time left for the bar.
func (p *progress) rateText() string {
	r := p.rate()
	if r <= 0 {
		return "starting"
	}
	s := fmt.Sprintf("%.0f points/s", r)
	if eta, ok := p.eta(); ok {
		s += ", " + eta.Round(time.Second).String() + " left"
	} else if eta, ok := p.runsETA(); ok {
		s += ", about " + eta.Round(time.Second).String() + " left"
	}
	return s
}

func (p *progress) finish(reached bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !reached { // the job never started: no closing progress line
		if p.bar != nil {
			_ = p.bar.Clear()
		}
		return
	}
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	if p.lines && time.Since(p.started) >= p.interval {
		p.emit() // the closing line of a job long enough to have had progress lines
	}
}
