// Package transform holds the steps the engine applies between reading a
// run and writing it: renaming experiments and leaving out metric keys.
// Steps are pure functions of the data; adapters never transform.
package transform

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/runferry/runferry/schema"
)

// Step changes data on its way from source to sink. Every method may be
// called from several goroutines at once.
type Step interface {
	// Experiment returns e as the sink should see it.
	Experiment(e schema.Experiment) schema.Experiment
	// Metrics returns the page as the sink should see it; it may filter
	// the page in place.
	Metrics(page []schema.Metric) []schema.Metric
	// Run returns r as the sink should see it, and names what it left
	// out (one entry per item, for the report's coverage).
	Run(r schema.Run) (schema.Run, []string)
	// String describes the step; it is part of the job's identity in the
	// resume ledger.
	String() string
}

// ArtifactStep is a Step that also changes a run's files on their way.
// Artifact returns a as the sink should see it (its Open, Size and Digest
// describing the new content) and names what it left out; an error is the
// file's (fault.Permanent when the file itself is at fault). It may read
// a's content through a.Open.
type ArtifactStep interface {
	Step
	Artifact(ctx context.Context, a schema.Artifact) (schema.Artifact, []string, error)
}

// Chain applies steps in order. The zero Chain changes nothing.
type Chain []Step

// Experiment applies every step to e.
func (c Chain) Experiment(e schema.Experiment) schema.Experiment {
	for _, s := range c {
		e = s.Experiment(e)
	}
	return e
}

// Metrics applies every step to page.
func (c Chain) Metrics(page []schema.Metric) []schema.Metric {
	for _, s := range c {
		page = s.Metrics(page)
	}
	return page
}

// Run applies every step to r, returning what they left out.
func (c Chain) Run(r schema.Run) (schema.Run, []string) {
	var left []string
	for _, s := range c {
		var l []string
		r, l = s.Run(r)
		left = append(left, l...)
	}
	return r, left
}

// Artifact applies every ArtifactStep of c to a, returning what they left
// out.
func (c Chain) Artifact(ctx context.Context, a schema.Artifact) (schema.Artifact, []string, error) {
	var left []string
	for _, s := range c {
		as, ok := s.(ArtifactStep)
		if !ok {
			continue
		}
		var l []string
		var err error
		if a, l, err = as.Artifact(ctx, a); err != nil {
			return a, nil, err
		}
		left = append(left, l...)
	}
	return a, left, nil
}

// ChangesArtifacts reports whether a step of c may change files.
func (c Chain) ChangesArtifacts() bool {
	return slices.ContainsFunc(c, func(s Step) bool {
		_, ok := s.(ArtifactStep)
		return ok
	})
}

// ChangesMetrics reports whether a step of c may change or leave out
// metric points (DropMetrics, or a step this package does not know).
func (c Chain) ChangesMetrics() bool {
	return slices.ContainsFunc(c, func(s Step) bool {
		switch s.(type) {
		case DropPersonal, PrefixExperiments:
			return false
		}
		return true
	})
}

// String describes the chain.
func (c Chain) String() string {
	parts := make([]string, len(c))
	for i, s := range c {
		parts[i] = s.String()
	}
	return strings.Join(parts, "|")
}

// PrefixExperiments prepends a prefix to every experiment name, so that a
// migration lands beside, not into, existing experiments.
type PrefixExperiments string

// Experiment renames e.
func (p PrefixExperiments) Experiment(e schema.Experiment) schema.Experiment {
	e.Name = string(p) + e.Name
	return e
}

// Metrics changes nothing.
func (p PrefixExperiments) Metrics(page []schema.Metric) []schema.Metric { return page }

// Run changes nothing.
func (p PrefixExperiments) Run(r schema.Run) (schema.Run, []string) { return r, nil }

func (p PrefixExperiments) String() string { return "prefix-experiments=" + string(p) }

// DropMetrics leaves out the metric keys matching any of its globs
// (path.Match syntax, where "*" does not cross "/": "system/*").
type DropMetrics []string

