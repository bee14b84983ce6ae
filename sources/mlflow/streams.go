package mlflow

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// PageSize is the number of points, lines or values in one yielded page.
const PageSize = 10_000

type fixKey struct {
	key        string
	step, time int64
}

// OnKeys implements sources.KeyReporter: f is told, as Metrics reads a
// run, how many of its keys' histories it has yielded.
func (s *Source) OnKeys(f func(run schema.Ref, done, total int)) { s.onKeys.Store(&f) }

// HistoryWindow is how many metric keys' histories Metrics reads at once.
// MLflow has no request for many keys of one run (get-history-bulk takes
// many runs for one key), so a run with thousands of keys costs a request
// per key; reading several at once hides the round trips.
const HistoryWindow = 8

// keyHistory is one key's history as read, with the error that cut it
// short (its points are those read before).
type keyHistory struct {
	points []schema.Metric
	err    error
}

// Metrics yields a run's full history, key by key in key order. Each key's
// history is read whole (get-history, paged) and sorted by step, time and
// value, since MLflow returns it in time order; up to HistoryWindow keys
// are read at once: memory grows with the largest keys, not the run. A
// failed key ends the stream after the keys before it, whole, and the
// reads ahead of it are cancelled. For runs runferry wrote, keys MLflow refused
// are mapped back (and so are system metrics renamed to MLflow's names),
// the points MLflow stores differently (±Inf, -0, negative times,
// duplicates) are restored from the coverage file, as are the steps of
// metrics written against a W&B step metric, the series runferry
// generated (the folded CPU mean) and the points derived from summary
// values are left out, and the per-core CPU points folded into the mean
// follow last, as written (keys interleave there).
func (s *Source) Metrics(ctx context.Context, ref schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		info, err := s.runInfoOf(ctx, ref)
		if err != nil {
			yield(nil, err)
			return
		}
		cov, err := s.coverageOf(ctx, info)
		if err != nil {
			yield(nil, err)
			return
		}
		r, err := s.api.GetRun(ctx, info.id)
		if err != nil {
			yield(nil, err)
			return
		}
		fixups := map[fixKey][]*mlflowconv.Fixup{}
		for i := range cov.Fixups {
			f := &cov.Fixups[i]
			k := fixKey{f.Key, f.Step, f.Time}
			fixups[k] = append(fixups[k], f)
		}
		rebased := map[string]*mlflowconv.Rebase{}
		for i := range cov.Rebased {
			rebased[cov.Rebased[i].Key] = &cov.Rebased[i]
		}
		derived := map[string][]mlflowconv.SummaryPoint{}
		for _, p := range cov.SummaryPoints {
			derived[p.Key] = append(derived[p.Key], p)
		}
		type key struct{ mlflow, orig string }
		var keys []key
		for _, m := range r.Data.Metrics {
			if slices.Contains(cov.GeneratedMetrics, m.Key) {
				continue // derived by runferry (the folded CPU series)
			}
			orig := m.Key
			if o, ok := cov.MetricKeys[m.Key]; ok {
				orig = o
			} else if o, ok := cov.SystemMetricKeys[m.Key]; ok {
				orig = o
			}
			keys = append(keys, key{m.Key, orig})
		}
		slices.SortFunc(keys, func(a, b key) int { return cmp.Compare(a.orig, b.orig) })
		// One history request (or more, paged) per key: read up to
		// HistoryWindow keys at once, in the background, and yield them
		// in key order.
		read := func(ctx context.Context, k key) keyHistory {
			var points []schema.Metric
			for page, err := range s.api.MetricHistory(ctx, info.id, k.mlflow) {
				if err == nil {
					err = ctx.Err()
				}
				if err != nil {
					// The points read before the error come first (a
					// store's history damaged mid-file), sorted as ever.
					if len(points) == 0 || ctx.Err() != nil {
						points = nil
					}
					points = original(points, rebased[k.orig], derived[k.orig])
					schema.SortMetrics(points)
					return keyHistory{points, err}
				}
				for _, m := range page {
					points = restore(points, k.orig, m, fixups)
				}
			}
			points = original(points, rebased[k.orig], derived[k.orig])
			schema.SortMetrics(points)
			return keyHistory{points: points}
		}
		// No read outlives Metrics: the reads ahead of a failed key (or of
		// a consumer that stopped) are cancelled and waited for.
		keysDone := func(done int) {
			if f := s.onKeys.Load(); f != nil {
				(*f)(ref, done, len(keys))
			}
		}
		keysDone(0)
		rctx, cancel := context.WithCancel(ctx)
		var reading sync.WaitGroup
		defer reading.Wait()
		defer cancel()
		window := make([]chan keyHistory, 0, HistoryWindow)
		next := 0
		for len(window) > 0 || next < len(keys) {
			for len(window) < HistoryWindow && next < len(keys) {
				ch := make(chan keyHistory, 1)
				k := keys[next]
				reading.Go(func() { ch <- read(rctx, k) })
				window = append(window, ch)
				next++
			}
			h := <-window[0]
			window = window[1:]
			if h.err != nil {
				if len(h.points) > 0 && !yield(h.points, nil) {
					return
				}
				yield(nil, h.err)
				return
			}
			for chunk := range slices.Chunk(h.points, PageSize) {
				if !yield(slices.Clip(chunk), nil) {
					return
				}
			}
			keysDone(next - len(window))
		}
		if cov.FoldedPoints > 0 {
			s.foldedMetrics(ctx, ref, yield)
		}
	}
}

