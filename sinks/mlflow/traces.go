package mlflow

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

var _ sinks.TraceWriter = (*Sink)(nil)

// Coverage kinds of traces the destination does not hold as given.
const (
	CoverageTraceRunLinks   = "trace links to runs the destination does not hold (kept as the tag runferry.source_run)"
	CoverageTraceAssessment = "trace assessments not copied (feedback and expectations stay in the source)"
	CoverageTraceSpans      = "trace spans not copied (the trace's artifact location is not served by the mlflow-artifacts proxy)"
)

// TagTraceComplete is set, last, on a trace whose span document was
// written: a trace found without it is written again. Like a run's, it is
// hidden bookkeeping (mlflowconv.TagComplete).
const TagTraceComplete = mlflowconv.TagComplete

// traceIndex is what the sink knows of the traces of one experiment:
// runferry's copies by the origin they were copied from.
type traceIndex struct {
	once   sync.Once
	err    error
	copies map[string]mlflowapi.TraceInfo
}

// PutTrace creates t in experiment expID as a new MLflow trace (StartTraceV3
// with t's info, then its span document uploaded as traces.json under the
// trace's artifact location, then the hidden tag mlflow.runferry.complete), or finds the
// trace an earlier call wrote from t.Origin (the tag runferry.origin) and
// sets its tags to t's (a copy left without that tag gets its
// spans again). The new trace keeps t.ID when the destination holds no
// trace of that id, else it gets a fresh one. Its request metadata
// mlflow.sourceRun names the destination's run from t.Run (runs, or a
// search by origin); the tag runferry.source_run keeps t.Run in any case.
// What the destination does not get is counted by kind: the link to a run
// it does not hold, assessments, spans whose location is not proxied.
func (s *Sink) PutTrace(ctx context.Context, expID string, t schema.Trace, runs map[schema.Ref]string) (map[string]int64, error) {
	if t.Origin.IsZero() {
		return nil, fault.Permanent(errors.New("mlflow: trace without origin"))
	}
	cov := map[string]int64{}
	if t.Assessments > 0 {
		cov[CoverageTraceAssessment] += int64(t.Assessments)
	}
	idx, err := s.traceIndex(ctx, expID)
	if err != nil {
		return nil, err
	}
	want := map[string]string{mlflowconv.TagOrigin: t.Origin.String()}
	for _, tag := range t.Tags {
		want[tag.Key] = tag.Value
	}
	meta := map[string]string{}
	for _, m := range t.Metadata {
		meta[m.Key] = m.Value
	}
	if !t.Run.IsZero() {
		want[mlflowconv.TagSourceRun] = t.Run.String()
		runID, _, err := s.destRun(ctx, t.Run, runs)
		if err != nil {
			return nil, err
		}
		if runID != "" {
			meta[mlflowapi.TraceMetaSourceRun] = runID
		} else {
			cov[CoverageTraceRunLinks]++
		}
	}
	err = s.withExperimentActive(ctx, expID, func() error {
		s.mu.Lock()
		got, found := idx.copies[t.Origin.String()]
		s.mu.Unlock()
		if !found {
			info, err := s.startTrace(ctx, expID, t, want, meta)
			if err != nil {
				return err
			}
			got = info
			s.mu.Lock()
			idx.copies[t.Origin.String()] = got
			s.mu.Unlock()
		} else if err := s.updateTraceTags(ctx, got, want); err != nil {
			return err
		}
		if got.Tags[TagTraceComplete] == "true" {
			return nil
		}
		if len(t.Spans) > 0 {
			err := s.api.UploadTraceSpans(ctx, got, t.Spans)
			if errors.Is(err, mlflowapi.ErrNotProxied) {
				cov[CoverageTraceSpans]++
			} else if err != nil {
				return fmt.Errorf("writing the spans of trace %s: %w", got.TraceID, err)
			}
		}
		if err := s.api.SetTraceTag(ctx, got.TraceID, TagTraceComplete, "true"); err != nil {
			return err
		}
		got.Tags[TagTraceComplete] = "true"
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("trace %s: %w", t.Origin, err)
	}
	return cov, nil
}

// traceIndex lists, once per experiment and sink, the traces runferry
// wrote into experiment expID.
func (s *Sink) traceIndex(ctx context.Context, expID string) (*traceIndex, error) {
	s.mu.Lock()
	if s.traces == nil {
		s.traces = map[string]*traceIndex{}
	}
	idx, ok := s.traces[expID]
	if !ok {
		idx = &traceIndex{copies: map[string]mlflowapi.TraceInfo{}}
		s.traces[expID] = idx
	}
	s.mu.Unlock()
	idx.once.Do(func() {
		for info, err := range s.api.SearchTraces(ctx, []string{expID}) {
			if err != nil {
				idx.err = fmt.Errorf("listing the traces of experiment %s: %w", expID, err)
				return
			}
			if o := info.Tags[mlflowconv.TagOrigin]; o != "" {
				s.mu.Lock()
				idx.copies[o] = info
				s.mu.Unlock()
			}
		}
	})
	if idx.err != nil {
		s.mu.Lock()
		delete(s.traces, expID) // the next call lists again
		s.mu.Unlock()
		return nil, idx.err
	}
	return idx, nil
}

// startTrace creates the trace info of t with tags and metadata meta, under
// t.ID when that id is free, and returns it as the server stored it.
func (s *Sink) startTrace(ctx context.Context, expID string, t schema.Trace, tags, meta map[string]string) (mlflowapi.TraceInfo, error) {
	id := t.ID
	if id != "" {
		_, err := s.api.GetTraceInfo(ctx, id)
		switch {
		case mlflowapi.IsNotFound(err):
		case err != nil:
			return mlflowapi.TraceInfo{}, err
		default:
			id = "" // another trace's (the source's own, on the same server)
		}
	}
	if id == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return mlflowapi.TraceInfo{}, err
		}
		id = "tr-" + hex.EncodeToString(b[:])
	}
	info := mlflowapi.TraceInfo{
		TraceID: id, ClientRequestID: t.ClientRequestID, TraceLocation: mlflowapi.ExperimentLocation(expID),
		RequestPreview: t.RequestPreview, ResponsePreview: t.ResponsePreview, State: t.State,
		TraceMetadata: meta, Tags: tags,
		ExecutionDuration: fmt.Sprintf("%.3fs", t.Duration.Seconds()),
	}
	if !t.RequestTime.IsZero() {
		info.RequestTime = t.RequestTime.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	if info.State == "" {
		info.State = "STATE_UNSPECIFIED"
	}
	got, err := s.api.StartTrace(ctx, info)
	if err != nil {
		return got, err
	}
	if got.Tags == nil {
		got.Tags = map[string]string{}
	}
	return got, nil
}

// updateTraceTags sets the tags of the destination trace got to want:
// changed and new tags are set, user tags want lacks are removed (MLflow's
// own and runferry's stay).
func (s *Sink) updateTraceTags(ctx context.Context, got mlflowapi.TraceInfo, want map[string]string) error {
	for k, v := range want {
		if cur, ok := got.Tags[k]; ok && cur == v {
			continue
		}
		if err := s.api.SetTraceTag(ctx, got.TraceID, k, v); err != nil {
			return err
		}
		got.Tags[k] = v
	}
	for k := range got.Tags {
		if _, ok := want[k]; ok || mlflowconv.Bookkeeping(k) || k == mlflowapi.TraceTagArtifactLocation || k == mlflowapi.TraceTagSpansLocation || k == "mlflow.traceName" {
			continue
		}
		if err := s.api.DeleteTraceTag(ctx, got.TraceID, k); err != nil {
			return err
		}
		delete(got.Tags, k)
	}
	return nil
}
