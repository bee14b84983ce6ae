package mlflowfile

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowlocal"
)

// Folders of a file store (mlflow/store/tracking/file_store.py).
const (
	trashDir    = ".trash"
	registryDir = "models" // the model registry, at the store's root
	metaFile    = "meta.yaml"
)

// reservedExperimentDirs are folders of an experiment that are not runs.
var reservedExperimentDirs = []string{"tags", "datasets", "traces", "models"}

// store reads one mlruns/ folder and answers in the REST API's terms, as
// a server serving that folder would (sources/mlflow.Backend).
type store struct {
	root string // absolute
	arts artifactResolver

	mu        sync.Mutex
	exps      map[string]string              // experiment id -> folder
	runs      map[string]runDir              // run id -> where it is
	skipped   map[string]map[string]bool     // folders MLflow skips too, by kind (Omitted)
	unfounded map[string]bool                // artifact roots not found, by run id
	near      map[string]string              // artifact root URI -> its folder next to the store
	models    map[string]map[string][]string // experiment id -> logging run id -> logged model folders
}

// runDir is where a run lives.
type runDir struct {
	dir, expID, expDir string
}

func newStore(root string, arts artifactResolver) *store {
	return &store{root: root, arts: arts, exps: map[string]string{}, runs: map[string]runDir{},
		skipped: map[string]map[string]bool{}, unfounded: map[string]bool{}, near: map[string]string{}, models: map[string]map[string][]string{}}
}

// notFound is an error mlflowapi.IsNotFound reports, as the server's 404.
func notFound(format string, args ...any) error {
	return fault.Permanent(&mlflowapi.APIError{Status: http.StatusNotFound, Code: mlflowapi.CodeDoesNotExist,
		Message: fmt.Sprintf(format, args...)})
}

// damaged classifies an error reading the store (nothing here is
// classified retryable): the store's bytes are wrong, or a file cannot be
// read, which another try will not mend.
func damaged(err error) error {
	if err == nil || fault.KindOf(err) != fault.KindRetryable { // classified already, or canceled
		return err
	}
	return fault.Permanent(err)
}

// skip records folder dir as skipped for kind; listings repeat, so a
// folder counts once.
func (s *store) skip(kind, dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.skipped[kind] == nil {
		s.skipped[kind] = map[string]bool{}
	}
	s.skipped[kind][dir] = true
}

// Ping proves the folder is a file store: a readable directory.
func (s *store) Ping(context.Context) error {
	fi, err := os.Stat(s.root)
	if err != nil {
		return fault.Fatal(fmt.Errorf("mlflow file store: %w", err))
	}
	if !fi.IsDir() {
		return fault.Fatal(fmt.Errorf("mlflow file store: %s is not a directory", s.root))
	}
	return nil
}

// subdirs lists the folders directly in dir, sorted; a missing dir has none.
func subdirs(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// experimentDirs lists the folders of experiments in view: the store's
// root (less .trash and the registry) for active ones, .trash for deleted
// ones, as MLflow's FileStore does.
func (s *store) experimentDirs(view string) ([]string, error) {
	if err := s.Ping(context.Background()); err != nil {
		return nil, err // no store: not an empty one
	}
	var out []string
	if view != mlflowapi.ViewDeleted {
		names, err := subdirs(s.root)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if n != trashDir && n != registryDir {
				out = append(out, filepath.Join(s.root, n))
			}
		}
	}
	if view != mlflowapi.ViewActive {
		names, err := subdirs(filepath.Join(s.root, trashDir))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			out = append(out, filepath.Join(s.root, trashDir, n))
		}
	}
	return out, nil
}

