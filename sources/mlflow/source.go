package mlflow

import (
	"context"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// Source reads one MLflow tracking server. It is safe for concurrent use.
type Source struct {
	api      Backend
	cfg      Config
	instance string // mlflowconv.Instance of the server, the first part of native origins' ids

	onKeys atomic.Pointer[func(schema.Ref, int, int)] // sources.KeyReporter

	mu     sync.Mutex
	exps   map[schema.Ref]string   // experiment origin -> MLflow experiment id
	runs   map[schema.Ref]*runInfo // run origin -> what Runs found
	listed map[string]bool         // experiment ids whose runs were listed
	// listing holds a token per artifact listing in flight (ListWindow).
	listing chan struct{}
	closed  bool
}

// runInfo is what the source keeps about a run it listed.
type runInfo struct {
	id, artifactURI string
	experimentID    string
	runferry        bool   // written by runferry: has sidecar files
	fingerprint     string // runferry.fingerprint, for RecordedTransform
	header          string // headerDigest of the listed run, for Fingerprint
	changed         int64  // latest of start, end and latest_metrics timestamps, Unix ms (ChangedAt)

	mu       sync.Mutex
	coverage *mlflowconv.Coverage // nil until loaded
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.LogReader       = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.KeyReporter     = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.FormerOriginer  = (*Source)(nil)
)

// System is the origin system of native MLflow entities.
const System = "mlflow"

// New returns a source for cfg. It does no I/O.
func New(cfg Config) (*Source, error) {
	api, err := mlflowapi.New(cfg.API)
	if err != nil {
		return nil, err
	}
	instance, err := mlflowconv.Instance(cfg.API.BaseURL)
	if err != nil {
		return nil, err
	}
	return &Source{api: api, cfg: cfg, instance: instance, exps: map[schema.Ref]string{}, runs: map[schema.Ref]*runInfo{}, listed: map[string]bool{}, listing: make(chan struct{}, ListWindow)}, nil
}

// ref returns the origin of the server's native experiment or run id:
// mlflow:INSTANCE/ID (see mlflowconv.Instance).
func (s *Source) ref(id string) schema.Ref {
	return schema.Ref{System: System, ID: s.instance + "/" + id}
}

// nativeID returns the MLflow id a native origin of this server names, in
// its current form or its former one (mlflow:ID).
func (s *Source) nativeID(ref schema.Ref) (string, bool) {
	if ref.System != System {
		return "", false
	}
	if id, ok := strings.CutPrefix(ref.ID, s.instance+"/"); ok && id != "" && !strings.Contains(id, "/") {
		return id, true
	}
	if ref.ID != "" && !strings.Contains(ref.ID, "/") {
		return ref.ID, true
	}
	return "", false
}

// FormerOrigins returns, for the origin of a native experiment or run of
// this server (mlflow:INSTANCE/ID), the origin runferry gave it before
// origins named the server: mlflow:ID. Origins runferry copied into the
// server (runferry.origin) have none.
func (s *Source) FormerOrigins(ref schema.Ref) []schema.Ref {
	if ref.System != System {
		return nil
	}
	id, ok := strings.CutPrefix(ref.ID, s.instance+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil
	}
	return []schema.Ref{{System: System, ID: id}}
}

// Check proves the server reachable with good credentials; errors are fatal.
func (s *Source) Check(ctx context.Context) error {
	if err := s.api.Ping(ctx); err != nil {
		if fault.KindOf(err) == fault.KindCanceled {
			return err
		}
		return fault.Fatal(err)
	}
	return nil
}

// Close releases the source; later calls fail. It is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *Source) open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fault.Fatal(fmt.Errorf("mlflow source: closed"))
	}
	return nil
}

func (s *Source) view() string {
	if s.cfg.Deleted {
		return mlflowapi.ViewAll
	}
	return mlflowapi.ViewActive
}

// Experiments yields the server's experiments ordered by id (only those
// whose name starts with the experiment-prefix option, which is removed).
// An experiment written by runferry keeps the origin and name it was copied
// from; others get the origin mlflow:INSTANCE/<experiment_id>.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		for e, err := range s.api.SearchExperiments(ctx, "", s.view()) {
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(schema.Experiment{}, err)
				return
			}
			name, ok := strings.CutPrefix(e.Name, s.cfg.ExperimentPrefix)
			if !ok {
				continue
			}
			if name == "" {
				name = e.Name // the prefix is the whole name
			}
			x := mlflowconv.NativeExperiment(e, name, s.ref(e.ExperimentID))
			s.mu.Lock()
			s.exps[x.Origin] = e.ExperimentID
			s.mu.Unlock()
			if !yield(x, nil) {
				return
			}
		}
	}
}