// foldedMetrics yields the per-core CPU points the sink folded into one
// series, exactly as the source had them, from runferry/folded_metrics.jsonl
// (in the order they were written: steps never decrease within a key).
func (s *Source) foldedMetrics(ctx context.Context, ref schema.Ref, yield func([]schema.Metric, error) bool) {
	for page, err := range jsonLines[mlflowconv.FoldedPoint](ctx, s, ref, func(*mlflowconv.Coverage) []string { return []string{mlflowconv.FoldedMetricsPath} }) {
		if err != nil {
			yield(nil, err)
			return
		}
		out := make([]schema.Metric, len(page))
		for i, p := range page {
			out[i] = schema.Metric{Key: p.Key, Value: float64(p.Value), Step: p.Step, Time: p.Time}
		}
		if !yield(out, nil) {
			return
		}
	}
}

// original turns the points of one key as runferry wrote them back into
// the source's: the points derived from summary values are left out, and
// a key written against its W&B step metric gets its own steps back (a
// step the map does not know, logged in MLflow since, is kept).
func original(points []schema.Metric, rb *mlflowconv.Rebase, derived []mlflowconv.SummaryPoint) []schema.Metric {
	for _, d := range derived {
		if i := slices.IndexFunc(points, d.Is); i >= 0 {
			points = slices.Delete(points, i, i+1)
		}
	}
	if rb != nil {
		for i := range points {
			if s, ok := rb.Source(points[i].Step); ok {
				points[i].Step = s
			}
		}
	}
	return points
}

// restore appends the source points a stored point stands for.
func restore(out []schema.Metric, key string, m mlflowapi.Metric, fixups map[fixKey][]*mlflowconv.Fixup) []schema.Metric {
	v := float64(m.Value)
	for _, f := range fixups[fixKey{key, m.Step, m.Timestamp}] {
		sv := float64(f.Stored)
		if sv == v || math.IsNaN(sv) && math.IsNaN(v) || math.Abs(sv) == math.MaxFloat64 && math.IsInf(v, int(sv/math.Abs(sv))) {
			for _, p := range f.Points {
				out = append(out, schema.Metric{Key: key, Value: float64(p.Value), Step: m.Step, Time: p.Time})
			}
			return out
		}
	}
	return append(out, schema.Metric{Key: key, Value: v, Step: m.Step, Time: m.Timestamp})
}

// Logs yields the console output runferry stored with a run: every
// segment the run's coverage file names, in order (runferry/logs.jsonl,
// then runferry/logs.1.jsonl, ...; one runferry/logs.jsonl for a small log
// and for a copy written before segments). A run's own output.log file,
// which MLflow knows only as a file, is listed by Artifacts, not read as
// console output.
func (s *Source) Logs(ctx context.Context, ref schema.Ref) iter.Seq2[[]schema.LogLine, error] {
	return jsonLines[schema.LogLine](ctx, s, ref, func(c *mlflowconv.Coverage) []string {
		if c.LogLines == 0 {
			return nil
		}
		paths := make([]string, len(c.Segments()))
		for i := range paths {
			paths[i] = mlflowconv.LogSegmentPath(i)
		}
		return paths
	})
}

// RichValues yields the non-numeric history values runferry stored with a
// run (runferry/rich_values.jsonl).
func (s *Source) RichValues(ctx context.Context, ref schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	return jsonLines[schema.RichValue](ctx, s, ref, func(c *mlflowconv.Coverage) []string {
		if c.RichValues == 0 {
			return nil
		}
		return []string{mlflowconv.RichValuesPath}
	})
}