// readExperiment reads the experiment in folder dir; ok is false for a
// folder MLflow does not take for an experiment (no meta.yaml, or an id
// other than the folder's name).
func (s *store) readExperiment(dir string) (mlflowapi.Experiment, bool, error) {
	var m experimentMeta
	err := readMeta(filepath.Join(dir, metaFile), &m)
	if errors.Is(err, errNoMeta) {
		s.skip("folders without meta.yaml skipped (not experiments)", dir)
		return mlflowapi.Experiment{}, false, nil
	}
	if err != nil {
		return mlflowapi.Experiment{}, false, damaged(err)
	}
	if string(m.ExperimentID) != filepath.Base(dir) {
		s.skip("experiments skipped: id in meta.yaml differs from the folder's name (MLflow ignores them too)", dir)
		return mlflowapi.Experiment{}, false, nil
	}
	e := mlflowapi.Experiment{ExperimentID: string(m.ExperimentID), Name: m.Name, ArtifactLocation: m.ArtifactLocation,
		LifecycleStage: cmp.Or(m.LifecycleStage, mlflowapi.StageActive), CreationTime: deref(m.CreationTime),
		LastUpdateTime: deref(m.LastUpdateTime)}
	tags, err := readValues(filepath.Join(dir, "tags"))
	if err != nil {
		return e, false, damaged(err)
	}
	for _, kv := range tags {
		e.Tags = append(e.Tags, mlflowapi.Tag{Key: kv[0], Value: kv[1]})
	}
	return e, true, nil
}

// SearchExperiments yields the experiments in view ordered by id (as text,
// as the file store sorts them). filter must be "".
func (s *store) SearchExperiments(ctx context.Context, filter, view string) iter.Seq2[mlflowapi.Experiment, error] {
	return func(yield func(mlflowapi.Experiment, error) bool) {
		if filter != "" {
			yield(mlflowapi.Experiment{}, fault.Permanent(fmt.Errorf("mlflow file store: filters are not supported")))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(mlflowapi.Experiment{}, err)
			return
		}
		dirs, err := s.experimentDirs(view)
		if err != nil {
			yield(mlflowapi.Experiment{}, damaged(err))
			return
		}
		type found struct {
			e   mlflowapi.Experiment
			dir string
		}
		var all []found
		var damage error
		seen := map[string]bool{}
		for _, d := range dirs {
			if err := ctx.Err(); err != nil {
				yield(mlflowapi.Experiment{}, err)
				return
			}
			e, ok, err := s.readExperiment(d)
			if err != nil {
				damage = cmp.Or(damage, err)
				continue
			}
			if ok && !seen[e.ExperimentID] { // the active copy wins, as in MLflow
				seen[e.ExperimentID] = true
				all = append(all, found{e, d})
			}
		}
		slices.SortFunc(all, func(a, b found) int { return strings.Compare(a.e.ExperimentID, b.e.ExperimentID) })
		for _, f := range all {
			s.mu.Lock()
			s.exps[f.e.ExperimentID] = f.dir
			s.mu.Unlock()
			if !yield(f.e, nil) {
				return
			}
		}
		if damage != nil {
			yield(mlflowapi.Experiment{}, damage)
		}
	}
}

// experimentDir returns the folder of experiment id (active first).
func (s *store) experimentDir(id string) (string, error) {
	s.mu.Lock()
	dir, ok := s.exps[id]
	s.mu.Unlock()
	if ok {
		return dir, nil
	}
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return "", notFound("experiment %q not found", id)
	}
	for _, d := range []string{filepath.Join(s.root, id), filepath.Join(s.root, trashDir, id)} {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			s.mu.Lock()
			s.exps[id] = d
			s.mu.Unlock()
			return d, nil
		}
	}
	return "", notFound("experiment %s not found in %s", id, s.root)
}

// SearchRuns yields the runs of experiments in view, ordered by start time
// then run id. A run whose meta.yaml is damaged is yielded as an error
// after every readable run.
func (s *store) SearchRuns(ctx context.Context, experimentIDs []string, filter, view string) iter.Seq2[mlflowapi.Run, error] {
	return func(yield func(mlflowapi.Run, error) bool) {
		if filter != "" {
			yield(mlflowapi.Run{}, fault.Permanent(fmt.Errorf("mlflow file store: filters are not supported")))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(mlflowapi.Run{}, err)
			return
		}
		var all []mlflowapi.Run
		var damage error
		for _, id := range experimentIDs {
			expDir, err := s.experimentDir(id)
			if mlflowapi.IsNotFound(err) {
				continue
			}
			if err != nil {
				yield(mlflowapi.Run{}, err)
				return
			}
			names, err := subdirs(expDir)
			if err != nil {
				yield(mlflowapi.Run{}, damaged(err))
				return
			}
			for _, n := range names {
				if slices.Contains(reservedExperimentDirs, n) {
					continue
				}
				if err := ctx.Err(); err != nil {
					yield(mlflowapi.Run{}, err)
					return
				}
				r, ok, err := s.readRun(id, expDir, filepath.Join(expDir, n))
				if err != nil {
					damage = cmp.Or(damage, err)
					continue
				}
				if !ok || !mlflowlocal.InView(r.Info.LifecycleStage, view) {
					continue
				}
				all = append(all, r)
			}
		}
		slices.SortFunc(all, func(a, b mlflowapi.Run) int {
			return cmp.Or(cmp.Compare(a.Info.StartTime, b.Info.StartTime), strings.Compare(a.Info.RunID, b.Info.RunID))
		})
		for _, r := range all {
			if !yield(r, nil) {
				return
			}
		}
		if damage != nil {
			yield(mlflowapi.Run{}, damage)
		}
	}
}

