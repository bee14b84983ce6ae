package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/schema"
)

// TestProgressInPoints: when the plan knows the points the runs hold, the
// JSON progress lines count points against that total, with a rate and the
// time left; without it they count runs and points written.
func TestProgressInPoints(t *testing.T) {
	for _, total := range []int64{1000, 0} {
		var buf bytes.Buffer
		a := &app{stderr: &buf, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "json"}
		p := a.newProgress()
		p.interval = 0
		p.observe(transfer.Event{Kind: transfer.EventPlanned, Runs: 2, TotalPoints: total, TotalBytes: 10})
		p.rateFrom = time.Now().Add(-2 * time.Second) // as if the copy had run for two seconds
		p.observe(transfer.Event{Kind: transfer.EventProgress, Run: "r", Points: 250})
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		var last map[string]any
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
			t.Fatalf("total %d: %v\n%s", total, err, buf.String())
		}
		if last["points"] != 250.0 || last["points_per_s"] == nil {
			t.Errorf("total %d: line %v lacks points or rate", total, last)
		}
		eta, hasETA := last["eta_s"].(float64)
		switch {
		case total > 0 && (!hasETA || last["points_total"] != 1000.0 || eta < 5 || eta > 7):
			// 250 points in 2 s: 750 left at 125/s is 6 s
			t.Errorf("total %d: line %v, want points_total 1000 and eta_s about 6", total, last)
		case total == 0 && (hasETA || last["points_total"] != nil):
			t.Errorf("no total: line %v has an estimate", last)
		}
	}
}

// TestProgressWaiting: a wait on the source's server shows in the JSON
// progress lines while it lasts (waiting_reason, waiting_s) and is summed
// afterwards (server_waits, server_wait_s; overlapping waits of requests
// in parallel counted once), and on the bar with its reason.
func TestProgressWaiting(t *testing.T) {
	var buf bytes.Buffer
	a := &app{stderr: &buf, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "json"}
	p := a.newProgress()
	p.interval = 0
	now := time.Unix(1000, 0)
	p.now = func() time.Time { return now }
	p.observe(transfer.Event{Kind: transfer.EventPlanned, Runs: 2})
	a.logWait("wandb+https://api.wandb.ai/acme", "the server answered 429 Too Many Requests, Retry-After 3", 3*time.Second)
	now = now.Add(time.Second)
	a.logWait("wandb+https://api.wandb.ai/acme", "the server answered 429 Too Many Requests, Retry-After 3", time.Second) // within the first
	now = now.Add(5 * time.Second)
	p.observe(transfer.Event{Kind: transfer.EventProgress, Run: "r", Points: 10})
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	w := lines[1]
	if w["waiting_reason"] != "the server answered 429 Too Many Requests, Retry-After 3" || w["waiting_s"] != 3.0 || w["server_waits"] != 1.0 || w["server_wait_s"] != 3.0 {
		t.Errorf("line during the wait: %v", w)
	}
	if w := lines[2]; w["waiting_s"] != 2.0 || w["server_waits"] != 2.0 || w["server_wait_s"] != 3.0 {
		t.Errorf("line during the overlapping wait: %v", w)
	}
	if w := lines[3]; w["waiting_reason"] != nil || w["server_waits"] != 2.0 || w["server_wait_s"] != 3.0 {
		t.Errorf("line after the waits: %v", w)
	}

	// The bar says it too.
	var bar bytes.Buffer
	b := &app{stderr: &bar, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "text"}
	q := b.newProgress()
	q.now = func() time.Time { return now }
	q.bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(&bar))
	b.logWait("wandb+https://api.wandb.ai/acme", "the server's rate limit is used up (RateLimit-Remaining 0), it resets in 2s", 2*time.Second)
	if s := bar.String(); !strings.Contains(s, "waiting on the server 2s: the server's rate limit is used up (RateLimit-Remaining 0)") {
		t.Errorf("bar: %q", s)
	}
}

