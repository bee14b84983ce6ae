package mlflowapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/runferry/runferry/internal/fault"
)

// Traces (MLflow 3 tracing) are read and written through the v3 trace API:
// POST /api/3.0/mlflow/traces/search lists the trace infos of experiments,
// GET /api/3.0/mlflow/traces/{id} reads one, POST /api/3.0/mlflow/traces
// (StartTraceV3) creates one with a trace id the caller chooses (a second
// call with the same id merges into it), PATCH .../traces/{id}/tags sets a
// tag. The spans live apart from the info: as the document traces.json
// under the trace's artifact location (the tag mlflow.artifactLocation),
// and, on MLflow 3.4+ servers with a SQL store, also in the tracking store
// (tag mlflow.trace.spansLocation = TRACKING_STORE). The route the MLflow
// UI reads them from (GET /ajax-api/2.0/mlflow/get-trace-artifact) gives the
// traces.json document wherever they are.

const apiV3 = "/api/3.0/mlflow/"

// Tags and metadata keys of a trace that MLflow gives a meaning.
const (
	TraceTagArtifactLocation = "mlflow.artifactLocation"    // set by the server
	TraceTagSpansLocation    = "mlflow.trace.spansLocation" // TRACKING_STORE: spans in the database
	TraceMetaSourceRun       = "mlflow.sourceRun"           // the run the trace was logged in
	TraceMetaInfoFinalized   = "mlflow.trace.infoFinalized" // set by the server
	TraceSpansFile           = "traces.json"                // the span document under the artifact location
)

