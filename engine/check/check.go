// Package check proves a transfer: it compares every selected run of a
// source with its counterpart in a destination (found by origin) field by
// field, metric key by metric key, and file by file, streaming both sides
// so that runs of any size can be compared.
package check

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"iter"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// Difference is one way in which the destination differs from the source.
type Difference struct {
	Run  string `json:"run"`            // source origin of the run ("" for the job)
	What string `json:"what"`           // e.g. "missing run", "metric loss", "param lr"
	Want string `json:"want,omitempty"` // the source's value
	Got  string `json:"got,omitempty"`  // the destination's value
	// Gap names the known gap of the source or destination
	// (sources.GapLister) that explains a known difference; "" for a
	// difference.
	Gap string `json:"gap,omitempty"`
}

func (d Difference) String() string {
	s := d.What
	if d.Run != "" {
		s = d.Run + ": " + s
	}
	if d.Want != "" || d.Got != "" {
		s += fmt.Sprintf(": source %s, destination %s", d.Want, d.Got)
	}
	return s
}

// Result is the outcome of a check.
type Result struct {
	Experiments int          `json:"experiments"` // source experiments compared
	Runs        int          `json:"runs"`        // source runs compared
	Matching    int          `json:"matching"`    // runs without a difference
	Points      int64        `json:"points"`      // source points compared
	Differences []Difference `json:"differences"` // empty when everything matches
	// Known are the differences that a known gap of the source or the
	// destination explains (sources.GapLister: what one of them cannot
	// give), each naming its gap; they do not count as differences, and a
	// run with only those counts as matching.
	Known []Difference `json:"known,omitempty"`
	// Warnings names filter patterns that matched nothing.
	Warnings []string `json:"warnings,omitempty"`
	// Models counts the source's registered models compared.
	Models int `json:"models,omitempty"`
	// Traces counts the source's traces compared.
	Traces int `json:"traces,omitempty"`
	// SourceDamage names what the source could not read of the runs
	// compared (schema.Run.Damage), by run: those runs were compared as far
	// as they could be read, as the copy wrote them.
	SourceDamage []Difference `json:"source_damage,omitempty"`
	// InheritedDamage names the damage notes the source only carries
	// (schema.Run.InheritedDamage: an earlier copy's notes of the original
	// source), by run: not gaps of this source, compared as data.
	InheritedDamage []Difference `json:"inherited_damage,omitempty"`
	// NotCompared names the runs check could not read from the source
	// (a damaged or missing file: an error of kind permanent, or not
	// found), each with what could not be read: they were not compared to
	// the end, are neither matching nor counted as differences, and the
	// check carries on with the other runs. What a run showed before the
	// error stays in Differences.
	NotCompared []Difference `json:"not_compared,omitempty"`

	srcGaps, dstGaps []sources.Gap
}

// Options select what is compared.
type Options struct {
	Filter transfer.Filter
	// IgnoreFields lists schema.Run field names not compared, for sinks
	// that cannot represent them.
	IgnoreFields []string
	// Transform is what the copy applied to the source (--drop-metrics):
	// it is applied to the source's side before comparing.
	Transform transform.Chain
	// Progress, when set, is called after each run.
	Progress func(run string, diffs int)
}

