package mlflow

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/big"
	"slices"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// metricKey returns the MLflow key of the source key: system metrics named
// as MLflow names its own (mlflowconv.SystemMetricKey), recorded in the
// coverage file's system_metric_keys when renamed, or in its
// converted_metrics (and generated_metrics) when written in MLflow's unit
// (scale, not 0: see keepExact); other keys as mlflowconv.MapKey maps
// them. Two source keys never share an MLflow key: a system key whose name
// is taken (by another source key, or by the folded CPU series) gets 8 hex
// digits of a hash of its own.
func (w *writer) metricKey(key string) (k string, core bool, scale float64) {
	sm, ok := mlflowconv.SystemMetricKey(key)
	if !ok {
		k = mlflowconv.RecordKey(key, w.cov.MetricKeys)
		w.mlflowKeys[k] = key
		return k, false, 0
	}
	k = sm.Key
	if owner, taken := w.mlflowKeys[k]; taken && owner != key {
		k = hashedSystemKey(k, key)
	}
	w.mlflowKeys[k] = key
	if sm.Scale != 0 {
		if w.cov.ConvertedMetrics == nil {
			w.cov.ConvertedMetrics = map[string]string{}
		}
		w.cov.ConvertedMetrics[k] = key
		if !slices.Contains(w.cov.GeneratedMetrics, k) {
			w.cov.GeneratedMetrics = append(w.cov.GeneratedMetrics, k)
		}
		return k, false, sm.Scale
	}
	if k != key {
		w.cov.SystemMetricKeys[k] = key
	}
	if sm.Core {
		if w.fold == nil {
			w.fold = &cpuFold{steps: map[int64]*foldSum{}}
			// The mean's name is free, or held by the mean itself (an
			// append to a run whose earlier copy had per-core series).
			if owner, taken := w.mlflowKeys[mlflowconv.CPUMeanKey]; !taken || owner == "" {
				w.mlflowKeys[mlflowconv.CPUMeanKey] = ""
				w.fold.mean = true
			}
		}
		if !w.sink.cfg.PerCoreCPU {
			delete(w.cov.SystemMetricKeys, k) // not written: the originals are in the folded file
			delete(w.mlflowKeys, k)
		}
	}
	return k, sm.Core, 0
}

// hashedSystemKey is the MLflow key of the system metric key, whose
// mapped key k is taken: k (cut to fit) and 8 hex digits of a hash of key.
func hashedSystemKey(k, key string) string {
	sum := sha256.Sum256([]byte(key))
	suffix := "_" + hex.EncodeToString(sum[:4])
	return string([]rune(k)[:min(len([]rune(k)), mlflowapi.MaxKeyLength-len(suffix))]) + suffix
}

// systemPoint takes a point of a system metric series that MLflow does
// not show as given: a per-core CPU point (see foldPoint), or a point of a
// series written in MLflow's unit, which is kept exactly (keepExact) and
// sent scaled. It returns the point to send, or false when none is.
func (w *writer) systemPoint(st *keyState, m schema.Metric) (schema.Metric, bool, error) {
	switch {
	case st.core:
		send, err := w.foldPoint(m)
		return m, send, err
	case st.scale != 0:
		if err := w.keepExact(m); err != nil {
			return m, false, err
		}
		w.cov.ConvertedPoints++
		m.Value = mlflowconv.SystemValue(m.Value, st.scale)
	}
	return m, true, nil
}

// keepExact spools m, as the source gave it, for mlflowconv.FoldedMetricsPath.
func (w *writer) keepExact(m schema.Metric) error {
	if w.exact == nil {
		var err error
		if w.exact, err = newSpool(); err != nil {
			return err
		}
	}
	w.cov.FoldedPoints++
	return w.exact.append(mlflowconv.FoldedPoint{Key: m.Key, Step: m.Step, Time: m.Time, Value: mlflowapi.Float(m.Value)})
}

// cpuFold folds the per-core CPU series (W&B's cpu.N.cpu_percent) into one
// series, mlflowconv.CPUMeanKey: at each step (a W&B system-metrics
// sample), the mean of the cores' values at the earliest of their times.
// The sum is exact (big.Float wide enough for any sum of float64s), so the
// mean does not depend on the order the points arrive in. Unless the
// per-core-cpu option keeps the per-core series in MLflow, their points
// are spooled as they are (keepExact) and uploaded to
// mlflowconv.FoldedMetricsPath, from which the MLflow source gives them
// back.
type cpuFold struct {
	steps map[int64]*foldSum
	mean  bool // the mean is written: no source key took its name
}

type foldSum struct {
	sum             big.Float
	n               int64
	time            int64
	nan, pinf, ninf bool
	started         bool
}

