package mlflowconv

import (
	"encoding/json"
	"slices"
	"sort"
	"strings"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/schema"
)

// W&B's define_metric gives a metric (or a glob of metrics: "val/*") a
// custom x axis, its step metric. The W&B sources surface each definition
// as a run tag StepAxisTagPrefix+NAME = AXIS. MLflow has one x axis per
// point, its step, so the MLflow sink writes such a metric against the
// step metric where it can (see Rebase) and records the definitions in the
// one readable tag TagStepMetric instead of a tag per definition.
const (
	// StepAxisTagPrefix starts the source tags holding one define_metric
	// definition each: "wandb.step_metric.val/*" = "epoch".
	StepAxisTagPrefix = "wandb.step_metric."
	// TagStepMetric holds every definition as a JSON object from metric
	// name (or glob) to step metric: {"val/*":"epoch"}.
	TagStepMetric = "wandb.step_metric"
)

// IsStepAxisTag reports whether a source tag holds one define_metric
// definition; such tags are folded into TagStepMetric, not written alone.
func IsStepAxisTag(key string) bool {
	return strings.HasPrefix(key, StepAxisTagPrefix) && len(key) > len(StepAxisTagPrefix)
}

// StepAxes are a run's define_metric definitions: metric name or glob to
// step metric.
type StepAxes struct {
	exact map[string]string
	globs [][2]string // pattern, axis; longest pattern first
	axes  map[string]bool
}

// StepAxesOf reads the definitions from r's tags.
func StepAxesOf(r schema.Run) StepAxes {
	a := StepAxes{exact: map[string]string{}, axes: map[string]bool{}}
	for _, t := range r.Tags {
		if !IsStepAxisTag(t.Key) || t.Value == "" {
			continue
		}
		name := strings.TrimPrefix(t.Key, StepAxisTagPrefix)
		if strings.Contains(name, "*") {
			a.globs = append(a.globs, [2]string{name, t.Value})
		} else {
			a.exact[name] = t.Value
		}
		a.axes[t.Value] = true
	}
	slices.SortFunc(a.globs, func(x, y [2]string) int {
		if d := len(y[0]) - len(x[0]); d != 0 {
			return d
		}
		return strings.Compare(x[0], y[0])
	})
	return a
}

// Empty reports whether the run defines no step metric.
func (a StepAxes) Empty() bool { return len(a.exact)+len(a.globs) == 0 }

// IsAxis reports whether key is the step metric of some definition.
func (a StepAxes) IsAxis(key string) bool { return a.axes[key] }

// Axis returns the step metric of metric key ("" when it has none): an
// exact definition first, else the longest matching glob ('*' matches any
// text, '/' included). A step metric is never its own axis, and system
// metrics ("system/...") have none, as in W&B.
func (a StepAxes) Axis(key string) string {
	if strings.HasPrefix(key, "system/") {
		return ""
	}
	axis, ok := a.exact[key]
	if !ok {
		axis = a.globAxis(key)
	}
	if axis == key {
		return ""
	}
	return axis
}

// globAxis returns the step metric of the longest glob matching key.
func (a StepAxes) globAxis(key string) string {
	for _, g := range a.globs {
		if globMatch(g[0], key) {
			return g[1]
		}
	}
	return ""
}

// Tag returns the TagStepMetric tag for the definitions, leaving out a
// metric's own definition when a glob gives it the same step metric (W&B
// records one per metric a glob was expanded to).
func (a StepAxes) Tag() (mlflowapi.Tag, bool) {
	if a.Empty() {
		return mlflowapi.Tag{}, false
	}
	all := map[string]string{}
	for k, v := range a.exact {
		if a.globAxis(k) != v {
			all[k] = v
		}
	}
	for _, g := range a.globs {
		all[g[0]] = g[1]
	}
	b, _ := json.Marshal(all) // sorted keys
	return mlflowapi.Tag{Key: TagStepMetric, Value: string(b)}, true
}

// globMatch matches W&B's metric globs, where '*' stands for any text.
func globMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}

// Rebase records one metric written against its step metric: each point's
// MLflow step is the value Axis had in the point's history row. Runs map
// those steps back to the source's; the mapping is one to one.
type Rebase struct {
	Key  string    `json:"k"` // the source's metric key
	Axis string    `json:"axis"`
	Runs []StepRun `json:"runs"`
}

// StepRun is N steps in arithmetic progression: stored step Stored+i*DStored
// stands for source step Source+i*DSource, for i < N. It is written as the
// JSON array [Stored, Source, DStored, DSource, N].
type StepRun [5]int64

// StepMapper builds a Rebase's runs from (source step, stored step) pairs
// given in increasing source order.
type StepMapper struct {
	Runs   []StepRun
	broken bool
}

// Add records that source step src is written as stored step; it reports
// false (and the mapper stays broken) when the pair would make the mapping
// ambiguous: both steps must grow together, or both repeat.
func (m *StepMapper) Add(src, stored int64) bool {
	if m.broken {
		return false
	}
	n := len(m.Runs)
	if n == 0 {
		m.Runs = append(m.Runs, StepRun{stored, src, 0, 0, 1})
		return true
	}
	r := &m.Runs[n-1]
	lastStored, lastSrc := r[0]+(r[4]-1)*r[2], r[1]+(r[4]-1)*r[3]
	switch {
	case src == lastSrc && stored == lastStored:
		return true
	case src <= lastSrc || stored <= lastStored:
		m.broken = true
		return false
	case r[4] == 1:
		r[2], r[3], r[4] = stored-lastStored, src-lastSrc, 2
	case stored-lastStored == r[2] && src-lastSrc == r[3]:
		r[4]++
	default:
		m.Runs = append(m.Runs, StepRun{stored, src, 0, 0, 1})
	}
	return true
}

// Source returns the source step of stored step s.
func (r *Rebase) Source(s int64) (int64, bool) {
	i := sort.Search(len(r.Runs), func(i int) bool { return r.Runs[i][0] > s }) - 1
	if i < 0 {
		return 0, false
	}
	run := r.Runs[i]
	off := s - run[0]
	if run[4] == 1 || run[2] == 0 {
		return run[1], off == 0
	}
	if off%run[2] != 0 || off/run[2] >= run[4] {
		return 0, false
	}
	return run[1] + off/run[2]*run[3], true
}