// Run compares src with dst: every selected experiment (name,
// description, tags, creation time, deleted state, and experiments without
// runs too), every selected run, and what the destination holds beyond
// them: a second copy of a run, or a run in a compared experiment that the
// source does not have (and the filter would select). What the source
// reports it could not read (sources.ProblemReporter) counts as a
// difference of the job, since it was not compared.
func Run(ctx context.Context, src, dst sources.Source, opt Options) (*Result, error) {
	res := &Result{}
	if g, ok := src.(sources.GapLister); ok {
		res.srcGaps = g.KnownGaps()
	}
	if g, ok := dst.(sources.GapLister); ok {
		res.dstGaps = g.KnownGaps()
	}
	index, err := res.indexDestination(ctx, dst)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	plain := opt.Filter // untracked: for the destination's runs
	opt.Filter = opt.Filter.Track()
	defer func() { res.Warnings = opt.Filter.Unmatched() }()
	compared := map[schema.Ref]bool{} // experiments compared
	var exps []schema.Ref             // the same, in listing order
	seen := map[schema.Ref]bool{}     // source runs compared
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			return res, fmt.Errorf("source: %w", err)
		}
		if !opt.Filter.Experiment(e) {
			continue
		}
		compared[e.Origin] = true
		exps = append(exps, e.Origin)
		eopt := opt
		if len(opt.Transform) == 0 {
			eopt.Transform = index.transforms[e.Origin]
		}
		// Runs selected by id or start time bring their experiments (a
		// copy writes no other): an experiment holding none of them is
		// compared only if the destination holds it.
		byRun := opt.Filter.SelectsRuns()
		if !byRun {
			res.Experiments++
			res.compareExperiment(e, index.exps[e.Origin], eopt)
		}
		runs := 0
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				return res, fmt.Errorf("source: %w", err)
			}
			if !opt.Filter.Run(r) {
				continue
			}
			if runs++; byRun && runs == 1 {
				res.Experiments++
				res.compareExperiment(e, index.exps[e.Origin], eopt)
			}
			res.Runs++
			seen[r.Origin] = true
			fresh, inherited := r.SplitDamage()
			for _, d := range fresh {
				res.SourceDamage = append(res.SourceDamage, Difference{Run: r.Origin.String(), What: d})
			}
			for _, d := range inherited {
				res.InheritedDamage = append(res.InheritedDamage, Difference{Run: r.Origin.String(), What: d})
			}
			before, notBefore := len(res.Differences), len(res.NotCompared)
			copies := index.runs[r.Origin]
			switch {
			case len(copies) == 0:
				res.add(r.Origin, "missing run", r.Name, "")
			default:
				if len(copies) > 1 {
					res.add(r.Origin, "run held more than once in the destination", "1 copy", fmt.Sprintf("%d copies", len(copies)))
				}
				want, got := r, copies[0]
				// A run of an experiment deleted on both sides is deleted
				// with it (MLflow marks it so), whatever its own mark
				// says; an experiment deleted on one side only is a
				// difference of its own.
				if e.Deleted && index.deleted(got.Experiment) {
					want.Deleted, got.Deleted = true, true
				}
				ropt := opt
				if len(opt.Transform) == 0 {
					ropt.Transform = res.recordedTransform(ctx, dst, copies[0].Origin)
				}
				if err := res.compareRun(ctx, src, dst, want, got, ropt); err != nil {
					if !res.unreadableRun(ctx, r.Origin, err) {
						return res, err
					}
				}
			}
			if len(res.Differences) == before && len(res.NotCompared) == notBefore {
				res.Matching++
			}
			if opt.Progress != nil {
				opt.Progress(r.Origin.String(), len(res.Differences)-before)
			}
		}
		if byRun && runs == 0 && len(index.exps[e.Origin]) > 0 {
			res.Experiments++
			res.compareExperiment(e, index.exps[e.Origin], eopt)
		}
	}
	for _, origin := range index.order {
		for _, r := range index.runs[origin] {
			if !seen[origin] && compared[r.Experiment] && plain.Run(r) {
				res.add(origin, "unexpected run in the destination (not in the source)", "", r.Name)
				break
			}
		}
	}
	if err := res.compareRegistry(ctx, src, dst, plain.Selective(), seen); err != nil {
		return res, err
	}
	if err := res.compareTraces(ctx, src, dst, exps, plain, seen); err != nil {
		return res, err
	}
	// What the source could not read cannot be compared: it is no match.
	if pr, ok := src.(sources.ProblemReporter); ok {
		for _, p := range pr.Problems(ctx) {
			res.Differences = append(res.Differences, Difference{What: "source could not be read: " + p})
		}
	}
	return res, nil
}

func (res *Result) add(run schema.Ref, what, want, got string) {
	d := Difference{Run: run.String(), What: what, Want: want, Got: got}
	if d.Gap = res.gap(what, want, got); d.Gap != "" {
		res.Known = append(res.Known, d)
		return
	}
	res.Differences = append(res.Differences, d)
}

// gap returns the name of the known gap of the source or the destination
// that explains a difference, "" for none.
func (res *Result) gap(what, want, got string) string {
	for _, g := range res.srcGaps {
		if g.Match(what, want, got) {
			return g.Name
		}
	}
	for _, g := range res.dstGaps {
		if g.Match(what, got, want) {
			return g.Name
		}
	}
	return ""
}