// jsonLines yields, in pages, the JSON lines of the run's artifacts that
// paths names from the run's coverage file, one after the other (none when
// it names none).
func jsonLines[T any](ctx context.Context, s *Source, ref schema.Ref, paths func(*mlflowconv.Coverage) []string) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		info, err := s.runInfoOf(ctx, ref)
		if err != nil {
			yield(nil, err)
			return
		}
		cov, err := s.coverageOf(ctx, info)
		if err != nil {
			yield(nil, err)
			return
		}
		var page []T
		for _, path := range paths(cov) {
			var ok bool
			if page, ok = jsonFile(ctx, s, info, path, page, yield); !ok {
				return
			}
		}
		if len(page) > 0 {
			yield(page, nil)
		}
	}
}

// jsonFile reads the JSON lines of the run's artifact path onto page,
// yielding each page once full, and returns what is left of the last one
// (the next file's lines go on it), or false once stopped.
func jsonFile[T any](ctx context.Context, s *Source, info *runInfo, path string, page []T, yield func([]T, error) bool) ([]T, bool) {
	if err := ctx.Err(); err != nil {
		yield(nil, err)
		return nil, false
	}
	body, err := s.api.OpenArtifact(ctx, info.id, info.artifactURI, path)
	if err != nil {
		yield(nil, err)
		return nil, false
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<16), 1<<30)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			yield(nil, fault.Permanent(fmt.Errorf("mlflow run %s: %s: %v", info.id, path, err)))
			return nil, false
		}
		if page = append(page, v); len(page) == PageSize {
			if !yield(page, nil) {
				return nil, false
			}
			page = nil
		}
	}
	if err := sc.Err(); err != nil {
		yield(nil, fault.Retryable(fmt.Errorf("mlflow run %s: reading %s: %w", info.id, path, err), 0))
		return nil, false
	}
	return page, true
}

// Artifacts yields a run's files sorted by path, each streamed from the
// server when opened, and the files of the MLflow 3 logged models the run
// logged (see loggedModelFiles). runferry's own files (runferry/, and output.log or
// config.json when runferry generated them) are left out; files the source
// of a runferry copy could not read are listed with their Problem.
func (s *Source) Artifacts(ctx context.Context, ref schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		info, err := s.runInfoOf(ctx, ref)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		cov, err := s.coverageOf(ctx, info)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		var out []schema.Artifact
		for f, err := range s.api.ListArtifacts(ctx, info.id, "") {
			if err == nil {
				err = ctx.Err()
			}
			if err != nil {
				yield(schema.Artifact{}, err)
				return
			}
			p := f.Path
			if info.runferry {
				if strings.HasPrefix(p, mlflowconv.Dir) {
					var ok bool
					if p, ok = strings.CutPrefix(p, mlflowconv.FilesDir); !ok {
						continue
					}
				} else if slices.Contains(cov.Generated, p) || outputSegment(cov, p) {
					continue
				}
			}
			a := schema.Artifact{Path: p, Size: -1}
			if f.FileSize != nil {
				a.Size = *f.FileSize
			}
			stored := f.Path
			a.Open = func(ctx context.Context) (io.ReadCloser, error) {
				return s.api.OpenArtifact(ctx, info.id, info.artifactURI, stored)
			}
			if info.runferry && p == mlflowconv.OutputSegmentPath(0) && len(cov.OutputSegments) > 1 {
				a = s.joinedOutput(info, cov.OutputSegments)
			}
			out = append(out, a)
		}
		for p, problem := range cov.FileProblems {
			// Recorded by the runferry copy of the run: inherited.
			out = append(out, schema.Artifact{Path: p, Size: -1, Problem: problem, Inherited: true})
		}
		models, err := s.loggedModelFiles(ctx, info)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		out = append(out, models...)
		slices.SortFunc(out, func(a, b schema.Artifact) int { return strings.Compare(a.Path, b.Path) })
		for _, a := range out {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// loggedModelFiles lists the files of the logged models run info logged,
// which MLflow 3 keeps under the model, not the run: each model's files
// under mlflow-logged-models/<model id>/, plus its metadata there as
// logged_model.json (tags, params and metrics in canonical order). A model
// whose files the proxy does not serve is listed with a Problem, never
// left out. In a run runferry wrote, a logged model it re-created stands
// for the source's (mlflowconv.SourceModel): listed under the source's
// model id, its metadata as the source's with the name, type, state,
// params, tags and metrics this server holds, its files this server's.
func (s *Source) loggedModelFiles(ctx context.Context, info *runInfo) ([]schema.Artifact, error) {
	models, err := s.api.LoggedModelsOf(ctx, info.experimentID, info.id)
	if err != nil {
		return nil, err
	}
	var out []schema.Artifact
	for _, m := range models {
		files := m // where the files are: the model read
		if info.runferry {
			m, _ = mlflowconv.SourceModel(m, info.id)
		}
		mlflowconv.CanonicalModel(&m)
		dir := mlflowapi.LoggedModelsDir + m.Info.ModelID + "/"
		meta, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return nil, err
		}
		out = append(out, schema.Artifact{Path: dir + mlflowapi.LoggedModelMeta, Size: int64(len(meta)),
			Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(meta)), nil }})
		for f, err := range s.api.ListProxied(ctx, files.Info.ArtifactURI) {
			if errors.Is(err, mlflowapi.ErrNotProxied) {
				out = append(out, schema.Artifact{Path: dir + "artifacts", Size: -1, Problem: fmt.Sprintf("logged model %s: files at %s not served by the mlflow-artifacts proxy", files.Info.ModelID, files.Info.ArtifactURI)})
				break
			}
			if err != nil {
				return nil, fmt.Errorf("listing the files of logged model %s: %w", files.Info.ModelID, err)
			}
			a := schema.Artifact{Path: dir + f.Path, Size: -1}
			if f.FileSize != nil {
				a.Size = *f.FileSize
			}
			uri, rel := files.Info.ArtifactURI, f.Path
			a.Open = func(ctx context.Context) (io.ReadCloser, error) {
				return s.api.OpenArtifact(ctx, info.id, uri, rel)
			}
			out = append(out, a)
		}
	}
	return out, nil
}

