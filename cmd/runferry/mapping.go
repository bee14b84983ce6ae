package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
)

// mappingChecker is a source read through a mapping file that can check
// the mapping against the live database (sources/sqldb.MappedSource).
type mappingChecker interface {
	CheckMapping(ctx context.Context) []string
}

func (a *app) mappingCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mapping",
		Short: "Work with mapping files that read databases of your own design",
	}
	check := &cobra.Command{
		Use:   "check LOCATION",
		Short: "Check a mapping file against the live database",
		Long: `Check the mapping file a SQL location names (?mapping=FILE, docs/SQL-MAPPING.md)
against the live database: every query runs (limited to one row; queries taking
:experiment or :run get the first experiment or run found), every mapped column
must be in its result with a type that fits its field, and the row read must
convert. Each problem is printed on its own line, naming the mapping entry, the
column and the type found; the exit code is then 4. A mapping file that does not
parse, or misses what every mapping needs, is an error (exit 1).`,
		Example: `  runferry mapping check 'sqlite:./tracking.db?mapping=mapping.yaml'
  PGPASSWORD=... runferry mapping check 'postgres://me@db/tracking?mapping=mapping.yaml'`,
		Args: exactArgs(1, "LOCATION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, loc, err := a.openSource(ctx, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			mc, ok := src.(mappingChecker)
			if !ok {
				return usageError{fmt.Errorf("%s names no mapping file: add ?mapping=FILE to a postgres://, mysql:// or sqlite: location", loc)}
			}
			problems := mc.CheckMapping(ctx)
			for _, p := range problems {
				fmt.Fprintln(a.stdout, p)
			}
			if len(problems) > 0 {
				fmt.Fprintf(a.stdout, "%d problems in the mapping of %s\n", len(problems), loc)
				a.exit = exitDifferences
				return nil
			}
			fmt.Fprintf(a.stdout, "the mapping of %s reads the database: no problem found\n", loc)
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}