// destination is what the destination holds, by origin.
type destination struct {
	// transforms holds, per experiment, the transform recorded with its
	// first run that has one (sources.TransformReader).
	transforms map[schema.Ref]transform.Chain
	exps       map[schema.Ref][]schema.Experiment
	runs       map[schema.Ref][]schema.Run
	order      []schema.Ref // run origins in listing order
}

// deleted reports whether the destination holds experiment exp as deleted.
func (d *destination) deleted(exp schema.Ref) bool {
	for _, e := range d.exps[exp] {
		if e.Deleted {
			return true
		}
	}
	return false
}

// indexDestination lists the destination's experiments and runs by
// origin. A run list the destination cannot deliver for a permanent reason
// (damaged data) is a difference naming the reason, and the runs it would
// have listed then show as missing.
func (res *Result) indexDestination(ctx context.Context, src sources.Source) (*destination, error) {
	d := &destination{exps: map[schema.Ref][]schema.Experiment{}, runs: map[schema.Ref][]schema.Run{},
		transforms: map[schema.Ref]transform.Chain{}}
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			return nil, err
		}
		d.exps[e.Origin] = append(d.exps[e.Origin], e)
		for r, err := range src.Runs(ctx, e.Origin) {
			if err != nil {
				if fault.KindOf(err) != fault.KindPermanent {
					return nil, err
				}
				res.Differences = append(res.Differences, Difference{What: fmt.Sprintf("destination: runs of experiment %s unreadable", e.Origin), Got: err.Error()})
				break
			}
			if len(d.runs[r.Origin]) == 0 {
				d.order = append(d.order, r.Origin)
			}
			if _, ok := d.transforms[e.Origin]; !ok {
				if c := res.recordedTransform(ctx, src, r.Origin); c != nil {
					d.transforms[e.Origin] = c
				}
			}
			d.runs[r.Origin] = append(d.runs[r.Origin], r)
		}
	}
	return d, nil
}

// recordedTransform returns the transform the destination recorded with
// run (nil for none). One it cannot parse is a difference: the run cannot
// be compared as it was written.
func (res *Result) recordedTransform(ctx context.Context, dst sources.Source, run schema.Ref) transform.Chain {
	tr, ok := dst.(sources.TransformReader)
	if !ok {
		return nil
	}
	s := tr.RecordedTransform(ctx, run)
	c, err := transform.Parse(s)
	if err != nil {
		res.add(run, "transform recorded in the destination unreadable", "", err.Error())
		return nil
	}
	return c
}

// compareExperiment compares a source experiment with the destination's
// experiments of the same origin.
func (res *Result) compareExperiment(want schema.Experiment, got []schema.Experiment, opt Options) {
	id := want.Origin
	if len(got) == 0 {
		res.add(id, "missing experiment", want.Name, "")
		return
	}
	if len(got) > 1 {
		res.add(id, "experiment held more than once in the destination", "1", fmt.Sprint(len(got)))
	}
	g := got[0]
	wantName := opt.Transform.Experiment(want).Name
	if wantName != g.Name {
		res.add(id, "experiment name", wantName, g.Name)
	}
	if want.Description != g.Description {
		res.add(id, "experiment description", want.Description, g.Description)
	}
	if want.Deleted != g.Deleted {
		res.add(id, "experiment deleted", fmt.Sprint(want.Deleted), fmt.Sprint(g.Deleted))
	}
	if !want.CreatedAt.Equal(g.CreatedAt) && !slices.Contains(opt.IgnoreFields, "CreatedAt") {
		res.add(id, "experiment creation time", show(want.CreatedAt), show(g.CreatedAt))
	}
	res.compareKV(id, "experiment tag", tagMap(want.Tags), tagMap(g.Tags))
}