// outputSegment reports whether p is a segment beyond the first of the
// source's own output.log as a runferry copy holds it
// (mlflowconv.Coverage.OutputSegments): Artifacts lists the file once,
// joined.
func outputSegment(cov *mlflowconv.Coverage, p string) bool {
	for i := 1; i < len(cov.OutputSegments); i++ {
		if p == mlflowconv.OutputSegmentPath(i) {
			return true
		}
	}
	return false
}

// joinedOutput is the source's own output.log of a runferry copy that
// holds it in segments: one file, the segments read one after the other,
// its size their sum. A segment whose size is not the one recorded is an
// error when read (the copy was changed since).
func (s *Source) joinedOutput(info *runInfo, segs []mlflowconv.LogSegment) schema.Artifact {
	var size int64
	for _, seg := range segs {
		size += seg.Bytes
	}
	a := schema.Artifact{Path: mlflowconv.OutputSegmentPath(0), Size: size}
	a.Open = func(ctx context.Context) (io.ReadCloser, error) {
		return &segmentsReader{ctx: ctx, s: s, info: info, segs: segs}, nil
	}
	return a
}

// segmentsReader reads the segments of a file in order, opening each when
// the one before it ends.
type segmentsReader struct {
	ctx  context.Context
	s    *Source
	info *runInfo
	segs []mlflowconv.LogSegment
	i    int
	n    int64 // bytes read of segment i
	cur  io.ReadCloser
}

func (r *segmentsReader) Read(p []byte) (int, error) {
	for {
		if r.i >= len(r.segs) {
			return 0, io.EOF
		}
		rel := mlflowconv.OutputSegmentPath(r.i)
		if r.cur == nil {
			body, err := r.s.api.OpenArtifact(r.ctx, r.info.id, r.info.artifactURI, rel)
			if err != nil {
				return 0, err
			}
			r.cur, r.n = body, 0
		}
		n, err := r.cur.Read(p)
		r.n += int64(n)
		if r.n > r.segs[r.i].Bytes {
			return n, fault.Permanent(fmt.Errorf("mlflow run %s: %s holds more than the %d bytes its coverage file records", r.info.id, rel, r.segs[r.i].Bytes))
		}
		if errors.Is(err, io.EOF) {
			_ = r.cur.Close()
			r.cur = nil
			if r.n != r.segs[r.i].Bytes {
				return n, fault.Permanent(fmt.Errorf("mlflow run %s: %s holds %d bytes, its coverage file records %d", r.info.id, rel, r.n, r.segs[r.i].Bytes))
			}
			r.i++
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (r *segmentsReader) Close() error {
	if r.cur != nil {
		err := r.cur.Close()
		r.cur = nil
		return err
	}
	return nil
}
