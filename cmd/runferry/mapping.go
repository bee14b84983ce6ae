package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/sources/sqldb"
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
				fmt.Fprintf(a.stdout, "%s in the mapping of %s\n", counted(len(problems), "problem"), loc)
				a.exit = exitDifferences
				return nil
			}
			fmt.Fprintf(a.stdout, "the mapping of %s reads the database: no problem found\n", loc)
			return nil
		},
	}
	var out string
	generate := &cobra.Command{
		Use:   "generate LOCATION",
		Short: "Write a starting mapping file from the database's tables",
		Long: `Read the catalogue of the database at LOCATION (information_schema on PostgreSQL
and MySQL/MariaDB, SQLite's own) and write a starting mapping file for it: the runs
table (runs, run, or a name ending in _runs), an experiments or projects table the
runs point to, and the tables holding a run_id column taken for params, tags,
metrics, logs, artifacts or rich values (media, image, ...) by their names; each
field's column is picked by common names (started_at, updated_at as the cursor, ...),
the distinct values of the status column are mapped by their words, and numeric time
columns get time: auto. What it could not decide is printed on stderr and written as
comments. Review the file, then run 'runferry mapping check'. docs/SQL-MAPPING.md
shows what it writes for the example.`,
		Example: `  runferry mapping generate sqlite:./tracking.db -o mapping.yaml
  PGPASSWORD=... runferry mapping generate postgres://me@db/tracking > mapping.yaml`,
		Args: exactArgs(1, "LOCATION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			loc, err := a.sources.Parse(args[0])
			if err != nil {
				return usageError{fmt.Errorf("source %w", err)}
			}
			switch loc.Scheme {
			case "postgres", "postgresql", "mysql", "sqlite":
			default:
				return usageError{fmt.Errorf("%s: mapping generate reads postgres://, mysql:// and sqlite: databases", loc)}
			}
			if loc.Query("mapping") != "" {
				return usageError{fmt.Errorf("%s: give the database without ?mapping=", loc)}
			}
			m, notes, err := sqldb.GenerateMapping(cmd.Context(), loc)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintf(a.stderr, "note: %s\n", n)
			}
			if out == "" || out == "-" {
				_, err = io.WriteString(a.stdout, m)
				return err
			}
			if err := os.WriteFile(out, []byte(m), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "wrote %s: check it with runferry mapping check '%s?mapping=%s'\n", out, loc, out)
			return nil
		},
	}
	generate.Flags().StringVarP(&out, "output", "o", "", "write the mapping to this file instead of stdout")
	cmd.AddCommand(check, generate)
	return cmd
}