func (res *Result) compareRun(ctx context.Context, src, dst sources.Source, want, got schema.Run, opt Options) error {
	id := want.Origin
	want, _ = opt.Transform.Run(want) // what the copy left out on purpose is not expected
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := 0; i < wv.NumField(); i++ {
		name := wv.Type().Field(i).Name
		if name == "Origin" || name == "InheritedDamage" || slices.Contains(opt.IgnoreFields, name) {
			continue // InheritedDamage: how each side came to hold Damage, compared below
		}
		if name == "Damage" {
			// The source's damage notes travel with the run. A note only
			// the destination has is its reader finding that what it
			// shows disagrees with what was written: a difference.
			for _, d := range got.Damage {
				if !slices.Contains(want.Damage, d) {
					res.add(id, "destination shows", "", d)
				}
			}
			continue
		}
		a, b := wv.Field(i).Interface(), gv.Field(i).Interface()
		switch name {
		case "Params":
			res.compareKV(id, "param", paramMap(want.Params), paramMap(got.Params))
			continue
		case "Tags":
			res.compareKV(id, "tag", tagMap(want.Tags), tagMap(got.Tags))
			continue
		}
		if !fieldEqual(a, b) {
			res.add(id, "field "+name, show(a), show(b))
		}
	}
	wm, err := metricStats(ctx, src, want.Origin, opt.Transform)
	if err != nil {
		return fmt.Errorf("source run %s: %w", id, err)
	}
	gm, err := metricStats(ctx, dst, got.Origin, nil)
	if err != nil {
		if !unreadable(err) {
			return fmt.Errorf("destination run %s: %w", id, err)
		}
		res.add(id, "metrics unreadable in the destination", fmt.Sprintf("%d keys", len(wm)), err.Error())
		for _, k := range slices.Sorted(maps.Keys(wm)) {
			res.Points += wm[k].Count
		}
		wm, gm = nil, nil
	}
	for _, k := range slices.Sorted(maps.Keys(wm)) {
		res.Points += wm[k].Count
		g, ok := gm[k]
		switch {
		case !ok:
			res.add(id, "metric "+k+" missing", fmt.Sprintf("%d points", wm[k].Count), "none")
		case !wm[k].Equal(g):
			res.add(id, "metric "+k, describe(wm[k]), describe(g))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(gm)) {
		if _, ok := wm[k]; !ok {
			res.add(id, "metric "+k+" unexpected", "none", fmt.Sprintf("%d points", gm[k].Count))
		}
	}
	if err := res.compareStreams(ctx, src, dst, want.Origin); err != nil {
		return err
	}
	if err := res.compareFiles(ctx, src, dst, want.Origin, opt.Transform); err != nil {
		return err
	}
	return res.compareManifests(ctx, src, dst, want.Origin)
}

func (res *Result) compareKV(id schema.Ref, what string, want, got map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			res.add(id, what+" "+k+" missing", want[k], "")
		case g != want[k]:
			res.add(id, what+" "+k, want[k], g)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[k]; !ok {
			res.add(id, what+" "+k+" unexpected", "", got[k])
		}
	}
}

func paramMap(ps []schema.Param) map[string]string {
	m := map[string]string{}
	for _, p := range ps {
		m[p.Key] = p.Value
	}
	return m
}

func tagMap(ts []schema.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[t.Key] = t.Value
	}
	return m
}

func fieldEqual(a, b any) bool {
	if ra, ok := a.(json.RawMessage); ok {
		var x, y any
		rb := b.(json.RawMessage)
		if absentJSON(ra) || absentJSON(rb) {
			return absentJSON(ra) && absentJSON(rb)
		}
		if json.Unmarshal(ra, &x) != nil || json.Unmarshal(rb, &y) != nil {
			return string(ra) == string(rb)
		}
		return reflect.DeepEqual(x, y)
	}
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	if av.Kind() == reflect.Slice && av.Len() == 0 && bv.Len() == 0 {
		return true
	}
	return reflect.DeepEqual(a, b)
}

// absentJSON reports whether a document says nothing: missing, null or {}.
func absentJSON(b json.RawMessage) bool {
	s := strings.TrimSpace(string(b))
	return s == "" || s == "null" || s == "{}"
}

func show(v any) string {
	if raw, ok := v.(json.RawMessage); ok {
		return string(raw)
	}
	return fmt.Sprintf("%v", v)
}

func describe(s schema.KeyStats) string {
	return fmt.Sprintf("%d points, steps %d..%d, min %g max %g last %g, digest %016x",
		s.Count, s.FirstStep, s.LastStep, s.Min, s.Max, s.Last, s.Digest)
}