// Experiment changes nothing.
func (d DropMetrics) Experiment(e schema.Experiment) schema.Experiment { return e }

// Metrics filters page in place.
func (d DropMetrics) Metrics(page []schema.Metric) []schema.Metric {
	return slices.DeleteFunc(page, func(m schema.Metric) bool { return d.Match(m.Key) })
}

// Run changes nothing.
func (d DropMetrics) Run(r schema.Run) (schema.Run, []string) { return r, nil }

// Match reports whether key is dropped.
func (d DropMetrics) Match(key string) bool {
	for _, g := range d {
		if ok, _ := path.Match(g, key); ok {
			return true
		}
	}
	return false
}

func (d DropMetrics) String() string { return "drop-metrics=" + strings.Join(d, ",") }

// Parse is the inverse of Chain.String: it rebuilds the chain a sink
// recorded with a run ("" is the empty chain).
func Parse(s string) (Chain, error) {
	if s == "" {
		return nil, nil
	}
	var c Chain
	for _, part := range strings.Split(s, "|") {
		name, value, ok := strings.Cut(part, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("transform %q: want name=value", part)
		case name == "prefix-experiments":
			c = append(c, PrefixExperiments(value))
		case name == "drop-metrics":
			c = append(c, DropMetrics(strings.Split(value, ",")))
		case name == "drop-personal" && value == dropPersonalValue:
			c = append(c, DropPersonal{})
		case name == "drop-personal" && value == dropPersonalUserValue:
			c = append(c, DropPersonal{User: true})
		case name == "drop-personal" && value == dropPersonalFormerPaths:
			c = append(c, DropPersonal{former: formerPaths})
		case name == "drop-personal" && value == dropPersonalFormerHostMail:
			c = append(c, DropPersonal{former: formerHostEmail})
		default:
			return nil, fmt.Errorf("transform %q: unknown step %q", part, name)
		}
	}
	return c, nil
}

// fingerprintSep separates a run's source fingerprint from the transform
// a job applied to it, in the fingerprint a sink records.
const fingerprintSep = " +"

// Fingerprint returns the fingerprint a sink records for a run whose
// source fingerprint is fp, written through c: fp itself, less any
// transform an earlier hop recorded in it, then c's description. A later
// job without c (or with another chain) thus sees the run as changed.
func (c Chain) Fingerprint(fp string) string {
	fp, _, _ = strings.Cut(fp, fingerprintSep)
	if fp == "" || len(c) == 0 {
		return fp
	}
	return fp + fingerprintSep + c.String()
}

// SameFingerprint reports whether a run a sink recorded with fingerprint
// have is written as a job whose fingerprint for r (the run as the source
// holds it now) is want would write it: the fingerprints are equal, or
// differ only in that have's chain holds the former default drop-personal
// (DropPersonal with User) where want's holds the default one, and r has
// no user (Run.User) for the default to keep. A run with a user copied
// under the former default is thus written again, and gains its user.
func SameFingerprint(have, want string, r schema.Run) bool {
	if have == want {
		return true
	}
	if r.User != "" {
		return false
	}
	hfp, ht, ok1 := strings.Cut(have, fingerprintSep)
	wfp, wt, ok2 := strings.Cut(want, fingerprintSep)
	if !ok1 || !ok2 || hfp != wfp || hfp == "" {
		return false
	}
	hs, ws := strings.Split(ht, "|"), strings.Split(wt, "|")
	if len(hs) != len(ws) {
		return false
	}
	for i := range hs {
		if hs[i] != ws[i] && (hs[i] != "drop-personal="+dropPersonalUserValue || ws[i] != "drop-personal="+dropPersonalValue) {
			return false
		}
	}
	return true
}

// Recorded returns the transform recorded in a sink's fingerprint ("" for
// none).
func Recorded(fingerprint string) string {
	_, t, _ := strings.Cut(fingerprint, fingerprintSep)
	return t
}
