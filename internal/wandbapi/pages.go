package wandbapi

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"

	"github.com/runferry/runferry/internal/fault"
)

// connection is one page of a Relay connection as W&B's API answers it:
// pageInfo and edges of nodes.
type connection[T any] struct {
	PageInfo pageInfo `json:"pageInfo"`
	Edges    []struct {
		Node *T `json:"node"`
	} `json:"edges"`
}

// nodes returns the page's nodes in order, null nodes left out (nil when
// there is none).
func (cn *connection[T]) nodes() []T {
	var out []T
	for _, e := range cn.Edges {
		if e.Node != nil {
			out = append(out, *e.Node)
		}
	}
	return out
}

// next is the cursor of the page after this one, nil when there is none.
func (cn *connection[T]) next() *string {
	if !cn.PageInfo.HasNextPage || cn.PageInfo.EndCursor == nil {
		return nil
	}
	return cn.PageInfo.EndCursor
}

// runConnection names a connection of one run (files, logLines,
// outputArtifacts, ...) and the query that pages it.
type runConnection struct {
	what  string // for messages: "files", "console log", ...
	query string // selects project(...) { run(...) { FIELD(...) { pageInfo edges { node {...} } } } }
	field string // FIELD's key in the answer (its alias, if any)
	after string // the variable that carries the cursor
	vars  map[string]any
}

// runPages yields the pages of a run's connection from cursor (nil: from
// the start), following the server's cursors until it says there is no
// next page; each page holds its non-null nodes in order (a page without
// any is not yielded). The run
// (entity/project/id, for messages) not being there is a permanent error
// naming it; the connection being null ends it (the run has none); a
// server that answers the cursor it was asked with is a permanent error
// rather than a loop.
func runPages[T any](ctx context.Context, c *Client, entity, project, id string, rc runConnection, cursor *string) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		for {
			var out struct {
				Project *struct {
					Run map[string]json.RawMessage `json:"run"`
				} `json:"project"`
			}
			vars := make(map[string]any, len(rc.vars)+1)
			for k, v := range rc.vars {
				vars[k] = v
			}
			vars[rc.after] = cursor
			if err := c.Query(ctx, rc.query, vars, &out); err != nil {
				yield(nil, err)
				return
			}
			if out.Project == nil || out.Project.Run == nil {
				yield(nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host)))
				return
			}
			raw := out.Project.Run[rc.field]
			if len(raw) == 0 || string(raw) == "null" {
				return
			}
			var cn connection[T]
			if err := json.Unmarshal(raw, &cn); err != nil {
				yield(nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s %s: %v", entity, project, id, rc.what, err)))
				return
			}
			if page := cn.nodes(); len(page) > 0 && !yield(page, nil) {
				return
			}
			next := cn.next()
			if next == nil {
				return
			}
			if cursor != nil && *cursor == *next {
				yield(nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s %s: the server repeats cursor %q", entity, project, id, rc.what, *cursor)))
				return
			}
			cursor = next
		}
	}
}

// flatten yields the items of pages one by one.
func flatten[T any](pages iter.Seq2[[]T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for page, err := range pages {
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, x := range page {
				if !yield(x, nil) {
					return
				}
			}
		}
	}
}