// metricStats sums a run's metric history per key, after the transform
// (nil: none).
func metricStats(ctx context.Context, src sources.Source, run schema.Ref, tr transform.Chain) (map[string]schema.KeyStats, error) {
	out := map[string]schema.KeyStats{}
	for page, err := range src.Metrics(ctx, run) {
		if err != nil {
			return nil, err
		}
		for _, m := range tr.Metrics(page) {
			s := out[m.Key]
			s.Add(m)
			out[m.Key] = s
		}
	}
	return out, nil
}

var seed = maphash.MakeSeed()

// ConsoleTimes is what check names a difference of console lines that
// are the same text, streams and order on both sides but for their times.
const ConsoleTimes = sources.ConsoleTimes

// streamDigest counts and hashes (order-sensitively) a run's rich values.
type streamDigest struct {
	n int64
	h maphash.Hash
}

func (res *Result) compareStreams(ctx context.Context, src, dst sources.Source, run schema.Ref) error {
	if err := res.compareLogs(ctx, src, dst, run); err != nil {
		return err
	}
	const what = "rich values"
	digest := func(s sources.Source) (streamDigest, bool, error) {
		var d streamDigest
		d.h.SetSeed(seed)
		rr, ok := s.(sources.RichValueReader)
		if !ok {
			return d, false, nil
		}
		for page, err := range rr.RichValues(ctx, run) {
			if err != nil {
				return d, true, err
			}
			for _, v := range page {
				d.n++
				fmt.Fprintf(&d.h, "%s\x00%d\x00%d\x00%s\x00%s\x00%q\x00", v.Key, v.Step, v.Time, v.Type, v.JSON, v.Files)
			}
		}
		return d, true, nil
	}
	w, wok, err := digest(src)
	if err != nil {
		return fmt.Errorf("source run %s %s: %w", run, what, err)
	}
	if !wok {
		return nil
	}
	g, gok, err := digest(dst)
	if err != nil {
		if !unreadable(err) {
			return fmt.Errorf("destination run %s %s: %w", run, what, err)
		}
		res.add(run, what+" unreadable in the destination", fmt.Sprint(w.n), err.Error())
		return nil
	}
	switch {
	case !gok && w.n > 0:
		res.add(run, what+" not readable from the destination", fmt.Sprint(w.n), "")
	case gok && (w.n != g.n || w.h.Sum64() != g.h.Sum64()):
		res.add(run, what, fmt.Sprintf("%d entries (%016x)", w.n, w.h.Sum64()), fmt.Sprintf("%d entries (%016x)", g.n, g.h.Sum64()))
	}
	return nil
}