// TraceInfo is a trace's info as the v3 API carries it (protobuf JSON:
// times as RFC 3339 text, durations as "1.5s").
type TraceInfo struct {
	TraceID           string            `json:"trace_id"`
	ClientRequestID   string            `json:"client_request_id,omitempty"`
	TraceLocation     TraceLocation     `json:"trace_location"`
	RequestPreview    string            `json:"request_preview,omitempty"`
	ResponsePreview   string            `json:"response_preview,omitempty"`
	RequestTime       string            `json:"request_time,omitempty"`
	ExecutionDuration string            `json:"execution_duration,omitempty"`
	State             string            `json:"state,omitempty"`
	TraceMetadata     map[string]string `json:"trace_metadata,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Assessments       []json.RawMessage `json:"assessments,omitempty"`
}

// TraceLocation says where a trace lives; runferry knows MLflow experiments.
type TraceLocation struct {
	Type             string `json:"type"`
	MlflowExperiment struct {
		ExperimentID string `json:"experiment_id"`
	} `json:"mlflow_experiment"`
}

// ExperimentLocation is the location of a trace in experiment id.
func ExperimentLocation(id string) TraceLocation {
	l := TraceLocation{Type: "MLFLOW_EXPERIMENT"}
	l.MlflowExperiment.ExperimentID = id
	return l
}

// tracePageSize is the page size of trace searches (the server's maximum).
const tracePageSize = 500

// SearchTraces yields the trace infos of the given experiments (at most
// 100 at a time, the caller chunks), newest first as the server orders
// them. A server without the v3 trace API (before MLflow 3) answers 404,
// which is yielded (IsNotFound) for the caller to fall back on.
func (c *Client) SearchTraces(ctx context.Context, experimentIDs []string) iter.Seq2[TraceInfo, error] {
	return func(yield func(TraceInfo, error) bool) {
		in := struct {
			Locations  []TraceLocation `json:"locations"`
			MaxResults int             `json:"max_results"`
			PageToken  string          `json:"page_token,omitempty"`
		}{MaxResults: tracePageSize}
		for _, id := range experimentIDs {
			in.Locations = append(in.Locations, ExperimentLocation(id))
		}
		for {
			var out struct {
				Traces []TraceInfo `json:"traces"`
				Next   string      `json:"next_page_token"`
			}
			if err := c.call(ctx, idempotent, http.MethodPost, apiV3+"traces/search", nil, in, &out); err != nil {
				yield(TraceInfo{}, err)
				return
			}
			for _, t := range out.Traces {
				if !yield(t, nil) {
					return
				}
			}
			if out.Next == "" || len(out.Traces) == 0 || out.Next == in.PageToken {
				return
			}
			in.PageToken = out.Next
		}
	}
}

// GetTraceInfo reads the info of one trace (a missing trace: IsNotFound).
func (c *Client) GetTraceInfo(ctx context.Context, traceID string) (TraceInfo, error) {
	var out struct {
		Trace struct {
			Info TraceInfo `json:"trace_info"`
		} `json:"trace"`
	}
	err := c.get(ctx, apiV3+"traces/"+url.PathEscape(traceID), nil, &out)
	return out.Trace.Info, err
}

// StartTrace creates the trace info t (StartTraceV3) under the trace id t
// names, and returns it as the server stored it (with the server's own
// tags, among them mlflow.artifactLocation). The server merges a second
// call with the same id into the first, so a retry does no harm; the
// caller makes sure the id is not another trace's.
func (c *Client) StartTrace(ctx context.Context, t TraceInfo) (TraceInfo, error) {
	in := map[string]any{"trace": map[string]any{"trace_info": t}}
	var out struct {
		Trace struct {
			Info TraceInfo `json:"trace_info"`
		} `json:"trace"`
	}
	err := c.call(ctx, idempotent, http.MethodPost, apiV3+"traces", nil, in, &out)
	return out.Trace.Info, err
}

// SetTraceTag sets the tag key of a trace to value.
func (c *Client) SetTraceTag(ctx context.Context, traceID, key, value string) error {
	in := map[string]string{"key": key, "value": value}
	return c.call(ctx, idempotent, http.MethodPatch, api+"traces/"+url.PathEscape(traceID)+"/tags", nil, in, nil)
}

// DeleteTraceTag removes the tag key of a trace.
func (c *Client) DeleteTraceTag(ctx context.Context, traceID, key string) error {
	in := map[string]string{"key": key} // in the body, like MLflow's client
	return c.call(ctx, idempotent, http.MethodDelete, api+"traces/"+url.PathEscape(traceID)+"/tags", nil, in, nil)
}

// TraceData reads the span document of a trace the way the MLflow UI
// does (GET /ajax-api/2.0/mlflow/get-trace-artifact): the traces.json
// document, {"spans": [...]}, built from the tracking store when the spans
// are there, else read from the trace's artifact location. A server
// without that route (404) is read through TraceSpansDocument. A trace
// without span data yields nil.
func (c *Client) TraceData(ctx context.Context, info TraceInfo) ([]byte, error) {
	body, err := c.open(ctx, c.endpoint("/ajax-api/2.0/mlflow/get-trace-artifact", url.Values{"request_id": {info.TraceID}}), "the spans of trace "+info.TraceID)
	if IsNotFound(err) {
		doc, _, err := c.TraceSpansDocument(ctx, info)
		return doc, err
	}
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, fault.Retryable(fmt.Errorf("mlflow: reading the spans of trace %s: %s", info.TraceID, c.redact(err.Error())), 0)
	}
	return b, nil
}

// TraceSpansDocument reads the span document of a trace as MLflow stored
// it under the trace's artifact location (traces.json, through the
// mlflow-artifacts proxy). found is false when the trace has no such
// document (its spans are only in the tracking store, or the location is
// not proxied).
func (c *Client) TraceSpansDocument(ctx context.Context, info TraceInfo) (doc []byte, found bool, err error) {
	loc := info.Tags[TraceTagArtifactLocation]
	if _, ok := proxyPath(loc, TraceSpansFile); !ok {
		return nil, false, nil
	}
	body, err := c.OpenArtifact(ctx, "", loc, TraceSpansFile)
	if IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// UploadTraceSpans writes doc as the span document (traces.json) of a
// trace whose info the server returned (it names the artifact location).
func (c *Client) UploadTraceSpans(ctx context.Context, info TraceInfo, doc []byte) error {
	loc := info.Tags[TraceTagArtifactLocation]
	if _, ok := proxyPath(loc, TraceSpansFile); !ok {
		return ErrNotProxied
	}
	return c.UploadBytes(ctx, loc, TraceSpansFile, doc)
}

// CountTraces counts the traces of the given experiments through the v2
// trace search (MLflow 2.14+), for servers without the v3 API. A server
// older than tracing answers 404, counted as no traces.
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