// readRun reads the run in folder dir of experiment expID; ok is false for
// a folder MLflow does not take for a run of it (no meta.yaml, or another
// experiment's id in it).
func (s *store) readRun(expID, expDir, dir string) (mlflowapi.Run, bool, error) {
	var m runMeta
	metaPath := filepath.Join(dir, metaFile)
	err := readMeta(metaPath, &m)
	if errors.Is(err, errNoMeta) {
		s.skip("folders without meta.yaml in experiments skipped (not runs)", dir)
		return mlflowapi.Run{}, false, nil
	}
	if err != nil {
		return mlflowapi.Run{}, false, damaged(err)
	}
	if string(m.ExperimentID) != expID {
		s.skip("runs skipped: experiment id in meta.yaml differs from the folder's (MLflow ignores them too)", dir)
		return mlflowapi.Run{}, false, nil
	}
	status, err := runStatus(m.Status)
	if err != nil {
		return mlflowapi.Run{}, false, damaged(fmt.Errorf("%s: %w", metaPath, err))
	}
	var r mlflowapi.Run
	r.Info = mlflowapi.RunInfo{RunID: cmp.Or(m.RunID, m.RunUUID), ExperimentID: expID, RunName: m.RunName, UserID: m.UserID,
		Status: status, StartTime: deref(m.StartTime), EndTime: m.EndTime, ArtifactURI: m.ArtifactURI,
		LifecycleStage: cmp.Or(m.LifecycleStage, mlflowapi.StageActive)}
	if r.Info.RunID == "" {
		return r, false, damaged(fmt.Errorf("%s: no run_id", metaPath))
	}
	params, err := readValues(filepath.Join(dir, "params"))
	if err != nil {
		return r, false, damaged(err)
	}
	for _, kv := range params {
		r.Data.Params = append(r.Data.Params, mlflowapi.Param{Key: kv[0], Value: kv[1]})
	}
	tags, err := readValues(filepath.Join(dir, "tags"))
	if err != nil {
		return r, false, damaged(err)
	}
	for _, kv := range tags {
		r.Data.Tags = append(r.Data.Tags, mlflowapi.Tag{Key: kv[0], Value: kv[1]})
	}
	if r.Info.RunName == "" { // before run_name (MLflow < 1.29): the tag
		if v, ok := r.Tag("mlflow.runName"); ok {
			r.Info.RunName = v
		}
	}
	if r.Data.Metrics, err = latestMetrics(filepath.Join(dir, "metrics")); err != nil {
		return r, false, damaged(err)
	}
	if r.Inputs.DatasetInputs, err = datasetInputs(expDir, dir); err != nil {
		return r, false, damaged(err)
	}
	s.mu.Lock()
	s.runs[r.Info.RunID] = runDir{dir: dir, expID: expID, expDir: expDir}
	s.mu.Unlock()
	s.setNear(r.Info.ArtifactURI, filepath.Join(dir, "artifacts"))
	return r, true, nil
}

// readValues reads a folder of key files (params, tags; keys with '/' are
// nested folders): each file's body is the value. It returns key/value
// pairs sorted by key; a missing folder has none.
func readValues(dir string) ([][2]string, error) {
	var out [][2]string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, [2]string{filepath.ToSlash(rel), string(b)})
		return nil
	})
	return out, err
}