// LineTime is how check shows a console line's time to a known gap
// (sources.Gap.Match, with what ConsoleTimes): RFC 3339 in UTC to the
// millisecond, "" for a line without a time.
func LineTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// compareLogs compares the run's console lines one by one, in order,
// both sides streamed together. Lines that differ in text or stream, or a
// line on one side only, make one difference, "console output", naming
// the first such line. Lines that differ only in their times are each
// offered to the known gaps (what ConsoleTimes, the two times as LineTime
// shows them): those a gap explains make one known difference per gap,
// the others one difference, each counting its lines and naming the
// first.
func (res *Result) compareLogs(ctx context.Context, src, dst sources.Source, run schema.Ref) error {
	const what = "console output"
	sr, ok := src.(sources.LogReader)
	if !ok {
		return nil
	}
	dr, gok := dst.(sources.LogReader)
	lines := func(r sources.LogReader) (next func() (schema.LogLine, bool, error), stop func()) {
		pull, stop := iter.Pull2(r.Logs(ctx, run))
		var page []schema.LogLine
		return func() (schema.LogLine, bool, error) {
			for len(page) == 0 {
				p, err, ok := pull()
				if !ok {
					return schema.LogLine{}, false, nil
				}
				if err != nil {
					return schema.LogLine{}, false, err
				}
				page = p
			}
			l := page[0]
			page = page[1:]
			return l, true, nil
		}, stop
	}
	nextW, stopW := lines(sr)
	defer stopW()
	if !gok {
		n := 0
		for {
			_, ok, err := nextW()
			if err != nil {
				return fmt.Errorf("source run %s %s: %w", run, what, err)
			}
			if !ok {
				break
			}
			n++
		}
		if n > 0 {
			res.add(run, what+" not readable from the destination", fmt.Sprint(n), "")
		}
		return nil
	}
	nextG, stopG := lines(dr)
	defer stopG()
	type timed struct {
		n         int64
		line      int64
		want, got string
	}
	byGap := map[string]*timed{}
	var gaps []string
	var nw, ng, textAt int64 // lines on each side; the first line differing in text (1-based), 0: none
	var firstW, firstG string
	for wok, gok := true, true; wok || gok; {
		var w, g schema.LogLine
		var err error
		if wok {
			if w, wok, err = nextW(); err != nil {
				return fmt.Errorf("source run %s %s: %w", run, what, err)
			}
		}
		if gok {
			if g, gok, err = nextG(); err != nil {
				if !unreadable(err) {
					return fmt.Errorf("destination run %s %s: %w", run, what, err)
				}
				res.add(run, what+" unreadable in the destination", fmt.Sprint(nw), err.Error())
				return nil
			}
		}
		if wok {
			nw++
		}
		if gok {
			ng++
		}
		n := max(nw, ng)
		show := func(l schema.LogLine, ok bool) string {
			if !ok {
				return fmt.Sprintf("line %d: none", n)
			}
			return fmt.Sprintf("line %d: %s %q", n, l.Stream, l.Line)
		}
		switch {
		case textAt != 0 || !wok && !gok:
		case wok != gok || w.Stream != g.Stream || w.Line != g.Line:
			textAt, firstW, firstG = n, show(w, wok), show(g, gok)
		case w.Time != g.Time:
			wt, gt := LineTime(w.Time), LineTime(g.Time)
			name := res.gap(ConsoleTimes, wt, gt)
			t := byGap[name]
			if t == nil {
				t = &timed{line: n, want: cmp.Or(wt, "no time"), got: cmp.Or(gt, "no time")}
				byGap[name] = t
				gaps = append(gaps, name)
			}
			t.n++
		}
	}
	if textAt != 0 {
		res.Differences = append(res.Differences, Difference{Run: run.String(), What: what,
			Want: fmt.Sprintf("%d lines, %s", nw, firstW), Got: fmt.Sprintf("%d lines, %s", ng, firstG)})
		return nil
	}
	n := nw
	for _, name := range gaps {
		t := byGap[name]
		d := Difference{Run: run.String(), What: ConsoleTimes, Gap: name,
			Want: fmt.Sprintf("%d of %d lines, first line %d at %s", t.n, n, t.line, t.want),
			Got:  fmt.Sprintf("line %d at %s", t.line, t.got)}
		if name == "" {
			res.Differences = append(res.Differences, d)
		} else {
			res.Known = append(res.Known, d)
		}
	}
	return nil
}

type fileInfo struct {
	size   int64
	digest string
	// unreadable says why the destination's body could not be read (it is
	// missing or damaged); size and digest are then meaningless.
	unreadable string
}

