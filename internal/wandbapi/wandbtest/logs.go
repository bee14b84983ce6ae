package wandbtest

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/runferry/runferry/schema"
)

// LogLine is one line of a run's console log as W&B's server holds it.
type LogLine struct {
	Time   time.Time // when the server received it
	Stderr bool      // served as level "error"
	Label  string    // the writing process's label (shared mode)
	Line   string
}

// logger is a source that holds console output (sources.LogReader).
type logger interface {
	Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error]
}

// loadLogs reads the run's console lines as the server holds them once
// the run is synced: text and stream as the source has them, in order,
// each stamped at synced plus one microsecond per line (wandb-core stamps
// a line when it receives it, not when the program wrote it).
func loadLogs(ctx context.Context, src logger, r schema.Run, synced time.Time) ([]LogLine, error) {
	var out []LogLine
	for page, err := range src.Logs(ctx, r.Origin) {
		if err != nil {
			return nil, fmt.Errorf("console output: %w", err)
		}
		for _, l := range page {
			out = append(out, LogLine{Time: synced.Add(time.Duration(len(out)) * time.Microsecond), Stderr: l.Stream == schema.Stderr, Line: l.Line})
		}
	}
	return out, nil
}

// logLines answers run.logLines as W&B server 0.77+ does: with
// useImprovedPagination, Relay pages in ascending line order from after
// (first lines, or all); with last (and no first/after), the newest last
// lines in ascending order. Without useImprovedPagination a forward read
// is refused, since the legacy resolver reads after as an offset from the
// end: a client that forgets it is seen at once.
func (s *Server) logLines(r *Run, a map[string]any) (any, error) {
	s.LogLinePages.Add(1)
	lines := r.LogLines
	if n, ok := a["last"].(float64); ok {
		if a["first"] != nil || a["after"] != nil {
			return nil, fmt.Errorf("logLines: last cannot be combined with first or after")
		}
		if n <= 0 {
			return nil, fmt.Errorf("logLines: last must be positive")
		}
		from := max(0, len(lines)-int(n))
		return s.logPage(lines, from, len(lines)), nil
	}
	if improved, _ := a["useImprovedPagination"].(bool); !improved {
		return nil, fmt.Errorf("logLines: forward pagination needs useImprovedPagination: true")
	}
	from := 0
	if c, ok := a["after"].(string); ok && c != "" {
		n, err := strconv.Atoi(c)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("logLines: bad cursor %q", c)
		}
		from = min(n, len(lines))
	}
	end := len(lines)
	if f, ok := a["first"].(float64); ok {
		if f <= 0 {
			return nil, fmt.Errorf("logLines: first must be positive")
		}
		end = min(end, from+int(f))
	}
	return s.logPage(lines, from, end), nil
}

func (s *Server) logPage(lines []LogLine, from, end int) *object {
	var edges []*object
	for i := from; i < end; i++ {
		l := lines[i]
		level := ""
		if l.Stderr {
			level = "error"
		}
		edges = append(edges, &object{typ: "LogLineEdge", fields: map[string]func(map[string]any) (any, error){
			"cursor": field(strconv.Itoa(i + 1)),
			"node": field(&object{typ: "LogLine", fields: map[string]func(map[string]any) (any, error){
				"id":     field(strconv.Itoa(i)),
				"number": field(i),
				// wandb-core's format: microseconds, UTC, no zone designator
				"timestamp": field(l.Time.UTC().Format("2006-01-02T15:04:05.000000")),
				"level":     field(level),
				"label":     field(l.Label),
				"line":      field(l.Line),
			}}),
		}})
	}
	endCursor := any(nil)
	if end > from {
		endCursor = strconv.Itoa(end)
	}
	return &object{typ: "LogLineConnection", fields: map[string]func(map[string]any) (any, error){
		"edges": field(edges),
		"pageInfo": field(&object{typ: "PageInfo", fields: map[string]func(map[string]any) (any, error){
			"endCursor":       field(endCursor),
			"hasNextPage":     field(end < len(lines)),
			"startCursor":     field(nil),
			"hasPreviousPage": field(from > 0),
		}}),
	}}
}
