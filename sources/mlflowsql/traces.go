package mlflowsql

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

var _ sources.TraceReader = (*Source)(nil)

// Revisions that added what Traces reads.
const (
	revTraceV3 = "cbc13b556ace" // trace_info.client_request_id, request_preview, response_preview
	revAssess  = "770bee3ae1dd" // assessments
	revSpans   = "a1b2c3d4e5f6" // spans
	revTraceAn = "75868b020152" // trace_info.trace_name, session_id, token and cost columns
)

// The trace_info columns of revTraceAn, which the server shows as the tag
// mlflow.traceName and the metadata mlflow.trace.session,
// mlflow.trace.tokenUsage and mlflow.trace.cost (JSON objects of the
// non-NULL columns, in this order, as Python's json.dumps writes them).
var (
	tokenColumns = []string{"input_tokens", "output_tokens", "total_tokens", "cache_read_input_tokens",
		"cache_creation_input_tokens", "cache_creation_input_tokens_above_1hr"}
	costColumns = []string{"input_cost", "output_cost", "total_cost"}
)

// spansInStore is the value of the trace tag mlflow.trace.spansLocation of
// a trace whose spans are rows of the spans table.
const spansInStore = "TRACKING_STORE"

// Traces yields the traces of experiment exp (from trace_info, MLflow 2.14
// on), newest first then by id as a server's trace search orders them,
// each mapped as the REST source maps a trace (mlflowconv.NativeTrace) and
// with the span document the server's trace-data route would deliver: the
// spans table's rows, roots first then by start time, for a trace whose
// spans are in the tracking store; else traces.json under its artifact
// location. A trace whose artifact location cannot be read here is yielded
// without spans and counted by Omitted. Its Run is the origin under which
// Runs yields its run (mlflow:INSTANCE/RUN_ID: this source does not
// restore runferry's own runs).
func (s *Source) Traces(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Trace, error] {
	return func(yield func(schema.Trace, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Trace{}, err)
			return
		}
		if !s.has(revTraces) {
			return
		}
		expID, err := s.experimentID(ctx, exp)
		if err != nil {
			yield(schema.Trace{}, err)
			return
		}
		infos, err := s.traceInfos(ctx, expID)
		if err != nil {
			yield(schema.Trace{}, err)
			return
		}
		for _, info := range infos {
			t, err := s.readTrace(ctx, exp, info)
			if err != nil {
				yield(schema.Trace{}, fmt.Errorf("trace %s: %w", info.TraceID, err))
				return
			}
			if !yield(t, nil) {
				return
			}
		}
	}
}