// experimentID returns the MLflow id of the experiment with origin exp.
func (s *Source) experimentID(ctx context.Context, exp schema.Ref) (string, error) {
	s.mu.Lock()
	id, ok := s.exps[exp]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	for e, err := range s.Experiments(ctx) {
		if err != nil {
			return "", err
		}
		if e.Origin == exp {
			s.mu.Lock()
			id = s.exps[exp]
			s.mu.Unlock()
			return id, nil
		}
	}
	return "", fault.Permanent(fmt.Errorf("mlflow source: no experiment %s", exp))
}

// Runs yields the runs of an experiment ordered by start time and run id,
// leaving out runs a later runferry copy superseded.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Run{}, err)
			return
		}
		expID, err := s.experimentID(ctx, exp)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		s.mu.Lock()
		s.listed[expID] = true
		s.mu.Unlock()
		for r, err := range s.api.SearchRuns(ctx, []string{expID}, "", s.view()) {
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(schema.Run{}, err)
				return
			}
			if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); sup {
				continue
			}
			run, info, err := s.convertRun(ctx, exp, r)
			if err != nil {
				yield(schema.Run{}, err)
				return
			}
			s.mu.Lock()
			s.runs[run.Origin] = info
			s.mu.Unlock()
			if !yield(run, nil) {
				return
			}
		}
	}
}

// runInfoOf returns what Runs recorded about a run, or, for a native
// origin never listed, the run id it names.
func (s *Source) runInfoOf(ctx context.Context, ref schema.Ref) (*runInfo, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	info, ok := s.runs[ref]
	s.mu.Unlock()
	if ok {
		return info, nil
	}
	if id, ok := s.nativeID(ref); ok {
		r, err := s.api.GetRun(ctx, id)
		if err != nil {
			return nil, err
		}
		_, rf := mlflowconv.RunTag(r, mlflowconv.TagComplete)
		return &runInfo{id: r.Info.RunID, artifactURI: r.Info.ArtifactURI, runferry: rf}, nil
	}
	return nil, fault.Permanent(fmt.Errorf("mlflow source: run %s was not listed by Runs", ref))
}

var _ sources.Omitter = (*Source)(nil)

// Omitted counts the traces of the experiments whose runs were listed
// (never copied), and the deleted experiments, and the deleted runs of the
// experiments whose runs were listed, that the source leaves out without the deleted
// option (runs a runferry copy superseded are not counted: they are
// runferry's, not the user's). A listing error ends the count early.
func (s *Source) Omitted(ctx context.Context) map[string]int64 {
	if s.open() != nil {
		return nil
	}
	out := map[string]int64{}
	s.countTraces(ctx, out)
	if s.cfg.Deleted {
		return out
	}
	for e, err := range s.api.SearchExperiments(ctx, "", mlflowapi.ViewDeleted) {
		if err != nil {
			break
		}
		if strings.HasPrefix(e.Name, s.cfg.ExperimentPrefix) {
			out["deleted experiments left out (add ?deleted=true to copy them)"]++
		}
	}
	s.mu.Lock()
	ids := slices.Collect(maps.Keys(s.listed))
	s.mu.Unlock()
	slices.Sort(ids)
	for chunk := range slices.Chunk(ids, 100) {
		for r, err := range s.api.SearchRuns(ctx, chunk, "", mlflowapi.ViewDeleted) {
			if err != nil {
				return out
			}
			if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); !sup {
				out["deleted runs left out (add ?deleted=true to copy them)"]++
			}
		}
	}
	return out
}

var _ sources.TransformReader = (*Source)(nil)

// RecordedTransform returns the transform a runferry copy applied to the
// run, from its fingerprint tag ("" for a run not listed yet).
func (s *Source) RecordedTransform(_ context.Context, run schema.Ref) string {
	s.mu.Lock()
	info := s.runs[run]
	s.mu.Unlock()
	if info == nil {
		return ""
	}
	return transform.Recorded(info.fingerprint)
}

// StoreExperiments yields every experiment the server or store holds,
// active and deleted, as it holds them: its own id, name and creation time
// (runferry's tags not applied, the experiment-prefix option not either).
// It is what tells whether two locations reach one store (the CLI refuses
// a copy of a store into itself); it reads the experiment listing only.
func (s *Source) StoreExperiments(ctx context.Context) iter.Seq2[mlflowapi.Experiment, error] {
	return s.api.SearchExperiments(ctx, "", mlflowapi.ViewAll)
}
