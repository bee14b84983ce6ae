package mlflow

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sync"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// Sink writes into one MLflow tracking server. It is safe for concurrent use.
type Sink struct {
	// FormerOrigins is the engine's word on former origins
	// (sinks.FormerOriginsSetter): FindRun reports a run held under one,
	// OpenRun (or Commit) retires such copies, and an experiment held under
	// one takes the new origin.
	sinks.FormerOrigins

	api *mlflowapi.Client
	cfg Config

	mu       sync.Mutex
	expLocks map[string]*sync.Mutex // by experiment name: one create at a time
	managed  []string               // ids of experiments written with this prefix
	listedAt time.Time
	traces   map[string]*traceIndex // by experiment id, see PutTrace

	modelsMu               sync.Mutex
	modelsProbed, modelsOK bool // whether the server has logged models, once probed

	lifeMu sync.Mutex // guards lives and orders deletes and restores
	lives  map[string]*expLife

	deleted deletedCopies // copies deleted in MLflow by its users, see RestoreCopy
}

var (
	_ sinks.Sink      = (*Sink)(nil)
	_ sinks.RunFinder = (*Sink)(nil)
	_ sinks.Checker   = (*Sink)(nil)

	_ sinks.ExperimentPrefixer  = (*Sink)(nil)
	_ sinks.SharedView          = (*Sink)(nil)
	_ sinks.FormerOriginsSetter = (*Sink)(nil)
)

// managedTTL is how long the list of runferry experiments is trusted before
// FindRun lists them again (another job may have added some).
const managedTTL = 30 * time.Second

