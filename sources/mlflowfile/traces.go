package mlflowfile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// Traces of a file store live in <experiment>/traces/<trace id>/:
// trace_info.yaml, tags/, request_metadata/ (one file a key),
// assessments/, and the span document traces.json under the trace's
// artifact location (the tag mlflow.artifactLocation; by default the
// folder's artifacts/).

// traceMeta is trace_info.yaml, of MLflow 3 (trace_id, request_time,
// execution_duration_ms, state) or MLflow 2 (request_id, timestamp_ms,
// execution_time_ms, status).
type traceMeta struct {
	TraceID         string  `yaml:"trace_id"`
	RequestID       string  `yaml:"request_id"`
	ClientRequestID *string `yaml:"client_request_id"`
	RequestPreview  *string `yaml:"request_preview"`
	ResponsePreview *string `yaml:"response_preview"`
	RequestTime     *string `yaml:"request_time"`
	TimestampMs     *int64  `yaml:"timestamp_ms"`
	DurationMs      *int64  `yaml:"execution_duration_ms"`
	ExecutionTimeMs *int64  `yaml:"execution_time_ms"`
	State           string  `yaml:"state"`
	Status          string  `yaml:"status"`
}

// readTrace reads the trace in folder dir.
func (s *store) readTrace(dir string) (mlflowapi.TraceInfo, time.Time, error) {
	var m traceMeta
	var t mlflowapi.TraceInfo
	if err := readMeta(filepath.Join(dir, "trace_info.yaml"), &m); err != nil {
		return t, time.Time{}, err
	}
	t.TraceID = cmp.Or(m.TraceID, m.RequestID)
	t.ClientRequestID, t.RequestPreview, t.ResponsePreview = deref(m.ClientRequestID), deref(m.RequestPreview), deref(m.ResponsePreview)
	t.State = cmp.Or(m.State, m.Status)
	var at time.Time
	switch {
	case m.RequestTime != nil:
		var err error
		if at, err = time.Parse(time.RFC3339Nano, *m.RequestTime); err != nil {
			return t, at, fmt.Errorf("%s: request_time %q: %v", filepath.Join(dir, "trace_info.yaml"), *m.RequestTime, err)
		}
	case m.TimestampMs != nil:
		at = time.UnixMilli(*m.TimestampMs).UTC()
	}
	if !at.IsZero() {
		t.RequestTime = at.UTC().Format(time.RFC3339Nano)
	}
	if ms := m.DurationMs; ms != nil || m.ExecutionTimeMs != nil {
		d := time.Duration(cmp.Or(deref(ms), deref(m.ExecutionTimeMs))) * time.Millisecond
		t.ExecutionDuration = strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
	}
	t.TraceLocation = mlflowapi.ExperimentLocation(filepath.Base(filepath.Dir(filepath.Dir(dir))))
	for _, sub := range []struct {
		dir string
		to  *map[string]string
	}{{"tags", &t.Tags}, {"request_metadata", &t.TraceMetadata}} {
		kv, err := readValues(filepath.Join(dir, sub.dir))
		if err != nil {
			return t, at, err
		}
		if len(kv) > 0 {
			*sub.to = map[string]string{}
		}
		for _, p := range kv {
			(*sub.to)[p[0]] = p[1]
		}
	}
	ents, err := os.ReadDir(filepath.Join(dir, "assessments"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return t, at, err
	}
	for range ents {
		t.Assessments = append(t.Assessments, json.RawMessage("{}")) // counted, not read
	}
	s.setNear(t.Tags[mlflowapi.TraceTagArtifactLocation], filepath.Join(dir, "artifacts"))
	return t, at, nil
}

// SearchTraces yields the traces of the experiments, newest first (then by
// id), as a server's trace search orders them.
func (s *store) SearchTraces(ctx context.Context, experimentIDs []string) iter.Seq2[mlflowapi.TraceInfo, error] {
	return func(yield func(mlflowapi.TraceInfo, error) bool) {
		type found struct {
			t  mlflowapi.TraceInfo
			at time.Time
		}
		var all []found
		for _, id := range experimentIDs {
			if err := ctx.Err(); err != nil {
				yield(mlflowapi.TraceInfo{}, err)
				return
			}
			dir, err := s.experimentDir(id)
			if err != nil {
				continue
			}
			names, err := subdirs(filepath.Join(dir, "traces"))
			if err != nil {
				yield(mlflowapi.TraceInfo{}, damaged(err))
				return
			}
			for _, n := range names {
				t, at, err := s.readTrace(filepath.Join(dir, "traces", n))
				if errors.Is(err, errNoMeta) {
					continue // MLflow skips a folder without trace_info.yaml
				}
				if err != nil {
					yield(mlflowapi.TraceInfo{}, damaged(err))
					return
				}
				all = append(all, found{t, at})
			}
		}
		slices.SortFunc(all, func(a, b found) int {
			return cmp.Or(b.at.Compare(a.at), strings.Compare(a.t.TraceID, b.t.TraceID))
		})
		for _, f := range all {
			if !yield(f.t, nil) {
				return
			}
		}
	}
}

// TraceData returns the trace's span document (traces.json under its
// artifact location), or nil when it has none.
func (s *store) TraceData(ctx context.Context, info mlflowapi.TraceInfo) ([]byte, error) {
	loc := info.Tags[mlflowapi.TraceTagArtifactLocation]
	f, err := s.OpenArtifact(ctx, "", loc, mlflowapi.TraceSpansFile)
	if mlflowapi.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	return b, damaged(err)
}

// CountTraces counts the trace folders (those holding trace_info.yaml) of
// the experiments.
func (s *store) CountTraces(_ context.Context, experimentIDs []string) (int64, error) {
	var n int64
	for _, id := range experimentIDs {
		dir, err := s.experimentDir(id)
		if err != nil {
			continue
		}
		names, err := subdirs(filepath.Join(dir, "traces"))
		if err != nil {
			return n, damaged(err)
		}
		for _, t := range names {
			if _, err := os.Stat(filepath.Join(dir, "traces", t, "trace_info.yaml")); err == nil {
				n++
			}
		}
	}
	return n, nil
}
