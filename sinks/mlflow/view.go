package mlflow

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
)

// view is how a W&B run is made to look native in MLflow's UI, beyond
// keys and values: metrics given a custom x axis by define_metric are
// plotted against it, and summary values history does not end with become
// points at the run's last step. Both are recorded in the coverage file
// (Rebased, SummaryPoints), so the source reads back the original run.
//
// The points of metrics that have a step metric are held in a temporary
// file until Commit, since whether their step metric can be their x axis
// is known only once all of it was seen: it must be a non-decreasing
// integer series of at most maxAxisPoints points, hold a value at each of
// the metric's steps, and those values must map the metric's steps one to
// one. Otherwise the metric keeps its steps and TagStepMetric names its
// axis.
type view struct {
	axes    mlflowconv.StepAxes
	series  map[string]*axisSeries // by step metric key
	held    *heldFile              // points of metrics with a step metric
	last    map[string]lastPoint   // by source key: the point at its greatest step
	maxStep int64                  // the greatest history step (system metrics aside)
	hasStep bool
	maxTime int64
	rebased map[string]*axisSeries // by source key, set by writeHeld
}

// maxAxisPoints bounds the step metric series kept in memory (16 bytes a
// point); a longer step metric is not used as an x axis.
const maxAxisPoints = 4 << 20

type axisSeries struct {
	steps, values []int64
	ok            bool
}

type lastPoint struct {
	step  int64
	value float64
}

func newView(r schema.Run) *view {
	return &view{axes: mlflowconv.StepAxesOf(r), series: map[string]*axisSeries{}, last: map[string]lastPoint{}}
}

// hold notes m and reports whether it is held until Commit.
func (v *view) hold(m schema.Metric) (bool, error) {
	if lp, ok := v.last[m.Key]; !ok || m.Step >= lp.step {
		v.last[m.Key] = lastPoint{m.Step, m.Value}
	}
	if !strings.HasPrefix(m.Key, "system/") && (!v.hasStep || m.Step > v.maxStep) {
		v.maxStep, v.hasStep = m.Step, true
	}
	v.maxTime = max(v.maxTime, m.Time)
	if v.axes.Empty() {
		return false, nil
	}
	if v.axes.IsAxis(m.Key) {
		v.series[m.Key] = v.series[m.Key].add(m)
	}
	if v.axes.Axis(m.Key) == "" {
		return false, nil
	}
	if v.held == nil {
		f, err := os.CreateTemp("", "runferry-mlflow-held-*.bin")
		if err != nil {
			return false, fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
		}
		v.held = &heldFile{f: f, w: bufio.NewWriterSize(f, 1<<16)}
	}
	return true, v.held.put(m)
}

// add appends a step metric's point; a point at a step already seen must
// repeat its value, and values must be non-decreasing integers.
func (s *axisSeries) add(m schema.Metric) *axisSeries {
	if s == nil {
		s = &axisSeries{ok: true}
	}
	if !s.ok {
		return s
	}
	val := int64(m.Value)
	if m.Value != math.Trunc(m.Value) || math.IsInf(m.Value, 0) || math.Abs(m.Value) > 1<<53 || len(s.steps) >= maxAxisPoints {
		*s = axisSeries{}
		return s
	}
	if n := len(s.steps); n > 0 {
		switch {
		case m.Step == s.steps[n-1] && val == s.values[n-1]:
			return s
		case m.Step <= s.steps[n-1] || val < s.values[n-1]:
			*s = axisSeries{}
			return s
		}
	}
	s.steps, s.values = append(s.steps, m.Step), append(s.values, val)
	return s
}

// at returns the step metric's value at step.
func (s *axisSeries) at(step int64) (int64, bool) {
	if s == nil || !s.ok {
		return 0, false
	}
	i := sort.Search(len(s.steps), func(i int) bool { return s.steps[i] >= step })
	if i == len(s.steps) || s.steps[i] != step {
		return 0, false
	}
	return s.values[i], true
}