// TestProgressKeys: a run read a metric key at a time (an MLflow server,
// sources.KeyReporter) shows its keys read of all in the JSON progress
// lines (keys_run, keys_done, keys_total) and on the bar until its last
// key is read; another run's last key leaves it shown.
func TestProgressKeys(t *testing.T) {
	var buf bytes.Buffer
	a := &app{stderr: &buf, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "json"}
	p := a.newProgress()
	p.interval = 0
	p.observe(transfer.Event{Kind: transfer.EventPlanned, Runs: 2})
	big := schema.Ref{System: "mlflow", ID: "127.0.0.1:5000/aaaa"}
	small := schema.Ref{System: "mlflow", ID: "127.0.0.1:5000/bbbb"}
	a.keysRead(big, 0, 2062)
	a.keysRead(big, 120, 2062)
	a.keysRead(small, 3, 3) // another run's read ends: the big one is still read
	a.keysRead(big, 2062, 2062)
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 5 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	for i, want := range []float64{0, 120, 120} {
		if l := lines[1+i]; l["keys_run"] != "mlflow:127.0.0.1:5000/aaaa" || l["keys_done"] != want || l["keys_total"] != 2062.0 {
			t.Errorf("line %d: %v, want keys_done %v of 2062 of run aaaa", 1+i, l, want)
		}
	}
	if l := lines[4]; l["keys_run"] != nil || l["keys_done"] != nil || l["keys_total"] != nil {
		t.Errorf("line after the last key: %v", l)
	}

	// The bar says it too.
	var bar bytes.Buffer
	b := &app{stderr: &bar, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "text"}
	q := b.newProgress()
	q.bar = progressbar.NewOptions(-1, progressbar.OptionSetWriter(&bar))
	b.keysRead(big, 120, 2062)
	if s := bar.String(); !strings.Contains(s, "120/2062 metric keys of mlflow:127.0.0.1:5000/aaaa") {
		t.Errorf("bar: %q", s)
	}
}

// TestProgressWhileListing: while a job that transfers as it plans is
// still listing, its JSON progress lines say the runs total is not final
// (runs_total_final false, runs_listed), give the source's count of the
// runs it lists (runs_expected) with a time left estimated from it when
// the source told it, and none when it did not; once the plan has ended
// the total is final and those fields are gone.
func TestProgressWhileListing(t *testing.T) {
	for _, expected := range []int{3000, 0} {
		var buf bytes.Buffer
		a := &app{stderr: &buf, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "json"}
		p := a.newProgress()
		p.interval = 0
		p.observe(transfer.Event{Kind: transfer.EventListing, Runs: 0, Listed: 0, Expected: expected})
		p.observe(transfer.Event{Kind: transfer.EventRunStarted, Run: "r"})
		p.rateFrom = time.Now().Add(-10 * time.Second) // as if the first run had started ten seconds ago
		p.observe(transfer.Event{Kind: transfer.EventListing, Runs: 500, Listed: 512, Expected: expected})
		for range 100 {
			p.observe(transfer.Event{Kind: transfer.EventRunDone, Result: &transfer.RunResult{Outcome: transfer.Committed}})
		}
		p.observe(transfer.Event{Kind: transfer.EventPlanned, Runs: 2990, Skipped: 10})
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			delete(m, "elapsed_s")
			lines = append(lines, m)
		}
		if len(lines) != 104 {
			t.Fatalf("expected %d: %d lines:\n%s", expected, len(lines), buf.String())
		}
		during := lines[len(lines)-2] // after the 100th run, before EventPlanned
		eta, _ := during["eta_s"].(float64)
		delete(during, "eta_s")
		want := map[string]any{"progress": true, "runs_done": 100.0, "runs_total": 500.0, "runs_total_final": false,
			"runs_listed": 512.0, "failed": 0.0, "points": 0.0, "bytes": 0.0}
		if expected > 0 {
			want["runs_expected"] = 3000.0
			// 100 runs in 10 s: 2,900 left at 10/s is 290 s
			if eta < 280 || eta > 300 {
				t.Errorf("expected %d: eta_s %v, want about 290", expected, eta)
			}
		} else if eta != 0 {
			t.Errorf("no expected total: eta_s %v", eta)
		}
		if !reflect.DeepEqual(during, want) {
			t.Errorf("expected %d: line while listing\n%v\nwant\n%v", expected, during, want)
		}
		final := lines[len(lines)-1]
		if final["runs_total"] != 2990.0 || final["runs_total_final"] != true || final["runs_listed"] != nil || final["runs_expected"] != nil {
			t.Errorf("expected %d: line after the plan: %v", expected, final)
		}
	}
}
