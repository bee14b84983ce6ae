package wandbcloud

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.LogReader = (*Source)(nil)

// Logs yields the run's console log (run.logLines, read forward page by
// page as the wandb SDK's console_logs does), oldest line first, one page
// per API page: each line's text, its stream (stderr for the API's level
// "error", else stdout) and its time (when W&B's server received the
// line, in Unix milliseconds; 0 when the API gives none). A line a
// labelled writer wrote (shared mode's x_label) gets its label as W&B's
// output.log shows it: "[label] text". The text and
// streams are those of the run folder's console lines; the times are
// not, for a run synced after it ran (see KnownGaps). Reading from the
// start needs W&B server 0.77 or newer; an older server's refusal is an
// error naming the run. A run the listing showed without console lines
// (logLineCount 0) is not asked.
func (s *Source) Logs(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return func(yield func([]schema.LogLine, error) bool) {
		p, err := s.split(run.ID, 2)
		if err != nil {
			yield(nil, err)
			return
		}
		s.mu.Lock()
		none := s.noLogs[run.ID]
		s.mu.Unlock()
		if none {
			return
		}
		n := 0
		for page, err := range s.api.LogLines(ctx, s.cfg.Entity, p[0], p[1]) {
			if err != nil {
				if strings.Contains(err.Error(), "useImprovedPagination") {
					err = fault.Permanent(fmt.Errorf("reading console output from the start needs W&B server 0.77 or newer: %w", err))
				}
				yield(nil, fmt.Errorf("run %s console output: %w", run.ID, err))
				return
			}
			out := make([]schema.LogLine, len(page))
			for i, l := range page {
				t, err := lineTime(l.Timestamp)
				if err != nil {
					yield(nil, fault.Permanent(fmt.Errorf("run %s console line %d: %w", run.ID, n+i, err)))
					return
				}
				out[i] = schema.LogLine{Time: t, Stream: schema.Stdout, Line: l.Line}
				if l.Label != nil && *l.Label != "" {
					out[i].Line = "[" + *l.Label + "] " + l.Line // as W&B's output.log writes it
				}
				if l.Level != nil && *l.Level == "error" {
					out[i].Stream = schema.Stderr
				}
			}
			n += len(page)
			if !yield(out, nil) {
				return
			}
		}
	}
}

// lineTime reads a console line's timestamp: RFC 3339, UTC when it names
// no zone (wandb-core writes "2006-01-02T15:04:05.000000"), in Unix
// milliseconds; 0 for none.
func lineTime(ts *string) (int64, error) {
	if ts == nil || *ts == "" {
		return 0, nil
	}
	v := *ts
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q is not an RFC 3339 time", v)
}