// add accumulates one per-core point.
func (f *cpuFold) add(m schema.Metric) {
	s := f.steps[m.Step]
	if s == nil {
		s = &foldSum{}
		s.sum.SetPrec(2200)
		f.steps[m.Step] = s
	}
	if !s.started || m.Time < s.time {
		s.time, s.started = m.Time, true
	}
	s.n++
	switch v := m.Value; {
	case math.IsNaN(v):
		s.nan = true
	case math.IsInf(v, 1):
		s.pinf = true
	case math.IsInf(v, -1):
		s.ninf = true
	default:
		s.sum.Add(&s.sum, new(big.Float).SetFloat64(v))
	}
}

// points returns the mean series, by step.
func (f *cpuFold) points() []mlflowapi.Metric {
	steps := make([]int64, 0, len(f.steps))
	for s := range f.steps {
		steps = append(steps, s)
	}
	slices.Sort(steps)
	out := make([]mlflowapi.Metric, 0, len(steps))
	for _, step := range steps {
		s := f.steps[step]
		var v float64
		switch {
		case s.nan || s.pinf && s.ninf:
			v = math.NaN()
		case s.pinf:
			v = math.MaxFloat64 // as MLflow's SQL stores keep +Inf
		case s.ninf:
			v = -math.MaxFloat64
		default:
			mean := new(big.Float).SetPrec(2200).Quo(&s.sum, new(big.Float).SetInt64(s.n))
			v, _ = mean.Float64()
		}
		out = append(out, mlflowapi.Metric{Key: mlflowconv.CPUMeanKey, Value: mlflowapi.Float(v), Timestamp: max(s.time, 0), Step: step})
	}
	return out
}

// foldPoint takes a per-core CPU point: into the mean, and into the folded
// file unless the per-core series are written. It reports whether the
// point is to be sent to MLflow too.
func (w *writer) foldPoint(m schema.Metric) (bool, error) {
	if w.fold.mean {
		w.fold.add(m)
	}
	if w.sink.cfg.PerCoreCPU {
		return true, nil
	}
	return false, w.keepExact(m)
}

// commitFold writes the mean CPU series and uploads the points kept
// exactly (folded per-core points, points of converted series); the mean
// is listed as generated, so the MLflow source leaves it out.
func (w *writer) commitFold(ctx context.Context) error {
	if w.fold != nil && w.fold.mean {
		for chunk := range slices.Chunk(w.fold.points(), mlflowapi.MaxMetricsPerBatch) {
			if err := w.logMetrics(ctx, chunk); err != nil {
				return fmt.Errorf("writing %s: %w", mlflowconv.CPUMeanKey, err)
			}
		}
		if !slices.Contains(w.cov.GeneratedMetrics, mlflowconv.CPUMeanKey) {
			w.cov.GeneratedMetrics = append(w.cov.GeneratedMetrics, mlflowconv.CPUMeanKey)
		}
	}
	if sp := w.exact; sp != nil {
		if w.app != nil && w.app.prevFolded > 0 {
			// Appending: the file gets the points held, then the new ones.
			all, err := w.heldFolded(ctx, sp)
			if err != nil {
				return err
			}
			defer all.remove()
			sp = all
		}
		if err := w.uploadSpool(ctx, sp, mlflowconv.FoldedMetricsPath); err != nil {
			return err
		}
	}
	return nil
}

// heldFolded returns a new spool of the folded points the run holds
// (mlflowconv.FoldedMetricsPath) followed by those of sp. The file must
// hold as many points as the coverage file of the copy says
// (appendPlan.prevFolded), else the run is written whole.
func (w *writer) heldFolded(ctx context.Context, sp *spool) (*spool, error) {
	if err := sp.b.Flush(); err != nil {
		return nil, fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	out, err := newSpool()
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			out.remove()
		}
	}()
	body, err := w.api().OpenArtifact(ctx, w.run.RunID, w.run.ArtifactURI, mlflowconv.FoldedMetricsPath)
	if err != nil {
		if mlflowapi.IsNotFound(err) {
			return nil, sinks.CannotAppend(fmt.Sprintf("the server's copy %s has no %s", w.run.RunID, mlflowconv.FoldedMetricsPath))
		}
		return nil, fmt.Errorf("reading %s of run %s: %w", mlflowconv.FoldedMetricsPath, w.run.RunID, err)
	}
	// The first prevFolded lines: an append cut short may have uploaded
	// more (see pointsWritten).
	br := bufio.NewReader(body)
	var n int64
	for ; n < w.app.prevFolded; n++ {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			break
		}
		if err != nil {
			body.Close()
			return nil, fmt.Errorf("reading %s of run %s: %w", mlflowconv.FoldedMetricsPath, w.run.RunID, err)
		}
		out.b.Write(line)
	}
	body.Close()
	if n != w.app.prevFolded {
		return nil, sinks.CannotAppend(fmt.Sprintf("%s of run %s holds %d points, its coverage file says %d",
			mlflowconv.FoldedMetricsPath, w.run.RunID, n, w.app.prevFolded))
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return nil, fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	if _, err := io.Copy(out.b, sp.f); err != nil {
		return nil, fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	ok = true
	return out, nil
}

// removeFold removes the temporary file of the points kept exactly.
func (w *writer) removeFold() {
	w.exact.remove()
}
