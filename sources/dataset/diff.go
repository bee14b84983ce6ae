package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"

	"github.com/runferry/runferry/schema"
)

// DiffOptions relax Diff for what a given sink cannot represent. Each
// relaxation should come with a reason at the call site.
type DiffOptions struct {
	IgnoreRunFields []string // schema.Run field names not compared, e.g. "Labels"
	NoRichValues    bool     // rich values are not compared
	NoLogs          bool     // console output is not compared
	NoFiles         bool     // artifacts are not compared
	MetricOrderFree bool     // compare metric points as multisets per key
}

// Diff lists every difference between want and got, matching experiments
// and runs by origin; nil means equal. Metric values compare bit for bit,
// except that all NaNs are equal.
func Diff(want, got *Dataset, opt DiffOptions) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	gotExp := map[schema.Ref]schema.Experiment{}
	for _, e := range got.Experiments {
		gotExp[e.Origin] = e
	}
	for _, e := range want.Experiments {
		g, ok := gotExp[e.Origin]
		if !ok {
			add("experiment %s missing", e.Origin)
			continue
		}
		delete(gotExp, e.Origin)
		if g.Name != e.Name || g.Description != e.Description || !reflect.DeepEqual(nilIfEmpty(g.Tags), nilIfEmpty(e.Tags)) || g.Deleted != e.Deleted {
			add("experiment %s differs:\n  want %+v\n  got  %+v", e.Origin, e, g)
		}
	}
	for ref := range gotExp {
		add("unexpected experiment %s", ref)
	}
	gotRuns := map[schema.Ref]*RunData{}
	for _, r := range got.Runs {
		if _, dup := gotRuns[r.Run.Origin]; dup {
			add("run %s appears twice", r.Run.Origin)
		}
		gotRuns[r.Run.Origin] = r
	}
	for _, w := range want.Runs {
		g, ok := gotRuns[w.Run.Origin]
		if !ok {
			add("run %s missing", w.Run.Origin)
			continue
		}
		delete(gotRuns, w.Run.Origin)
		out = append(out, diffRun(w, g, opt)...)
	}
	for ref := range gotRuns {
		add("unexpected run %s", ref)
	}
	slices.Sort(out)
	return out
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func diffRun(w, g *RunData, opt DiffOptions) []string {
	var out []string
	id := w.Run.Origin
	add := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("run %s: ", id)+fmt.Sprintf(format, args...))
	}
	wv, gv := reflect.ValueOf(w.Run), reflect.ValueOf(g.Run)
	for i := 0; i < wv.NumField(); i++ {
		name := wv.Type().Field(i).Name
		if name == "InheritedDamage" || slices.Contains(opt.IgnoreRunFields, name) {
			continue // InheritedDamage: how the source came to hold Damage, not the run's data
		}
		a, b := wv.Field(i).Interface(), gv.Field(i).Interface()
		if !fieldEqual(a, b) {
			add("%s: want %s, got %s", name, show(a), show(b))
		}
	}
	out = append(out, diffMetrics(id, w.Metrics, g.Metrics, opt.MetricOrderFree)...)
	if !opt.NoRichValues && !reflect.DeepEqual(nilIfEmpty(w.RichValues), nilIfEmpty(g.RichValues)) {
		add("rich values differ: want %d, got %d\n  want %+v\n  got  %+v", len(w.RichValues), len(g.RichValues), w.RichValues, g.RichValues)
	}
	if !opt.NoLogs && !reflect.DeepEqual(nilIfEmpty(w.Logs), nilIfEmpty(g.Logs)) {
		add("logs differ: want %d lines, got %d\n  want %+v\n  got  %+v", len(w.Logs), len(g.Logs), w.Logs, g.Logs)
	}
	if !opt.NoFiles {
		out = append(out, diffFiles(id, w.Files, g.Files)...)
	}
	return out
}

// fieldEqual compares run fields, treating nil and empty slices alike and
// JSON documents by meaning.
func fieldEqual(a, b any) bool {
	switch a := a.(type) {
	case json.RawMessage:
		return jsonEqual(a, b.(json.RawMessage))
	}
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	if av.Kind() == reflect.Slice && av.Len() == 0 && bv.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

func jsonEqual(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || isEmptyObject(a) && isEmptyObject(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(x, y)
}

func isEmptyObject(b json.RawMessage) bool {
	return len(b) == 0 || string(bytes.TrimSpace(b)) == "{}" || string(bytes.TrimSpace(b)) == "null"
}

func show(v any) string {
	if raw, ok := v.(json.RawMessage); ok {
		return string(raw)
	}
	return fmt.Sprintf("%+v", v)
}

func diffMetrics(id schema.Ref, want, got []schema.Metric, orderFree bool) []string {
	w, g := slices.Clone(want), slices.Clone(got)
	if orderFree {
		schema.SortMetrics(w)
		schema.SortMetrics(g)
	} else {
		// Only the order within a key is part of the contract.
		slices.SortStableFunc(w, func(a, b schema.Metric) int { return compareKey(a, b) })
		slices.SortStableFunc(g, func(a, b schema.Metric) int { return compareKey(a, b) })
	}
	var out []string
	n := max(len(w), len(g))
	for i := 0; i < n && len(out) < 10; i++ {
		switch {
		case i >= len(w):
			out = append(out, fmt.Sprintf("run %s: unexpected point %+v", id, g[i]))
		case i >= len(g):
			out = append(out, fmt.Sprintf("run %s: missing point %+v", id, w[i]))
		case !samePoint(w[i], g[i]):
			out = append(out, fmt.Sprintf("run %s: point %d: want %+v, got %+v", id, i, w[i], g[i]))
		}
	}
	if len(w) != len(g) {
		out = append(out, fmt.Sprintf("run %s: want %d points, got %d", id, len(w), len(g)))
	}
	return out
}

func compareKey(a, b schema.Metric) int {
	switch {
	case a.Key < b.Key:
		return -1
	case a.Key > b.Key:
		return 1
	}
	return 0
}

func samePoint(a, b schema.Metric) bool {
	return a.Key == b.Key && a.Step == b.Step && a.Time == b.Time &&
		(math.Float64bits(a.Value) == math.Float64bits(b.Value) || math.IsNaN(a.Value) && math.IsNaN(b.Value))
}

func diffFiles(id schema.Ref, want, got []File) []string {
	var out []string
	gm := map[string]File{}
	for _, f := range got {
		gm[f.Path] = f
	}
	for _, f := range want {
		g, ok := gm[f.Path]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("run %s: file %s missing", id, f.Path))
		case g.Problem != f.Problem:
			out = append(out, fmt.Sprintf("run %s: file %s: problem %q, got %q", id, f.Path, f.Problem, g.Problem))
		case !bytes.Equal(g.Content, f.Content):
			out = append(out, fmt.Sprintf("run %s: file %s: content differs (%d bytes, got %d)", id, f.Path, len(f.Content), len(g.Content)))
		}
		delete(gm, f.Path)
	}
	for p := range gm {
		out = append(out, fmt.Sprintf("run %s: unexpected file %s", id, p))
	}
	return out
}