// metricKeys lists the metric files of a run (keys with '/' are nested
// folders), sorted.
func metricKeys(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir && errors.Is(err, fs.ErrNotExist) {
				return fs.SkipAll
			}
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out, err
}

// latestMetrics returns each key's latest point, the greatest by (step,
// timestamp, value) as MLflow picks it. A key whose file has a damaged
// line gets its latest point among the lines before the damage (the
// history read reports the damage); an empty file has none (MLflow fails
// on it; here its key is simply absent).
func latestMetrics(dir string) ([]mlflowapi.Metric, error) {
	keys, err := metricKeys(dir)
	if err != nil {
		return nil, err
	}
	var out []mlflowapi.Metric
	for _, k := range keys {
		f, err := os.Open(filepath.Join(dir, filepath.FromSlash(k)))
		if err != nil {
			return nil, err
		}
		var best *mlflowapi.Metric
		_ = readMetricLines(f.Name(), f, false, func(m metricLine) bool {
			x := mlflowapi.Metric{Key: k, Value: mlflowapi.Float(m.Value), Timestamp: m.Time, Step: m.Step}
			if best == nil || mlflowlocal.Later(x, *best) {
				best = &x
			}
			return true
		})
		f.Close()
		if best != nil {
			out = append(out, *best)
		}
	}
	return out, nil
}

// runDirOf returns where run id lives, scanning the store for a run not
// listed yet.
func (s *store) runDirOf(id string) (runDir, error) {
	s.mu.Lock()
	rd, ok := s.runs[id]
	s.mu.Unlock()
	if ok {
		return rd, nil
	}
	if id == "" || strings.ContainsAny(id, `/\`) || id == "." || id == ".." {
		return runDir{}, notFound("run %q not found", id)
	}
	dirs, err := s.experimentDirs(mlflowapi.ViewAll)
	if err != nil {
		return runDir{}, damaged(err)
	}
	for _, d := range dirs {
		p := filepath.Join(d, id)
		if _, err := os.Stat(filepath.Join(p, metaFile)); err == nil {
			return runDir{dir: p, expID: filepath.Base(d), expDir: d}, nil
		}
	}
	return runDir{}, notFound("run %s not found in %s", id, s.root)
}

// GetRun returns run id with its params, tags, latest metrics and inputs.
func (s *store) GetRun(_ context.Context, id string) (mlflowapi.Run, error) {
	rd, err := s.runDirOf(id)
	if err != nil {
		return mlflowapi.Run{}, err
	}
	r, ok, err := s.readRun(rd.expID, rd.expDir, rd.dir)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, notFound("run %s: %s is not a run MLflow reads", id, rd.dir)
	}
	return r, nil
}

// MetricHistory yields the points of one key in file order (duplicates
// kept, as MLflow returns them), in pages. A damaged line ends the history
// with an error naming the file and line, after the points before it.
func (s *store) MetricHistory(ctx context.Context, runID, key string) iter.Seq2[[]mlflowapi.Metric, error] {
	return func(yield func([]mlflowapi.Metric, error) bool) {
		if err := ctx.Err(); err != nil {
			yield(nil, err)
			return
		}
		rd, err := s.runDirOf(runID)
		if err != nil {
			yield(nil, err)
			return
		}
		if !mlflowlocal.ValidRel(key) {
			yield(nil, fault.Permanent(fmt.Errorf("mlflow file store: bad metric key %q", key)))
			return
		}
		path := filepath.Join(rd.dir, "metrics", filepath.FromSlash(key))
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return // no such key: no points, as MLflow answers
		}
		if err != nil {
			yield(nil, damaged(err))
			return
		}
		defer f.Close()
		var page []mlflowapi.Metric
		stopped := false
		err = readMetricLines(path, f, false, func(m metricLine) bool {
			page = append(page, mlflowapi.Metric{Key: key, Value: mlflowapi.Float(m.Value), Timestamp: m.Time, Step: m.Step})
			if len(page) == mlflowapi.HistoryPageSize {
				if ctx.Err() != nil || !yield(page, nil) {
					stopped = true
					return false
				}
				page = nil
			}
			return true
		})
		if stopped {
			return
		}
		if len(page) > 0 && !yield(page, nil) {
			return
		}
		if err != nil {
			yield(nil, damaged(err))
		}
	}
}