// traceInfos reads the trace_info rows of an experiment, newest first, as
// the REST API's trace infos (without tags and metadata).
func (s *Source) traceInfos(ctx context.Context, expID string) ([]mlflowapi.TraceInfo, error) {
	what := "the traces of experiment " + expID
	cols := "request_id, timestamp_ms, execution_time_ms, {status}"
	if s.has(revTraceV3) {
		cols += ", client_request_id, request_preview, response_preview"
	} else {
		cols += ", NULL, NULL, NULL"
	}
	analytics := s.has(revTraceAn)
	if analytics {
		cols += ", trace_name, session_id, " + strings.Join(tokenColumns, ", ") + ", " + strings.Join(costColumns, ", ")
	}
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT "+cols+" FROM trace_info WHERE experiment_id = ? ORDER BY timestamp_ms DESC, request_id"), expID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var out []mlflowapi.TraceInfo
	for rows.Next() {
		var (
			id                        string
			at, took                  sql.NullInt64
			status, client, req, resp sql.NullString
		)
		var (
			name, session sql.NullString
			tokens        = make([]sql.NullInt64, len(tokenColumns))
			costs         = make([]sql.NullFloat64, len(costColumns))
		)
		dst := []any{&id, &at, &took, &status, &client, &req, &resp}
		if analytics {
			dst = append(dst, &name, &session)
			for i := range tokens {
				dst = append(dst, &tokens[i])
			}
			for i := range costs {
				dst = append(dst, &costs[i])
			}
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		t := mlflowapi.TraceInfo{TraceID: id, State: status.String, ClientRequestID: client.String,
			RequestPreview: req.String, ResponsePreview: resp.String, TraceLocation: mlflowapi.ExperimentLocation(expID)}
		if at.Valid {
			t.RequestTime = time.UnixMilli(at.Int64).UTC().Format(time.RFC3339Nano)
		}
		if took.Valid {
			t.ExecutionDuration = strconv.FormatFloat((time.Duration(took.Int64)*time.Millisecond).Seconds(), 'f', -1, 64) + "s"
		}
		if analytics {
			t.Tags, t.TraceMetadata = map[string]string{}, map[string]string{}
			if name.Valid {
				t.Tags[traceNameTag] = name.String
			}
			if session.Valid {
				t.TraceMetadata[traceSessionMeta] = session.String
			}
			var tok, cost []string
			for i, v := range tokens {
				if v.Valid {
					tok = append(tok, strconv.Quote(tokenColumns[i])+": "+strconv.FormatInt(v.Int64, 10))
				}
			}
			for i, v := range costs {
				if v.Valid {
					cost = append(cost, strconv.Quote(costColumns[i])+": "+pyFloat(v.Float64))
				}
			}
			if tok != nil {
				t.TraceMetadata[tokenUsageMeta] = "{" + strings.Join(tok, ", ") + "}"
			}
			if cost != nil {
				t.TraceMetadata[costMeta] = "{" + strings.Join(cost, ", ") + "}"
			}
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	return out, nil
}

// Keys the server fills from trace_info's columns (revTraceAn); the same
// keys in trace_tags and trace_request_metadata are not shown.
const (
	traceNameTag     = "mlflow.traceName"
	traceSessionMeta = "mlflow.trace.session"
	tokenUsageMeta   = "mlflow.trace.tokenUsage"
	costMeta         = "mlflow.trace.cost"
)

// pyFloat writes f as Python's repr does (json.dumps of a float).
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if a := math.Abs(f); a == 0 || (a >= 1e-4 && a < 1e16) {
		v := strconv.FormatFloat(f, 'f', -1, 64)
		if !strings.Contains(v, ".") {
			v += ".0"
		}
		return v
	}
	v := strconv.FormatFloat(f, 'e', -1, 64) // 1e-05, 1.5e+20: Python's form
	return v
}

// readTrace completes a trace info with its tags, metadata and assessments
// and maps it with its spans.
func (s *Source) readTrace(ctx context.Context, exp schema.Ref, info mlflowapi.TraceInfo) (schema.Trace, error) {
	for _, part := range []struct {
		table string
		to    *map[string]string
	}{{"trace_tags", &info.Tags}, {"trace_request_metadata", &info.TraceMetadata}} {
		kv, err := s.keyValues(ctx, "SELECT {key}, {value} FROM "+part.table+" WHERE request_id = ?", "trace "+info.TraceID+" "+part.table, info.TraceID)
		if err != nil {
			return schema.Trace{}, err
		}
		if *part.to == nil && len(kv) > 0 {
			*part.to = map[string]string{}
		}
		for _, p := range kv {
			if s.has(revTraceAn) && slices.Contains([]string{traceNameTag, traceSessionMeta, tokenUsageMeta, costMeta}, p.Key) {
				continue // shown from trace_info's columns
			}
			(*part.to)[p.Key] = p.Value
		}
	}
	if s.has(revAssess) {
		var n int
		if err := s.st.DB.QueryRowContext(ctx, s.q("SELECT COUNT(*) FROM assessments WHERE trace_id = ?"), info.TraceID).Scan(&n); err != nil {
			return schema.Trace{}, dbErr(ctx, "the assessments of trace "+info.TraceID, err)
		}
		for range n {
			info.Assessments = append(info.Assessments, []byte("{}")) // counted, not read
		}
	}
	t, runID, err := mlflowconv.NativeTrace(info, exp, s.ref("trace/"+info.TraceID))
	if err != nil {
		return t, err
	}
	if runID != "" {
		t.Run = s.ref(runID)
	}
	if t.Spans, err = s.traceSpans(ctx, info); err != nil {
		return t, err
	}
	t.Canonicalize()
	return t, nil
}

// traceSpans returns a trace's span document as the server's trace-data
// route builds it, or nil when the trace has none (or it cannot be read
// here: counted).
func (s *Source) traceSpans(ctx context.Context, info mlflowapi.TraceInfo) ([]byte, error) {
	if info.Tags[mlflowapi.TraceTagSpansLocation] == spansInStore && s.has(revSpans) {
		return s.storedSpans(ctx, info.TraceID)
	}
	dir, why := s.artifactDir(info.Tags[mlflowapi.TraceTagArtifactLocation])
	if why != "" {
		s.mu.Lock()
		s.noSpans[info.TraceID] = why
		s.mu.Unlock()
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, mlflowapi.TraceSpansFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// storedSpans returns {"spans":[...]} of the spans table's rows of a
// trace: root spans first, then by start time (MLflow's own order), rows
// whose content was cleared left out as MLflow leaves them out.
func (s *Source) storedSpans(ctx context.Context, traceID string) ([]byte, error) {
	what := "the spans of trace " + traceID
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT content, parent_span_id, start_time_unix_nano FROM spans WHERE trace_id = ?"), traceID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	type span struct {
		content string
		child   bool
		start   int64
	}
	var spans []span
	for rows.Next() {
		var (
			content, parent sql.NullString
			start           sql.NullInt64
		)
		if err := rows.Scan(&content, &parent, &start); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		if content.String != "" {
			spans = append(spans, span{content.String, parent.Valid, start.Int64})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	slices.SortStableFunc(spans, func(a, b span) int {
		if a.child != b.child {
			if a.child {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.start, b.start)
	})
	var b bytes.Buffer
	b.WriteString(`{"spans":[`)
	for i, sp := range spans {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(sp.content)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}
