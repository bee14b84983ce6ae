package transfer

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runferry/runferry/schema"
)

// Filter selects what a job transfers. The zero Filter selects everything.
//
// A Filter made with Track remembers which of its patterns matched
// something, so that a pattern matching nothing can be named (Unmatched)
// instead of silently selecting less than the user meant.
type Filter struct {
	// Include and Exclude are experiment name globs (path.Match). A glob
	// matches the experiment's name or its origin id; for a W&B
	// experiment, named "entity/project", it also matches the project
	// alone, and for an MLflow experiment (origin id HOST[:PORT]/ID) the
	// server's experiment id alone. Empty Include means all.
	Include []string
	Exclude []string
	// RunIDs are run ids: the origin as `ls` prints it ("wandb:ent/proj/abc"),
	// the origin id ("ent/proj/abc"), or its last path element ("abc").
	// Empty means all.
	RunIDs []string
	Since  time.Time // runs that started at or after
	Until  time.Time // runs that started before

	seen *filterSeen // nil unless tracked
}

// filterSeen records what a tracked filter's patterns matched.
type filterSeen struct {
	mu      sync.Mutex
	include map[string]bool
	exclude map[string]bool
	runIDs  map[string]bool
	runs    int // runs that passed every run condition
}

// Track returns a copy of f that records which patterns match, for
// Unmatched. Copies of the returned Filter share the record.
func (f Filter) Track() Filter {
	f.seen = &filterSeen{include: map[string]bool{}, exclude: map[string]bool{}, runIDs: map[string]bool{}}
	return f
}

// Experiment reports whether the filter selects the experiment.
func (f Filter) Experiment(e schema.Experiment) bool {
	names := []string{e.Name, e.Origin.ID}
	if e.Origin.System == "wandb" {
		if _, project, ok := strings.Cut(e.Name, "/"); ok {
			names = append(names, project)
		}
	}
	if e.Origin.System == "mlflow" {
		if i := strings.LastIndexByte(e.Origin.ID, '/'); i >= 0 {
			names = append(names, e.Origin.ID[i+1:])
		}
	}
	matches := func(globs []string, record map[string]bool) bool {
		hit := false
		for _, g := range globs {
			if slices.ContainsFunc(names, func(n string) bool {
				ok, _ := path.Match(g, n)
				return ok || g == n
			}) {
				hit = true
				f.record(record, g)
			}
		}
		return hit
	}
	var inc, exc map[string]bool
	if f.seen != nil {
		inc, exc = f.seen.include, f.seen.exclude
	}
	if len(f.Include) > 0 && !matches(f.Include, inc) {
		return false
	}
	return !matches(f.Exclude, exc)
}

// Run reports whether the filter selects the run.
func (f Filter) Run(r schema.Run) bool {
	if len(f.RunIDs) > 0 {
		origin := r.Origin.String()
		hit := false
		for _, id := range f.RunIDs {
			if id == origin || id == r.Origin.ID || strings.HasSuffix(r.Origin.ID, "/"+id) {
				hit = true
				if f.seen != nil {
					f.record(f.seen.runIDs, id)
				}
			}
		}
		if !hit {
			return false
		}
	}
	if !f.Since.IsZero() && r.Start.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && !r.Start.Before(f.Until) {
		return false
	}
	if f.seen != nil {
		f.seen.mu.Lock()
		f.seen.runs++
		f.seen.mu.Unlock()
	}
	return true
}

func (f Filter) record(m map[string]bool, pattern string) {
	if m == nil {
		return
	}
	f.seen.mu.Lock()
	m[pattern] = true
	f.seen.mu.Unlock()
}

// Unmatched names, one message each, the patterns of a tracked filter that
// matched nothing so far: an --include or --exclude glob that matched no
// experiment, a --run id that matched no run, and a --since/--until window
// that left no run. It returns nil for an untracked filter.
func (f Filter) Unmatched() []string {
	if f.seen == nil {
		return nil
	}
	f.seen.mu.Lock()
	defer f.seen.mu.Unlock()
	var out []string
	for _, g := range f.Include {
		if !f.seen.include[g] {
			out = append(out, fmt.Sprintf("--include %q matched no experiment", g))
		}
	}
	for _, g := range f.Exclude {
		if !f.seen.exclude[g] {
			out = append(out, fmt.Sprintf("--exclude %q matched no experiment", g))
		}
	}
	for _, id := range f.RunIDs {
		if !f.seen.runIDs[id] {
			out = append(out, fmt.Sprintf("--run %q matched no run", id))
		}
	}
	if f.seen.runs == 0 && (!f.Since.IsZero() || !f.Until.IsZero()) {
		out = append(out, "no run started within --since/--until")
	}
	return out
}
