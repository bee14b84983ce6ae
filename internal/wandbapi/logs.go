package wandbapi

import (
	"context"
	"iter"
)

// LogLine is one line of a run's console log as the API gives it.
type LogLine struct {
	Number    *int64  `json:"number"`    // the line's position, from 0
	Timestamp *string `json:"timestamp"` // when the server received it: RFC 3339 without a zone (UTC)
	Level     *string `json:"level"`     // "error" for a line written to stderr, else empty
	Label     *string `json:"label"`     // the writing process's label (shared mode), else empty
	Line      string  `json:"line"`
}

// LogLinesPageSize is how many console lines one request asks for (the
// wandb SDK's console_logs default).
var LogLinesPageSize = 1000

// logLinesQuery is the forward page of the wandb SDK's console log reader
// (wandb-core's RunConsoleLogPage): useImprovedPagination gives Relay
// pagination in ascending line order, on W&B server 0.77 and newer.
const logLinesQuery = `query RunConsoleLogPage($entity: String!, $project: String!, $runName: String!, $first: Int, $after: String) {
  project(name: $project, entityName: $entity) {
    run(name: $runName) {
      logLineCount
      logLines(first: $first, after: $after, useImprovedPagination: true) {
        edges { node { number timestamp level label line } }
        pageInfo { endCursor hasNextPage }
      }
    }
  }
}`

// LogLines yields the run's console log in pages of at most
// LogLinesPageSize lines, oldest first, following the server's cursors
// until it says there is no next page. A run that never wrote console
// output yields nothing; a run that does not exist is a permanent error
// naming it.
func (c *Client) LogLines(ctx context.Context, entity, project, id string) iter.Seq2[[]LogLine, error] {
	rc := runConnection{what: "console log", query: logLinesQuery, field: "logLines", after: "after",
		vars: map[string]any{"entity": entity, "project": project, "runName": id, "first": LogLinesPageSize}}
	return runPages[LogLine](ctx, c, entity, project, id, rc, nil)
}
