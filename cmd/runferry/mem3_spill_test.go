package main

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	memsink "github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// unreadableRun is a source one of whose runs cannot be read.
type unreadableRun struct {
	*memsrc.Source
	bad schema.Ref
}

func (s unreadableRun) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	if run == s.bad {
		return func(yield func([]schema.Metric, error) bool) {
			yield(nil, fault.Permanent(errors.New("corrupt history at offset 42 (key hunter2)")))
		}
	}
	return s.Source.Metrics(ctx, run)
}

// times are what differ between two jobs run one after the other.
var (
	times     = regexp.MustCompile(`"(started|finished)": ?"[^"]*"|"(plan_ms|transfer_ms|total_ms)": ?\d+,?| in [0-9.]+[a-zµ]+\n`)
	durations = regexp.MustCompile(`,?\n *"duration_ms": \d+`) // a run's, left out when 0
)

// TestSpilledOutputsUnchanged: with the run results spilled to a temporary
// file (transfer.Options.SpillRuns, which copy and sync set), everything a
// user reads is what it was with them held in memory: the --report file,
// byte for byte (writeReport against writeJSON of the held report), the
// text summary with -v (every run, failures, damage, the closing line),
// and the --log-format json summary. Jobs: a first copy with a run that
// cannot be read (its error holding a secret), a second over the same
// ledger (unchanged runs, listed first), and a dry run.
func TestSpilledOutputsUnchanged(t *testing.T) {
	want := dataset.Canonical()
	var bad schema.Ref
	for _, r := range want.Runs[1:] {
		if len(r.Run.Damage) == 0 {
			bad = r.Run.Origin
			break
		}
	}
	secrets := []string{"hunter2"}
	type outputs struct{ report, text, jsonLine, stderr string }
	jobs := func(spill bool) []outputs {
		l, err := state.Open(filepath.Join(t.TempDir(), "ledger.db"), state.Job{Source: "memory:a", Sink: "memory:b"}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		dst := memsink.New(sinks.Limits{})
		var out []outputs
		for i, dry := range []bool{false, false, true} {
			rep, copyErr := transfer.Copy(context.Background(), unreadableRun{memsrc.New(want), bad}, dst, transfer.Options{
				Ledger: l, Concurrency: 1, DryRun: dry, SpillRuns: spill, Source: "memory:a", Sink: "memory:b",
				Backoff: func(int) time.Duration { return time.Millisecond }})
			rep.Version, rep.Options = "test", map[string]string{"dry_run": "x"}
			var o outputs
			var err error
			path := filepath.Join(t.TempDir(), "report.json")
			if spill {
				err = writeReport(path, rep, secrets)
			} else {
				err = writeJSON(path, rep, secrets)
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			o.report = times.ReplaceAllString(durations.ReplaceAllString(string(b), ""), "T")
			for _, format := range []string{"text", "json"} {
				var stdout, stderr bytes.Buffer
				a := &app{stdout: &scrubWriter{w: &stdout, secrets: secrets}, stderr: &stderr, verbose: true, logFormat: format}
				a.exit = verdictExit(rep.Verdict(copyErr))
				a.printReport(rep)
				if format == "text" {
					o.text = times.ReplaceAllString(stdout.String(), "T\n")
				} else {
					o.jsonLine = times.ReplaceAllString(stdout.String(), "T")
				}
				o.stderr += stderr.String()
			}
			if spill && len(rep.Runs) != 0 {
				t.Errorf("job %d: the spilled report holds %d runs in Runs", i+1, len(rep.Runs))
			}
			rep.Close()
			out = append(out, o)
		}
		return out
	}
	held, spilled := jobs(false), jobs(true)
	for i := range held {
		h, s := held[i], spilled[i]
		for _, c := range []struct{ what, got, want string }{
			{"report file", s.report, h.report}, {"text summary", s.text, h.text},
			{"JSON summary", s.jsonLine, h.jsonLine}, {"stderr", s.stderr, h.stderr}} {
			if c.got != c.want {
				t.Errorf("job %d: the %s differs with the results spilled:\n%s\n---- held:\n%s", i+1, c.what, c.got, c.want)
			}
		}
	}
	// What the jobs are for: every kind of line is there, the secret is not.
	for _, w := range []string{"FAILED memory:", "committed  ", "damaged source", "unchanged", "Plan (dry run", "copied 4 runs"} {
		if !strings.Contains(held[0].text+held[1].text+held[2].text, w) {
			t.Errorf("no %q in the summaries:\n%s%s%s", w, held[0].text, held[1].text, held[2].text)
		}
	}
	for _, o := range spilled {
		if strings.Contains(o.report+o.text+o.jsonLine, "hunter2") || !strings.Contains(o.report, "corrupt history at offset 42") {
			t.Errorf("the failed run's error is missing or not scrubbed:\n%s", o.report)
		}
	}
}