// New returns a sink for cfg. It does no I/O.
func New(cfg Config) (*Sink, error) {
	api, err := mlflowapi.New(cfg.API)
	if err != nil {
		return nil, err
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	return &Sink{api: api, cfg: cfg, expLocks: map[string]*sync.Mutex{}}, nil
}

// Check proves that the server answers and accepts the credentials; every
// error is fatal.
func (s *Sink) Check(ctx context.Context) error {
	if err := s.api.Ping(ctx); err != nil {
		if fault.KindOf(err) == fault.KindCanceled {
			return err
		}
		return fault.Fatal(err)
	}
	return nil
}

// Limits declares MLflow's log-batch metric limit and the configured number
// of runs in flight, and asks the engine to adapt the metric batches in
// flight: a SQLite-backed server is fastest with one or two, a server with
// several workers with more.
func (s *Sink) Limits() sinks.Limits {
	return sinks.Limits{MaxInFlight: s.cfg.MaxInFlight, MaxMetricsPerWrite: mlflowapi.MaxMetricsPerBatch, AdaptiveWrites: true}
}

// SharedView marks an MLflow server as seen by all its users: the CLI
// leaves personal data out unless asked (sinks.SharedView).
func (s *Sink) SharedView() {}

// Close does nothing: every write is durable when it returns.
func (s *Sink) Close() error { return nil }

// PutExperiment finds the experiment named prefix+e.Name, or creates it,
// and tags it as runferry's (origin, source name, prefix, description,
// tags). Experiments are matched by name: a second source experiment with
// the same name shares it. The experiment ends deleted when the source's is
// (see expLife) and active otherwise. A deleted experiment of that name
// that runferry did not write under this prefix is an error, since MLflow
// keeps names unique across deleted experiments. Bookkeeping tags a version
// before 11 wrote under their former names are moved to the current ones
// (the former removed where the server can: MLflow 2.20 and later).
func (s *Sink) PutExperiment(ctx context.Context, e schema.Experiment) (string, error) {
	if err := e.Validate(); err != nil {
		return "", fault.Permanent(err)
	}
	name := s.cfg.ExperimentPrefix + e.Name
	if len(name) > mlflowapi.MaxExperimentNameBytes {
		return "", fault.Permanent(fmt.Errorf("mlflow: experiment name %q is longer than %d bytes, which MLflow's SQL stores reject; use a shorter experiment-prefix or rename it", name, mlflowapi.MaxExperimentNameBytes))
	}
	lock := s.nameLock(name)
	lock.Lock()
	defer lock.Unlock()
	tags := experimentTags(e, s.cfg.ExperimentPrefix)
	exp, err := s.api.GetExperimentByName(ctx, name)
	switch {
	case mlflowapi.IsNotFound(err):
		id, err := s.api.CreateExperiment(ctx, name, tags)
		if mlflowapi.IsCode(err, mlflowapi.CodeAlreadyExists) { // created by a retry or another job
			exp, err = s.api.GetExperimentByName(ctx, name)
			id = exp.ExperimentID
			if err == nil {
				err = otherName(exp, name)
			}
		}
		if err != nil {
			return "", fmt.Errorf("creating experiment %q: %w", name, err)
		}
		s.addManaged(id)
		s.noteExperiment(id, exp.LifecycleStage == mlflowapi.StageDeleted, e.Deleted)
		if err := s.settleExperiment(ctx, id); err != nil {
			return "", err
		}
		return id, nil
	case err != nil:
		return "", err
	case otherName(exp, name) != nil:
		return "", otherName(exp, name)
	case exp.LifecycleStage == mlflowapi.StageDeleted && !s.ours(exp):
		return "", fault.Permanent(fmt.Errorf("mlflow: experiment %q (id %s) exists but is deleted, and MLflow keeps deleted names: restore it in MLflow, purge it with `mlflow gc`, or choose another experiment-prefix", name, exp.ExperimentID))
	}
	s.noteExperiment(exp.ExperimentID, exp.LifecycleStage == mlflowapi.StageDeleted, e.Deleted)
	have := map[string]string{}
	for _, t := range exp.Tags {
		have[t.Key] = t.Value
	}
	var set []mlflowapi.Tag
	for _, t := range tags {
		v, ok := mlflowconv.LookupTag(have, t.Key)                                   // a copy by a version before 11 has the former names
		keepFirst := t.Key == mlflowconv.TagOrigin || t.Key == mlflowconv.TagExpName // shared by two source experiments: the first keeps them
		if t.Key == mlflowconv.TagOrigin && slices.Contains(s.FormerKeys(e.Origin), v) {
			keepFirst = false // written under the former origin of e: it takes the new one
		}
		if ok && (v == t.Value || keepFirst && v != "") {
			if _, current := have[t.Key]; !current {
				t.Value = v // moved to the current name, value kept
				set = append(set, t)
			}
			continue
		}
		set = append(set, t)
	}
	var former []string // bookkeeping under the names before 11, shown by MLflow's UI
	for _, t := range tags {
		if f := mlflowconv.FormerTag(t.Key); f != "" {
			if _, ok := have[f]; ok {
				former = append(former, f)
			}
		}
	}
	if len(set) > 0 || len(former) > 0 {
		// MLflow tags only active experiments.
		err := s.withExperimentActive(ctx, exp.ExperimentID, func() error {
			for _, t := range set {
				if err := s.api.SetExperimentTag(ctx, exp.ExperimentID, t.Key, t.Value); err != nil {
					return fmt.Errorf("tagging experiment %q: %w", name, err)
				}
			}
			for _, k := range former { // after the current names are set
				err := s.api.DeleteExperimentTag(ctx, exp.ExperimentID, k)
				if err != nil && !mlflowapi.IsNotFound(err) { // a server before 2.20 keeps them
					return fmt.Errorf("removing tag %s of experiment %q: %w", k, name, err)
				}
			}
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	s.addManaged(exp.ExperimentID)
	if err := s.settleExperiment(ctx, exp.ExperimentID); err != nil {
		return "", err
	}
	return exp.ExperimentID, nil
}

// otherName refuses an experiment the server gave for name whose name is
// not name: a server whose store is MySQL or MariaDB compares experiment
// names with the database's collation, case-insensitive by default (and
// blind to trailing spaces), so "vision" finds "Vision" and MLflow refuses
// to create "vision" beside it. Taking it would put the runs of two source
// experiments into one with nothing said.
func otherName(exp mlflowapi.Experiment, name string) error {
	if exp.Name == name {
		return nil
	}
	return fault.Permanent(fmt.Errorf("mlflow: the server gives its experiment %q (id %s) for the name %q: its store compares names without case or trailing spaces (a MySQL or MariaDB collation), so the two cannot be two experiments there; the runs of %q are not written into it: copy that experiment alone (--include) under an experiment-prefix, or rename one of the two", exp.Name, exp.ExperimentID, name, name))
}

// ours reports whether runferry wrote exp under this sink's prefix (by
// the current or the former tag names).
func (s *Sink) ours(exp mlflowapi.Experiment) bool {
	tags := map[string]string{}
	for _, t := range exp.Tags {
		tags[t.Key] = t.Value
	}
	managed, _ := mlflowconv.LookupTag(tags, mlflowconv.TagManaged)
	prefix, ok := mlflowconv.LookupTag(tags, mlflowconv.TagPrefix)
	return managed == "true" && ok && prefix == s.cfg.ExperimentPrefix
}

func (s *Sink) nameLock(name string) *sync.Mutex {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.expLocks[name]
	if !ok {
		l = &sync.Mutex{}
		s.expLocks[name] = l
	}
	return l
}

// experimentTags maps an experiment onto MLflow experiment tags.
func experimentTags(e schema.Experiment, prefix string) []mlflowapi.Tag {
	tags := []mlflowapi.Tag{
		{Key: mlflowconv.TagManaged, Value: "true"},
		{Key: mlflowconv.TagPrefix, Value: prefix},
		{Key: mlflowconv.TagOrigin, Value: e.Origin.String()},
		{Key: mlflowconv.TagExpName, Value: e.Name},
	}
	// MLflow sets an experiment's creation time itself: the source's is
	// kept in a tag, which the MLflow source reads back.
	created := mlflowconv.CreatedAtUnknown
	if !e.CreatedAt.IsZero() {
		created = e.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	tags = append(tags, mlflowapi.Tag{Key: mlflowconv.TagExpCreatedAt, Value: created})
	if e.Description != "" {
		v, _ := mlflowconv.Truncate(e.Description, mlflowapi.MaxExperimentTagValue)
		tags = append(tags, mlflowapi.Tag{Key: mlflowapi.TagNote, Value: v})
	}
	mapped := map[string]string{}
	for _, t := range e.Tags {
		k, changed := mlflowconv.MapKey(t.Key)
		if changed {
			mapped[k] = t.Key
		}
		v, _ := mlflowconv.Truncate(t.Value, mlflowapi.MaxExperimentTagValue)
		tags = append(tags, mlflowapi.Tag{Key: k, Value: v})
	}
	if len(mapped) > 0 {
		b, _ := json.Marshal(mapped)
		tags = append(tags, mlflowapi.Tag{Key: mlflowconv.TagExpTagKeys, Value: string(b)})
	}
	return tags
}

func (s *Sink) addManaged(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.managed, id) {
		s.managed = append(s.managed, id)
	}
}

// SetExperimentPrefix sets the experiment-prefix option (for the CLI's
// --experiment-prefix); it fails when the location set another one.
func (s *Sink) SetExperimentPrefix(prefix string) error {
	if s.cfg.ExperimentPrefix != "" && s.cfg.ExperimentPrefix != prefix {
		return fmt.Errorf("mlflow: the location says experiment-prefix=%q and --experiment-prefix says %q; give one", s.cfg.ExperimentPrefix, prefix)
	}
	s.cfg.ExperimentPrefix = prefix
	return nil
}

// managedExperiments returns the ids of the experiments runferry wrote with
// this sink's prefix, listing them again when the list is older than
// managedTTL.
func (s *Sink) managedExperiments(ctx context.Context) ([]string, error) {
	s.mu.Lock()
	if time.Since(s.listedAt) < managedTTL {
		ids := slices.Clone(s.managed)
		s.mu.Unlock()
		return ids, nil
	}
	s.mu.Unlock()
	var ids []string
	for _, key := range []string{mlflowconv.TagManaged, mlflowconv.FormerTag(mlflowconv.TagManaged)} {
		filter := fmt.Sprintf("tags.`%s` = 'true'", key)
		for e, err := range s.api.SearchExperiments(ctx, filter, mlflowapi.ViewAll) {
			if err != nil {
				return nil, err
			}
			if s.ours(e) && !slices.Contains(ids, e.ExperimentID) {
				ids = append(ids, e.ExperimentID)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.managed { // created since the listing began
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	s.managed, s.listedAt = ids, time.Now()
	return slices.Clone(ids), nil
}

// runsTagged returns the runs, active or deleted, of runferry's experiments
// whose bookkeeping tag key, under its current or its former name
// (mlflowconv.FormerTag), has value (a hex key, safe in a filter), leaving
// out superseded runs unless withSuperseded.
func (s *Sink) runsTagged(ctx context.Context, key, value string, withSuperseded bool) ([]mlflowapi.Run, error) {
	ids, err := s.managedExperiments(ctx)
	if err != nil {
		return nil, err
	}
	var out []mlflowapi.Run
	seen := map[string]bool{}
	for _, k := range []string{key, mlflowconv.FormerTag(key)} {
		filter := fmt.Sprintf("tags.`%s` = '%s'", k, value)
		for chunk := range slices.Chunk(ids, 100) {
			for r, err := range s.api.SearchRuns(ctx, chunk, filter, mlflowapi.ViewAll) {
				if err != nil {
					return nil, err
				}
				if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); (sup && !withSuperseded) || seen[r.Info.RunID] {
					continue
				}
				seen[r.Info.RunID] = true
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// FindRun reports what the server holds for origin (found by its origin key
// under the current or the former tag name): complete when a run
// carries the complete tag (and is deleted if that says "deleted"),
// incomplete when a run carries only the origin, under a former origin when
// none carries the origin but one carries a former origin (see
// SetFormerOrigins), missing otherwise. The fingerprint is the one written
// at commit.
func (s *Sink) FindRun(ctx context.Context, origin schema.Ref) (sinks.RunState, string, error) {
	state, fp, err := s.findRun(ctx, origin.String())
	if err != nil || state != sinks.RunMissing {
		return state, fp, err
	}
	for _, f := range s.FormerKeys(origin) {
		held, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(f), false)
		if err != nil {
			return sinks.RunMissing, "", err
		}
		if len(held) > 0 {
			return sinks.RunUnderFormerOrigin, "", nil
		}
	}
	return sinks.RunMissing, "", nil
}

// findRun is FindRun for one origin, former origins left aside.
func (s *Sink) findRun(ctx context.Context, origin string) (sinks.RunState, string, error) {
	runs, err := s.runsTagged(ctx, mlflowconv.TagOriginKey, mlflowconv.OriginKey(origin), true)
	if err != nil {
		return sinks.RunMissing, "", err
	}
	state := sinks.RunMissing
	for _, r := range runs {
		if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); sup {
			if r.Info.LifecycleStage == mlflowapi.StageActive {
				state = max(state, sinks.RunIncomplete) // a redo stopped half-way
			}
			continue
		}
		if completeRun(r) {
			fp, _ := mlflowconv.RunTag(r, mlflowconv.TagFingerprint)
			return sinks.RunComplete, fp, nil
		}
		state = sinks.RunIncomplete
	}
	return state, "", nil
}

// completeRun reports whether r was committed and, if committed as deleted,
// was deleted.
func completeRun(r mlflowapi.Run) bool {
	v, ok := mlflowconv.RunTag(r, mlflowconv.TagComplete)
	switch {
	case !ok:
		return false
	case v == mlflowconv.CompleteDeleted:
		return r.Info.LifecycleStage == mlflowapi.StageDeleted
	}
	return true
}

// whileActive runs fn on run r, restoring it first and deleting it again
// afterwards when it is deleted: MLflow refuses writes to deleted runs.
func (s *Sink) whileActive(ctx context.Context, r mlflowapi.Run, fn func() error) error {
	if r.Info.LifecycleStage != mlflowapi.StageDeleted {
		return fn()
	}
	if err := s.api.RestoreRun(ctx, r.Info.RunID); err != nil {
		return err
	}
	if err := fn(); err != nil {
		return err
	}
	return s.api.DeleteRun(ctx, r.Info.RunID)
}

// supersede retires a run written earlier from the same origin: it is
// tagged superseded (so no search for the origin finds it) and
// deleted.
func (s *Sink) supersede(ctx context.Context, r mlflowapi.Run) error {
	return s.whileActive(ctx, r, func() error {
		if _, ok := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); !ok {
			if err := s.api.SetTag(ctx, r.Info.RunID, mlflowconv.TagSuperseded, time.Now().UTC().Format(time.RFC3339)); err != nil {
				return err
			}
		}
		if r.Info.LifecycleStage == mlflowapi.StageActive {
			return s.api.DeleteRun(ctx, r.Info.RunID)
		}
		return nil
	})
}

// StoreExperiments yields every experiment the server holds, active and
// deleted, as it holds them: its own id, name and creation time (whoever
// wrote them, whatever the experiment-prefix option). It is what tells
// whether a source reaches this same server or its store (the CLI refuses
// a copy of a store into itself); it reads the experiment listing only.
func (s *Sink) StoreExperiments(ctx context.Context) iter.Seq2[mlflowapi.Experiment, error] {
	return s.api.SearchExperiments(ctx, "", mlflowapi.ViewAll)
}
