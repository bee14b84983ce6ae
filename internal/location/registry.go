package location

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Factory opens one kind of adapter (a source or a sink, T) from a location.
type Factory[T any] struct {
	Description
	Open func(ctx context.Context, loc Location) (T, error)
}

// Registry maps schemes to factories. Adapters are added explicitly (see
// sources/all and sinks/all), never by init side effects.
type Registry[T any] struct {
	byScheme map[string]*Factory[T]
	order    []*Factory[T]
}

// Add registers f under all of its schemes. Adding a scheme twice panics:
// it is a programming error.
func (r *Registry[T]) Add(f Factory[T]) {
	if r.byScheme == nil {
		r.byScheme = map[string]*Factory[T]{}
	}
	fp := &f
	for _, s := range f.Schemes() {
		if _, dup := r.byScheme[s]; dup {
			panic("location: scheme registered twice: " + s)
		}
		r.byScheme[s] = fp
	}
	r.order = append(r.order, fp)
	sort.SliceStable(r.order, func(i, j int) bool { return r.order[i].Scheme < r.order[j].Scheme })
}

// All returns the factories sorted by primary scheme.
func (r *Registry[T]) All() []Description {
	out := make([]Description, len(r.order))
	for i, f := range r.order {
		out[i] = f.Description
	}
	return out
}

// Kind reports how the scheme's locations are read, and whether any
// adapter serves it.
func (r *Registry[T]) Kind(scheme string) (Kind, bool) {
	f, ok := r.byScheme[scheme]
	if !ok {
		return 0, false
	}
	return f.Description.Kind, true
}

// Parse parses raw against the registered schemes and refuses options the
// scheme's adapter does not declare.
func (r *Registry[T]) Parse(raw string) (Location, error) {
	loc, err := Parse(raw, r.Kind)
	if err != nil {
		return loc, err
	}
	return loc, checkOptions(loc, r.byScheme[loc.Scheme].Description)
}

// Open parses raw and opens the adapter for its scheme. Errors name the
// location in its redacted form only.
func (r *Registry[T]) Open(ctx context.Context, raw string) (T, Location, error) {
	var zero T
	loc, err := r.Parse(raw)
	if err != nil {
		return zero, loc, err
	}
	v, err := r.byScheme[loc.Scheme].Open(ctx, loc)
	if err != nil {
		return zero, loc, fmt.Errorf("%s: %w", loc, err)
	}
	return v, loc, nil
}

// checkOptions refuses query options the adapter does not declare, so that
// a misspelt option is an error rather than silently ignored.
func checkOptions(loc Location, d Description) error {
	if loc.URL == nil {
		return nil
	}
	known := make([]string, len(d.Options))
	for i, o := range d.Options {
		known[i] = o.Name
	}
	names := make([]string, 0, len(loc.URL.Query()))
	for name := range loc.URL.Query() {
		names = append(names, name)
	}
	sort.Strings(names)
	// The values of an unknown option are not shown: a misspelt secret
	// option would not be recognised as secret by Redact.
	where, _, _ := strings.Cut(loc.String(), "?")
	for _, name := range names {
		if !slices.Contains(known, name) {
			if len(known) == 0 {
				return fmt.Errorf("%s: unknown option %q (%s takes no options)", where, name, d.Syntax)
			}
			return fmt.Errorf("%s: unknown option %q (%s takes %s; see 'runferry backends')", where, name, d.Syntax, strings.Join(known, ", "))
		}
	}
	return nil
}
