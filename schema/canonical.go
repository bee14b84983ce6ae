package schema

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"
)

// Canonicalize puts r into canonical form in place: params, tags and labels
// sorted by key with duplicate keys collapsed (the last value wins, as when
// a platform applies updates in order), and times in UTC truncated to the
// millisecond.
func (r *Run) Canonicalize() {
	r.Params = sortedUnique(r.Params, func(p Param) string { return p.Key })
	r.Tags = sortedUnique(r.Tags, func(t Tag) string { return t.Key })
	slices.Sort(r.Labels)
	r.Labels = slices.Compact(r.Labels)
	r.Start = CanonicalTime(r.Start)
	r.End = CanonicalTime(r.End)
	for i := range r.Inputs {
		r.Inputs[i].Tags = sortedUnique(r.Inputs[i].Tags, func(t Tag) string { return t.Key })
	}
	slices.SortStableFunc(r.Inputs, CompareDatasetInputs)
	r.Inputs = slices.CompactFunc(r.Inputs, func(a, b DatasetInput) bool { return CompareDatasetInputs(a, b) == 0 })
	if len(r.Inputs) == 0 {
		r.Inputs = nil
	}
}

// CompareDatasetInputs orders dataset inputs by name, digest, source type,
// source, schema, profile and then tags (key, then value, pair by pair):
// the canonical order of Run.Inputs, in which no two inputs are equal.
func CompareDatasetInputs(a, b DatasetInput) int {
	for _, p := range [][2]string{{a.Name, b.Name}, {a.Digest, b.Digest}, {a.SourceType, b.SourceType},
		{a.Source, b.Source}, {a.Schema, b.Schema}, {a.Profile, b.Profile}} {
		if c := cmp.Compare(p[0], p[1]); c != 0 {
			return c
		}
	}
	return slices.CompareFunc(a.Tags, b.Tags, func(x, y Tag) int {
		if c := cmp.Compare(x.Key, y.Key); c != 0 {
			return c
		}
		return cmp.Compare(x.Value, y.Value)
	})
}

// Canonicalize puts e into canonical form in place (see Run.Canonicalize).
func (e *Experiment) Canonicalize() {
	e.Tags = sortedUnique(e.Tags, func(t Tag) string { return t.Key })
	e.CreatedAt = CanonicalTime(e.CreatedAt)
}

// CanonicalTime returns t in UTC truncated to the millisecond; the zero time
// stays zero.
func CanonicalTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Millisecond)
}

// sortedUnique sorts s stably by key and keeps the last element of each key.
func sortedUnique[T any](s []T, key func(T) string) []T {
	if len(s) == 0 {
		return nil
	}
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	out := s[:0]
	for i, v := range s {
		if i+1 < len(s) && key(s[i+1]) == key(v) {
			continue
		}
		out = append(out, v)
	}
	return out
}

// Validate reports the first way in which r is not well-formed: a missing
// origin or experiment, an unknown status, unsorted or duplicate keys,
// invalid UTF-8, times not in canonical form, an end before the start, or
// config/summary that is not a JSON object.
func (r *Run) Validate() error {
	if r.Origin.IsZero() || r.Origin.ID == "" {
		return errors.New("run has no origin id")
	}
	wrap := func(err error) error { return fmt.Errorf("run %s: %w", r.Origin, err) }
	if r.Experiment.IsZero() {
		return wrap(errors.New("no experiment"))
	}
	if !r.Status.Valid() {
		return wrap(fmt.Errorf("invalid status %q", r.Status))
	}
	if err := checkSorted(r.Params, func(p Param) string { return p.Key }, "param"); err != nil {
		return wrap(err)
	}
	if err := checkSorted(r.Tags, func(t Tag) string { return t.Key }, "tag"); err != nil {
		return wrap(err)
	}
	if err := checkSorted(r.Labels, func(s string) string { return s }, "label"); err != nil {
		return wrap(err)
	}
	for i, in := range r.Inputs {
		if err := checkSorted(in.Tags, func(t Tag) string { return t.Key }, "dataset input tag"); err != nil {
			return wrap(fmt.Errorf("dataset input %q: %w", in.Name, err))
		}
		if i > 0 && CompareDatasetInputs(r.Inputs[i-1], in) >= 0 {
			return wrap(fmt.Errorf("dataset inputs not in canonical order and unique at %q", in.Name))
		}
	}
	for _, t := range []time.Time{r.Start, r.End} {
		if !t.Equal(CanonicalTime(t)) || (!t.IsZero() && t.Location() != time.UTC) {
			return wrap(fmt.Errorf("time %v is not UTC at millisecond precision", t))
		}
	}
	if !r.Start.IsZero() && !r.End.IsZero() && r.End.Before(r.Start) {
		return wrap(fmt.Errorf("end %v before start %v", r.End, r.Start))
	}
	for _, s := range []string{r.Name, r.User, r.Notes, r.Group, r.JobType, r.Host, r.Program} {
		if !utf8.ValidString(s) {
			return wrap(fmt.Errorf("invalid UTF-8 in %q", s))
		}
	}
	for name, raw := range map[string]json.RawMessage{"config": r.Config, "summary": r.Summary} {
		if len(raw) == 0 {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return wrap(fmt.Errorf("%s is not a JSON object: %v", name, err))
		}
	}
	return nil
}

// Validate reports the first way in which e is not well-formed.
func (e *Experiment) Validate() error {
	if e.Origin.ID == "" {
		return errors.New("experiment has no origin id")
	}
	if e.Name == "" {
		return fmt.Errorf("experiment %s has no name", e.Origin)
	}
	return checkSorted(e.Tags, func(t Tag) string { return t.Key }, "tag")
}

func checkSorted[T any](s []T, key func(T) string, what string) error {
	for i, v := range s {
		k := key(v)
		if !utf8.ValidString(k) {
			return fmt.Errorf("%s key %q is not valid UTF-8", what, k)
		}
		if k == "" {
			return fmt.Errorf("empty %s key", what)
		}
		if i > 0 && key(s[i-1]) >= k {
			return fmt.Errorf("%s keys not sorted and unique at %q", what, k)
		}
	}
	return nil
}

// CompareMetrics orders points by key, then step, then time, then value
// (NaN before every number); it is the canonical order of a metric history.
func CompareMetrics(a, b Metric) int {
	if c := cmp.Compare(a.Key, b.Key); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Step, b.Step); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Time, b.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Value, b.Value)
}

// SortMetrics sorts points into canonical order (see CompareMetrics).
func SortMetrics(points []Metric) { slices.SortFunc(points, CompareMetrics) }