// writeHeld writes the held points, against their step metric where it
// can be their x axis (recording the mapping in the coverage file), else
// at their own steps.
func (w *writer) writeHeld(ctx context.Context) error {
	v := w.view
	if v.held == nil {
		return nil
	}
	// Pass one: which keys can be rebased, and their step maps.
	mappers := map[string]*mlflowconv.StepMapper{}
	err := v.held.each(func(m schema.Metric) error {
		mp, seen := mappers[m.Key]
		if seen && mp == nil {
			return nil
		}
		if !seen {
			mp = &mlflowconv.StepMapper{}
			mappers[m.Key] = mp
		}
		axis := v.axes.Axis(m.Key)
		if x, ok := v.series[axis].at(m.Step); !ok || !mp.Add(m.Step, x) {
			mappers[m.Key] = nil
		}
		return nil
	})
	if err != nil {
		return err
	}
	rebased := map[string]*axisSeries{}
	budget := mlflowconv.MaxFixups
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range mappers {
			if !yield(k) {
				return
			}
		}
	}) {
		mp := mappers[k]
		if mp == nil || len(mp.Runs) > budget {
			continue
		}
		budget -= len(mp.Runs)
		axis := v.axes.Axis(k)
		rebased[k] = v.series[axis]
		w.cov.Rebased = append(w.cov.Rebased, mlflowconv.Rebase{Key: k, Axis: axis, Runs: mp.Runs})
	}
	// Pass two: write them.
	var out []mlflowapi.Metric
	err = v.held.each(func(m schema.Metric) error {
		if s := rebased[m.Key]; s != nil {
			m.Step, _ = s.at(m.Step)
		}
		st := w.keyState(m.Key)
		if st.core || st.scale != 0 {
			var send bool
			var err error
			if m, send, err = w.systemPoint(st, m); err != nil || !send {
				return err
			}
		}
		if send, ok := st.add(m, w.cov); ok {
			out = append(out, send)
		}
		if len(out) == mlflowapi.MaxMetricsPerBatch/2 { // keys may be long: well under 1 MB
			if err := w.logMetrics(ctx, out); err != nil {
				return err
			}
			out = out[:0]
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := w.logMetrics(ctx, out); err != nil {
		return err
	}
	v.rebased = rebased
	return nil
}

// writeSummary writes each numeric summary value that history does not end
// with as one point at the run's last step and time: the time is the
// latest point's, or the run's end if later; the step is the last value of
// the metric's step metric when the metric was rebased, or has no history
// and a step metric other metrics were rebased against (so it sits at the
// end of the axis its neighbours are plotted against), else the greatest
// history step, or the summary's _step if greater.
func (w *writer) writeSummary(ctx context.Context) error {
	v := w.view
	nums, _, step, hasStep := mlflowconv.SummaryValues(w.src.Summary)
	if len(nums) == 0 {
		return nil
	}
	if v.hasStep && (!hasStep || v.maxStep > step) {
		step = v.maxStep
	}
	t := v.maxTime
	if !w.src.End.IsZero() {
		t = max(t, w.src.End.UnixMilli())
	}
	t = max(t, 0)
	axesUsed := map[string]bool{}
	for _, r := range w.cov.Rebased {
		axesUsed[r.Axis] = true
	}
	var out []mlflowapi.Metric
	for _, n := range nums {
		if strings.HasPrefix(n.Key, "system/") {
			continue
		}
		lp, logged := v.last[n.Key]
		if logged && (lp.value == n.Value || math.IsNaN(lp.value) && math.IsNaN(n.Value)) {
			continue
		}
		if w.app != nil {
			// Appending: the history held is not in hand (see
			// appendPlan.summary).
			if skip, why := w.app.summary(n.Key, n.Value, logged, v.hasStep); skip {
				continue
			} else if why != "" {
				return sinks.CannotAppend(why)
			}
		}
		at := step
		axis := v.axes.Axis(n.Key)
		if ax := v.series[axis]; (v.rebased[n.Key] != nil || !logged && axesUsed[axis]) && ax != nil && ax.ok && len(ax.values) > 0 {
			at = ax.values[len(ax.values)-1]
		}
		m := schema.Metric{Key: n.Key, Value: n.Value, Step: at, Time: t}
		if send, ok := w.keyState(n.Key).add(m, w.cov); ok {
			out = append(out, send)
		}
		w.cov.SummaryPoints = append(w.cov.SummaryPoints, mlflowconv.SummaryPoint{Key: n.Key, Step: at, Time: t, Value: mlflowapi.Float(n.Value)})
		if len(out) == mlflowapi.MaxMetricsPerBatch/2 {
			if err := w.logMetrics(ctx, out); err != nil {
				return err
			}
			out = out[:0]
		}
	}
	return w.logMetrics(ctx, out)
}

// keyState returns the state of source key k, created on first use with
// its MLflow key (see metricKey).
func (w *writer) keyState(k string) *keyState {
	st, ok := w.keys[k]
	if !ok {
		st = &keyState{}
		st.mlflowKey, st.core, st.scale = w.metricKey(k)
		w.keys[k] = st
	}
	return st
}

// heldFile is a temporary file of points: per point the key's length
// (uvarint), the key, then step, time and the value's bits (8 bytes each).
type heldFile struct {
	f *os.File
	w *bufio.Writer
}

func (h *heldFile) put(m schema.Metric) error {
	var buf [binary.MaxVarintLen64 + 24]byte
	n := binary.PutUvarint(buf[:], uint64(len(m.Key)))
	h.w.Write(buf[:n])
	h.w.WriteString(m.Key)
	binary.LittleEndian.PutUint64(buf[0:], uint64(m.Step))
	binary.LittleEndian.PutUint64(buf[8:], uint64(m.Time))
	binary.LittleEndian.PutUint64(buf[16:], math.Float64bits(m.Value))
	if _, err := h.w.Write(buf[:24]); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	return nil
}

// each calls fn on every point, in the order they were put.
func (h *heldFile) each(fn func(schema.Metric) error) error {
	if err := h.w.Flush(); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	if _, err := h.f.Seek(0, io.SeekStart); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	r := bufio.NewReaderSize(h.f, 1<<16)
	var fixed [24]byte
	var key []byte
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			key = slices.Grow(key[:0], int(n))[:n]
			if _, err = io.ReadFull(r, key); err == nil {
				_, err = io.ReadFull(r, fixed[:])
			}
		}
		if err != nil {
			return fault.Fatal(fmt.Errorf("mlflow sink: reading temporary file %s: %w", h.f.Name(), err))
		}
		m := schema.Metric{Key: string(key), Step: int64(binary.LittleEndian.Uint64(fixed[0:])),
			Time: int64(binary.LittleEndian.Uint64(fixed[8:])), Value: math.Float64frombits(binary.LittleEndian.Uint64(fixed[16:]))}
		if err := fn(m); err != nil {
			return err
		}
	}
	if _, err := h.f.Seek(0, io.SeekEnd); err != nil {
		return fault.Fatal(fmt.Errorf("mlflow sink: temporary file: %w", err))
	}
	return nil
}

func (h *heldFile) remove() {
	if h != nil {
		h.f.Close()
		os.Remove(h.f.Name())
	}
}
