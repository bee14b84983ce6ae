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

// Factories returns every factory in the order added, for tests that go
// over every adapter.
func (r *Registry[T]) Factories() []Factory[T] {
	out := make([]Factory[T], len(r.order))
	for i, f := range r.order {
		out[i] = *f
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
// a misspelt option is an error rather than silently ignored, and secrets
// given in the location (see CheckSecrets).
func checkOptions(loc Location, d Description) error {
	if loc.URL == nil {
		return nil
	}
	if err := CheckSecrets(loc, d); err != nil {
		return err
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
			if env := SecretEnvVars([]Description{d}); secretKey.MatchString(name) && len(env) > 0 {
				return fmt.Errorf("%s: unknown option %q (secrets are read only from the environment: %s; see 'runferry backends')",
					where, name, strings.Join(env, ", "))
			}
			if len(known) == 0 {
				return fmt.Errorf("%s: unknown option %q (%s takes no options)", where, name, d.Syntax)
			}
			return fmt.Errorf("%s: unknown option %q (%s takes %s; see 'runferry backends')", where, name, d.Syntax, strings.Join(known, ", "))
		}
	}
	return nil
}

// CheckSecrets refuses a secret given in the location itself: a password in
// a URL's user info, or a query option the adapter declares Secret. A
// location is typed on command lines, where shell history and process lists
// keep it, so secrets come only from the environment; the error names the
// variable to use and never shows the secret.
func CheckSecrets(loc Location, d Description) error {
	if loc.URL == nil {
		return nil
	}
	where, _, _ := strings.Cut(loc.String(), "?")
	if loc.URL.User != nil {
		if _, ok := loc.URL.User.Password(); ok {
			if o, ok := d.Option("password"); ok && o.EnvVar != "" {
				return fmt.Errorf("%s: a password in the location is refused: secrets are read only from the environment: set %s (the user may stay in the location)",
					where, o.EnvVar)
			}
			return fmt.Errorf("%s: a password in the location is refused: secrets are read only from the environment (see 'runferry backends')", where)
		}
	}
	names := make([]string, 0, len(loc.URL.Query()))
	for name := range loc.URL.Query() {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if o, ok := d.Option(name); ok && o.Secret {
			if o.EnvVar == "" {
				return fmt.Errorf("%s: option %q is a secret and is refused in the location", where, name)
			}
			return fmt.Errorf("%s: option %q is a secret and is refused in the location (it would stay in shell history and process lists): set %s in the environment instead",
				where, name, o.EnvVar)
		}
	}
	return nil
}

// SecretEnvVars returns, sorted and without repeats, the environment
// variables that the options of descs declare secret: the values runferry
// must never print.
func SecretEnvVars(descs []Description) []string {
	var out []string
	for _, d := range descs {
		for _, o := range d.Options {
			if o.Secret && o.EnvVar != "" && !slices.Contains(out, o.EnvVar) {
				out = append(out, o.EnvVar)
			}
		}
	}
	sort.Strings(out)
	return out
}
