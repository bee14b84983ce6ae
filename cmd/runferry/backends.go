package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/internal/location"
)

func (a *app) backendsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "backends",
		Short: "List every location scheme, as source and as destination, with its options",
		Long: `List every adapter runferry has: its location syntax, whether it reads (source)
or writes (destination), what it does, and its options. Options go in the
location's query (?name=value) or in the environment variable shown; secrets
only ever in the environment.`,
		Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			writeBackends(a.stdout, a.sources.All(), a.sinks.All())
		},
	}
}

// writeBackends renders the registries; README's locations table is made
// from the same descriptions.
func writeBackends(w io.Writer, srcs, dsts []location.Description) {
	type entry struct {
		d        location.Description
		src, dst bool
	}
	var order []string
	byScheme := map[string]*entry{}
	add := func(d location.Description, src bool) {
		e, ok := byScheme[d.Scheme]
		if !ok {
			e = &entry{d: d}
			byScheme[d.Scheme] = e
			order = append(order, d.Scheme)
		}
		if src {
			e.src = true
		} else {
			e.dst = true
			for _, o := range d.Options {
				i := slices.IndexFunc(e.d.Options, func(have location.Option) bool { return have.Name == o.Name })
				switch {
				case i < 0:
					e.d.Options = append(e.d.Options, o)
				case e.d.Options[i].Help != o.Help:
					// Same option, another meaning when writing.
					o.Name += " (destination)"
					e.d.Options = append(e.d.Options, o)
				}
			}
		}
	}
	for _, d := range srcs {
		add(d, true)
	}
	for _, d := range dsts {
		add(d, false)
	}
	if len(order) == 0 {
		fmt.Fprintln(w, "no adapters are built in")
		return
	}
	for i, s := range order {
		e := byScheme[s]
		roles := []string{}
		if e.src {
			roles = append(roles, "source")
		}
		if e.dst {
			roles = append(roles, "destination")
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s  (%s)\n", e.d.Syntax, strings.Join(roles, ", "))
		if len(e.d.Aliases) > 0 {
			fmt.Fprintf(w, "  also: %s\n", strings.Join(e.d.Aliases, ", "))
		}
		fmt.Fprintf(w, "  %s\n", e.d.Summary)
		for _, line := range strings.Split(strings.TrimSpace(e.d.Help), "\n") {
			if line != "" {
				fmt.Fprintf(w, "  %s\n", line)
			}
		}
		if len(e.d.Options) > 0 {
			fmt.Fprintln(w, "  options:")
			for _, o := range e.d.Options {
				name := o.Name
				if o.EnvVar != "" {
					name += " (env " + o.EnvVar + ")"
				}
				if o.Default != "" {
					name += " [default " + o.Default + "]"
				}
				if o.Secret {
					name += " [secret: environment only, refused in the location]"
				}
				fmt.Fprintf(w, "    %-44s %s\n", name, o.Help)
			}
		}
		if e.d.Example != "" {
			fmt.Fprintf(w, "  example: %s\n", e.d.Example)
		}
	}
}
