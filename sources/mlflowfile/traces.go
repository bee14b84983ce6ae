package mlflowfile

import (
	"context"
	"iter"
	"os"
	"path/filepath"

	"github.com/runferry/runferry/internal/mlflowapi"
)

// Traces of a file store (<experiment>/traces/<trace id>/) are counted,
// not read: SearchTraces answers as a server without the v3 trace API does,
// and CountTraces counts the trace folders, which the source reports.

// SearchTraces answers "not found", as a server without MLflow 3's trace
// API.
func (s *store) SearchTraces(context.Context, []string) iter.Seq2[mlflowapi.TraceInfo, error] {
	return func(yield func(mlflowapi.TraceInfo, error) bool) {
		yield(mlflowapi.TraceInfo{}, notFound("traces of a file store are not read"))
	}
}

// TraceData is never called: SearchTraces yields no trace.
func (s *store) TraceData(context.Context, mlflowapi.TraceInfo) ([]byte, error) {
	return nil, notFound("traces of a file store are not read")
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
