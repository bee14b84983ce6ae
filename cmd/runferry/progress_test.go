package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
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
		p.planned = time.Now().Add(-2 * time.Second) // as if the copy had run for two seconds
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
