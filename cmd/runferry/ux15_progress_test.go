package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
)

// TestProgressCountsInterruptedRunsApart (ux15): a job stopped by Ctrl-C
// ends each run in flight as interrupted; the closing JSON progress line
// counted them in runs_done (9 of 37 done where the summary said 4 runs
// copied, 33 interrupted). They are counted as interrupted, not done.
func TestProgressCountsInterruptedRunsApart(t *testing.T) {
	var buf bytes.Buffer
	a := &app{stderr: &buf, log: slog.New(slog.NewTextHandler(io.Discard, nil)), logFormat: "json"}
	p := a.newProgress()
	p.interval = 0
	p.observe(transfer.Event{Kind: transfer.EventPlanned, Runs: 5})
	for i, o := range []transfer.Outcome{transfer.Committed, transfer.Committed, transfer.Interrupted, transfer.Interrupted, transfer.Interrupted} {
		p.observe(transfer.Event{Kind: transfer.EventRunDone, Run: "r", Result: &transfer.RunResult{Outcome: o, Name: string(rune('a' + i))}})
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var last map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if last["runs_done"] != 2.0 || last["interrupted"] != 3.0 || last["runs_total"] != 5.0 {
		t.Errorf("closing line %v, want runs_done 2, interrupted 3 of runs_total 5", last)
	}
}