// compareFiles compares the run's files by path, size and SHA-256. The
// destination's bodies are always read and hashed, whatever digest it
// records (a destination's record of a body proves nothing about the body
// a user would get); a body it cannot deliver is a difference naming the
// file.
func (res *Result) compareFiles(ctx context.Context, src, dst sources.Source, run schema.Ref, tr transform.Chain) error {
	wf, wmeta, wok, err := listFiles(ctx, src, run, false, tr)
	if err != nil {
		return fmt.Errorf("source run %s files: %w", run, err)
	}
	if !wok {
		return nil
	}
	gf, gmeta, gok, err := listFiles(ctx, dst, run, true, nil)
	if err != nil {
		if !unreadable(err) {
			return fmt.Errorf("destination run %s files: %w", run, err)
		}
		res.add(run, "files unreadable in the destination", fmt.Sprint(len(wf)), err.Error())
		return nil
	}
	if !gok {
		if len(wf) > 0 {
			res.add(run, "files not readable from the destination", fmt.Sprint(len(wf)), "")
		}
		return nil
	}
	// Both listing their artifact versions: the manifests are compared
	// field by field (compareManifests), not the manifest files' bytes.
	_, wml := src.(sources.ManifestLister)
	_, gml := dst.(sources.ManifestLister)
	for _, p := range slices.Sorted(maps.Keys(wf)) {
		g, ok := gf[p]
		switch {
		case ok && wml && gml && schema.IsManifestPath(p) && g.unreadable == "":
		case !ok:
			res.add(run, "file "+p+" missing", fmt.Sprintf("%d bytes", wf[p].size), "")
		case g.unreadable != "":
			res.add(run, "file "+p+" unreadable in the destination", fmt.Sprintf("%d bytes %s", wf[p].size, wf[p].digest), g.unreadable)
		case g != wf[p] && wmeta[p] != nil && gmeta[p] != nil && res.compareModelMeta(ctx, run, p, wmeta[p], gmeta[p]):
		case g != wf[p]:
			res.add(run, "file "+p, fmt.Sprintf("%d bytes %s", wf[p].size, wf[p].digest), fmt.Sprintf("%d bytes %s", g.size, g.digest))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(gf)) {
		if _, ok := wf[p]; !ok {
			res.add(run, "file "+p+" unexpected", "", fmt.Sprintf("%d bytes", gf[p].size))
		}
	}
	return nil
}

// listFiles lists a run's files, as the transform tr gives them, with size and SHA-256, hashing content
// whose digest the source does not announce, or every body when
// readBodies. With readBodies, a body that cannot be opened or read for a
// reason that is not transient (missing, damaged: a permanent error) is
// listed as unreadable instead of failing the check. It also returns the
// logged models' metadata files (isModelMeta) by path, to be read again
// when they differ.
func listFiles(ctx context.Context, s sources.Source, run schema.Ref, readBodies bool, tr transform.Chain) (map[string]fileInfo, map[string]*schema.Artifact, bool, error) {
	al, ok := s.(sources.ArtifactLister)
	if !ok {
		return nil, nil, false, nil
	}
	out, metas := map[string]fileInfo{}, map[string]*schema.Artifact{}
	for a, err := range al.Artifacts(ctx, run) {
		if err != nil {
			return nil, nil, true, err
		}
		if a, _, err = tr.Artifact(ctx, a); err != nil {
			return nil, nil, true, fmt.Errorf("file %s: %w", a.Path, err)
		}
		fi := fileInfo{size: a.Size, digest: a.Digest}
		if a.Problem != "" {
			fi.digest = "problem: " + a.Problem
		} else if fi.digest == "" || fi.size < 0 || readBodies {
			if a.Open == nil {
				return nil, nil, true, fmt.Errorf("file %s cannot be read", a.Path)
			}
			var err error
			if fi, err = hashBody(ctx, a); err != nil {
				if !readBodies || !unreadable(err) {
					return nil, nil, true, fmt.Errorf("file %s: %w", a.Path, err)
				}
				fi = fileInfo{size: -1, unreadable: err.Error()}
			}
		}
		if isModelMeta(a.Path) && a.Open != nil && a.Problem == "" {
			metas[a.Path] = &a
		}
		out[a.Path] = fi
	}
	return out, metas, true, nil
}

// hashBody reads an artifact's body and returns its size and SHA-256.
func hashBody(ctx context.Context, a schema.Artifact) (fileInfo, error) {
	rc, err := a.Open(ctx)
	if err != nil {
		return fileInfo{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fileInfo{}, err
	}
	return fileInfo{size: n, digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// unreadableRun records err, an error of compareRun about run, when it
// says what one side holds of the run cannot be read (unreadable) and the
// check was not cancelled: the source's as a run not compared
// (NotCompared), the destination's as a difference. It reports whether err
// was recorded; any other error stops the check.
func (res *Result) unreadableRun(ctx context.Context, run schema.Ref, err error) bool {
	if ctx.Err() != nil || !unreadable(err) {
		return false
	}
	msg := err.Error()
	for _, side := range []string{"source", "destination"} {
		// compareRun's errors read "SIDE run ORIGIN[ WHAT]: ...".
		rest, ok := strings.CutPrefix(msg, side+" run "+run.String())
		if !ok {
			continue
		}
		what := side + rest
		if side == "source" {
			res.NotCompared = append(res.NotCompared, Difference{Run: run.String(), What: what})
		} else {
			res.add(run, "could not be read: "+what, "", "")
		}
		return true
	}
	return false
}

// unreadable reports whether err says what the destination holds is
// missing or damaged (as opposed to a transient or fatal failure, which
// stops the check).
func unreadable(err error) bool {
	return fault.KindOf(err) == fault.KindPermanent || errors.Is(err, fs.ErrNotExist)
}
