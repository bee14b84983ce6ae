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

	"github.com/runferry/runferry/internal/transfer"
)

// progress renders engine events: a bar on a terminal, a JSON line every
// few seconds otherwise, nothing with --quiet. Failures and retries are
// logged as they happen.
type progress struct {
	a     *app
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	lines bool // periodic JSON lines

	total, done, failed int
	points, bytes       int64
	started             time.Time
	last                time.Time
	interval            time.Duration
}

func (a *app) newProgress() *progress {
	now := time.Now()
	p := &progress{a: a, started: now, last: now, interval: 5 * time.Second}
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
		p.total = e.Runs
		p.a.log.Info("plan", "runs", e.Runs, "up_to_date", e.Skipped)
		if p.bar != nil {
			p.bar.ChangeMax(e.Runs)
		}
	case transfer.EventProgress:
		p.points += e.Points
		p.bytes += e.Bytes
	case transfer.EventRetry:
		p.a.log.Warn("retrying run", "run", e.Run, "name", e.Name, "in", e.Wait.String(), "error", e.Err)
	case transfer.EventRunDone:
		p.done++
		r := e.Result
		switch r.Outcome {
		case transfer.Failed:
			p.failed++
			p.a.log.Error("run failed", "run", r.Origin, "name", r.Name, "attempts", r.Attempts, "error", r.Error)
		default:
			p.a.log.Debug("run "+string(r.Outcome), "run", r.Origin, "name", r.Name, "points", r.Points, "files", r.Files)
		}
		if p.bar != nil {
			_ = p.bar.Add(1)
		}
	}
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("runs (%d failed) · %d points · %s", p.failed, p.points, bytesText(p.bytes)))
		return
	}
	if p.lines && time.Since(p.last) >= p.interval {
		p.emit()
	}
}

// emit writes one progress line; callers hold p.mu.
func (p *progress) emit() {
	p.last = time.Now()
	line, _ := json.Marshal(map[string]any{
		"progress":   true,
		"runs_done":  p.done,
		"runs_total": p.total,
		"failed":     p.failed,
		"points":     p.points,
		"bytes":      p.bytes,
		"elapsed_s":  time.Since(p.started).Round(time.Millisecond).Seconds(),
	})
	fmt.Fprintf(p.a.stderr, "%s\n", line)
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
