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

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
)

// Revisions that added what SearchTraces and TraceData read.
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

// SearchTraces yields the traces of the experiments (from trace_info,
// MLflow 2.14 on; none before), newest first then by id as a server's
// trace search orders them, each with its tags, request metadata and
// assessments (counted, not read) as the server returns them.
func (s *store) SearchTraces(ctx context.Context, experimentIDs []string) iter.Seq2[mlflowapi.TraceInfo, error] {
	return func(yield func(mlflowapi.TraceInfo, error) bool) {
		if !s.has(revTraces) {
			return
		}
		var all []mlflowapi.TraceInfo
		var at []int64
		for _, expID := range experimentIDs {
			infos, ms, err := s.traceInfos(ctx, expID)
			if err != nil {
				yield(mlflowapi.TraceInfo{}, err)
				return
			}
			all, at = append(all, infos...), append(at, ms...)
		}
		order := make([]int, len(all))
		for i := range order {
			order[i] = i
		}
		if len(experimentIDs) > 1 {
			slices.SortStableFunc(order, func(a, b int) int {
				return cmp.Or(cmp.Compare(at[b], at[a]), strings.Compare(all[a].TraceID, all[b].TraceID))
			})
		}
		for _, i := range order {
			info, err := s.completeTrace(ctx, all[i])
			if err != nil {
				yield(info, fmt.Errorf("trace %s: %w", info.TraceID, err))
				return
			}
			if !yield(info, nil) {
				return
			}
		}
	}
}

// CountTraces counts the traces of the experiments.
func (s *store) CountTraces(ctx context.Context, experimentIDs []string) (int64, error) {
	if !s.has(revTraces) || len(experimentIDs) == 0 {
		return 0, nil
	}
	args := make([]any, len(experimentIDs))
	for i, id := range experimentIDs {
		args[i] = id
	}
	var n int64
	q := "SELECT COUNT(*) FROM trace_info WHERE experiment_id IN (?" + strings.Repeat(", ?", len(args)-1) + ")"
	if err := s.st.DB.QueryRowContext(ctx, s.q(q), args...).Scan(&n); err != nil {
		return 0, dbErr(ctx, "the traces of experiments "+strings.Join(experimentIDs, ", "), err)
	}
	return n, nil
}

// traceInfos reads the trace_info rows of an experiment, newest first, as
// the REST API's trace infos (without tags and metadata), and their
// timestamps.
func (s *store) traceInfos(ctx context.Context, expID string) ([]mlflowapi.TraceInfo, []int64, error) {
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
		return nil, nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var (
		out []mlflowapi.TraceInfo
		at  []int64
	)
	for rows.Next() {
		var (
			id                        string
			ms, took                  sql.NullInt64
			status, client, req, resp sql.NullString
		)
		var (
			name, session sql.NullString
			tokens        = make([]sql.NullInt64, len(tokenColumns))
			costs         = make([]sql.NullFloat64, len(costColumns))
		)
		dst := []any{&id, &ms, &took, &status, &client, &req, &resp}
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
			return nil, nil, dbErr(ctx, what, err)
		}
		t := mlflowapi.TraceInfo{TraceID: id, State: status.String, ClientRequestID: client.String,
			RequestPreview: req.String, ResponsePreview: resp.String, TraceLocation: mlflowapi.ExperimentLocation(expID)}
		if ms.Valid {
			t.RequestTime = time.UnixMilli(ms.Int64).UTC().Format(time.RFC3339Nano)
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
		at = append(at, ms.Int64)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, dbErr(ctx, what, err)
	}
	return out, at, nil
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

// completeTrace completes a trace info with its tags, metadata and
// assessments.
func (s *store) completeTrace(ctx context.Context, info mlflowapi.TraceInfo) (mlflowapi.TraceInfo, error) {
	for _, part := range []struct {
		table string
		to    *map[string]string
	}{{"trace_tags", &info.Tags}, {"trace_request_metadata", &info.TraceMetadata}} {
		kv, err := s.keyValues(ctx, "SELECT {key}, {value} FROM "+part.table+" WHERE request_id = ?", "trace "+info.TraceID+" "+part.table, info.TraceID)
		if err != nil {
			return info, err
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
			return info, dbErr(ctx, "the assessments of trace "+info.TraceID, err)
		}
		for range n {
			info.Assessments = append(info.Assessments, []byte("{}")) // counted, not read
		}
	}
	return info, nil
}

// TraceData returns a trace's span document as the server's trace-data
// route builds it: the spans table's rows for a trace whose spans are in
// the tracking store, else traces.json under its artifact location; nil
// when the trace has none, or when its location cannot be read here
// (recorded for Omitted with the reason).
func (s *store) TraceData(ctx context.Context, info mlflowapi.TraceInfo) ([]byte, error) {
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
	if err != nil {
		return nil, fault.Permanent(err)
	}
	return b, nil
}

// storedSpans returns {"spans":[...]} of the spans table's rows of a
// trace: root spans first, then by start time (MLflow's own order), rows
// whose content was cleared left out as MLflow leaves them out.
func (s *store) storedSpans(ctx context.Context, traceID string) ([]byte, error) {
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
