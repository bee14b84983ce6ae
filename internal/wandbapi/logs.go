package wandbapi

import (
	"context"
	"fmt"
	"iter"

	"github.com/runferry/runferry/internal/fault"
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
	return func(yield func([]LogLine, error) bool) {
		var cursor *string
		for {
			var out struct {
				Project *struct {
					Run *struct {
						LogLines *struct {
							PageInfo pageInfo `json:"pageInfo"`
							Edges    []struct {
								Node LogLine `json:"node"`
							} `json:"edges"`
						} `json:"logLines"`
					} `json:"run"`
				} `json:"project"`
			}
			vars := map[string]any{"entity": entity, "project": project, "runName": id, "first": LogLinesPageSize, "after": cursor}
			if err := c.Query(ctx, logLinesQuery, vars, &out); err != nil {
				yield(nil, err)
				return
			}
			if out.Project == nil || out.Project.Run == nil {
				yield(nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host)))
				return
			}
			ll := out.Project.Run.LogLines
			if ll == nil {
				return
			}
			page := make([]LogLine, len(ll.Edges))
			for i, e := range ll.Edges {
				page[i] = e.Node
			}
			if len(page) > 0 && !yield(page, nil) {
				return
			}
			if !ll.PageInfo.HasNextPage || ll.PageInfo.EndCursor == nil {
				return
			}
			if cursor != nil && *cursor == *ll.PageInfo.EndCursor {
				yield(nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s console log: the server repeats cursor %q", entity, project, id, *cursor)))
				return
			}
			cursor = ll.PageInfo.EndCursor
		}
	}
}
