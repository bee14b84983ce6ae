package mlflowapi

import (
	"context"
	"net/url"
	"strconv"
)

// tracePageSize is the page size of trace searches (the server's maximum).
const tracePageSize = 500

// CountTraces counts the traces (MLflow 2.14+ tracing, MLflow 3 GenAI
// traces) of the given experiments, paging through the trace search. A
// server older than tracing answers 404, counted as no traces.
func (c *Client) CountTraces(ctx context.Context, experimentIDs []string) (int64, error) {
	q := url.Values{"experiment_ids": experimentIDs, "max_results": {strconv.Itoa(tracePageSize)}}
	var n int64
	for {
		var out struct {
			Traces []struct {
				RequestID string `json:"request_id"`
			} `json:"traces"`
			Next string `json:"next_page_token"`
		}
		err := c.get(ctx, api+"traces", q, &out)
		if IsNotFound(err) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += int64(len(out.Traces))
		if out.Next == "" || len(out.Traces) == 0 || out.Next == q.Get("page_token") {
			return n, nil
		}
		q.Set("page_token", out.Next)
	}
}
