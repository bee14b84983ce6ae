package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/sqldb"
)

// runListing is one row of `runferry ls`.
type runListing struct {
	Experiment string `json:"experiment"`
	Origin     string `json:"origin"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Start      string `json:"start,omitempty"`
	// Params is nil (null in --json) where the listing read light run
	// headers (W&B folders without --count), which leave out the config.
	Params *int `json:"params"`
	// MetricKeys and Points are nil (null in --json) unless counted
	// (--count): a light listing does not know them. Without --count, a
	// runferry SQL database's Points is the count it stores (runs.points);
	// MetricKeys stays nil.
	MetricKeys *int   `json:"metric_keys"`
	Points     *int64 `json:"points"`
	Damage     int    `json:"damage,omitempty"`
}

func (a *app) lsCmd() *cobra.Command {
	var (
		sel     selection
		asJSON  bool
		noCount bool
		count   bool
		byExp   bool
		byRun   bool
	)
	cmd := &cobra.Command{
		Use:   "ls LOCATION",
		Short: "List the experiments and runs at a location (--count: with point counts)",
		Long: `List the experiments and runs a location holds: name, status, start and
number of params of each run (for a W&B run, its config keys, flattened
as MLflow gets them). The listing reads metadata only, as a file
lister does: from an MLflow server the runs/search pages (plus one file read
per run runferry wrote), and where the location can describe a run without
reading its logs (W&B folders: the run record at the start of each log,
the log's last blocks, and wandb-metadata.json where those lack the run's
name or start) no more than that: a run is
then flagged damaged only for damage found in those reads (such as a
truncated end), not for damage further inside its logs.

--count also counts the metric keys and metric points of each run, exactly:
it reads every run's history (from an MLflow server one request per metric
key of every run, from W&B folders every log decoded in full), which takes
about as long as reading the runs for a copy. The counts are not taken from
a run's summary: a W&B summary holds each key's last value and the last
step, not how many points were logged (keys logged at different steps,
system metrics and resumed runs make any estimate from it wrong). Without
--count the KEYS and POINTS columns show "-" (in --json, null), and so does
PARAMS where the light headers leave out the config (W&B folders: --count
reads it). --no-count, the listing
without counts, is the default (the flag is kept for scripts). What the
location holds but could not be read (an unreadable folder, a run folder
without a log) is named on stderr, and the exit code is then 3.

--experiments lists the experiments instead, each with its number of runs
(with --run/--since/--until: of selected runs). A location naming a whole W&B
entity (wandb+https://HOST/ENTITY) is listed so by default, its projects with
the run counts the server keeps; --runs lists its runs.`,
		Example: `  runferry ls wandb:./wandb
  runferry ls parquet:./archive --json
  runferry ls --count wandb:./wandb
  runferry ls wandb+https://api.wandb.ai/acme`,
		Args: exactArgs(1, "LOCATION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := sel.filter()
			if err != nil {
				return err
			}
			if count && noCount {
				return usageError{fmt.Errorf("--count and --no-count exclude each other")}
			}
			noCount = !count
			filter = filter.Track()
			ctx := cmd.Context()
			src, loc, err := a.openSource(ctx, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			if err := proveSource(ctx, src, "source", loc); err != nil {
				return err
			}
			if byExp && byRun {
				return usageError{fmt.Errorf("--experiments and --runs exclude each other")}
			}
			if rc, ok := src.(sources.RunCounter); byExp || (ok && rc.ListsExperiments() && !byRun) {
				return a.lsExperiments(ctx, src, filter, asJSON)
			}
			var rows []runListing
			exps := 0
			for e, err := range src.Experiments(ctx) {
				if err != nil {
					return err
				}
				if !filter.Experiment(e) {
					continue
				}
				exps++
				runs := src.Runs(ctx, e.Origin)
				light := false
				if rf, ok := src.(sources.RunFilterer); ok && (len(filter.RunIDs) > 0 || !filter.Since.IsZero() || !filter.Until.IsZero()) {
					// --run/--since/--until asked of the server (W&B's run
					// filters), as copy asks; filter.Run still decides.
					runs = rf.FilteredRuns(ctx, e.Origin, sources.RunFilter{RunIDs: filter.RunIDs, Since: filter.Since, Until: filter.Until})
				} else if hl, ok := src.(sources.HeaderLister); ok && noCount {
					runs, light = hl.RunHeaders(ctx, e.Origin), true
				}
				for r, err := range runs {
					if err != nil {
						return err
					}
					if !filter.Run(r) {
						continue
					}
					row, err := listRun(ctx, src, e, r, !noCount, light)
					if err != nil {
						return err
					}
					rows = append(rows, row)
				}
			}
			for _, m := range filter.Unmatched() {
				fmt.Fprintf(a.stderr, "runferry: warning: %s\n", m)
			}
			if pr, ok := src.(sources.ProblemReporter); ok {
				for _, p := range pr.Problems(ctx) {
					fmt.Fprintf(a.stderr, "PROBLEM source: %s\n", p)
					a.exit = exitRunsFailed
				}
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EXPERIMENT\tRUN\tNAME\tSTATUS\tSTART\tPARAMS\tKEYS\tPOINTS")
			var points int64
			allStored := len(rows) > 0
			for _, r := range rows {
				pts, keys, params := "-", "-", "-"
				if r.Params != nil {
					params = fmt.Sprint(*r.Params)
				}
				if r.Points != nil {
					pts = fmt.Sprint(*r.Points)
					points += *r.Points
				} else {
					allStored = false
				}
				if r.MetricKeys != nil {
					keys = fmt.Sprint(*r.MetricKeys)
				}
				status := r.Status
				if r.Damage > 0 {
					status += " (damaged)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Experiment, r.Origin, trim(r.Name, 32), status, r.Start, params, keys, pts)
			}
			tw.Flush()
			if noCount && allStored {
				fmt.Fprintf(a.stdout, "%s, %s, %s as stored (metric keys not counted: --count counts them)\n", counted(exps, "experiment"), counted(len(rows), "run"), counted(points, "point"))
			} else if noCount {
				fmt.Fprintf(a.stdout, "%s, %s (points not counted: --count counts them)\n", counted(exps, "experiment"), counted(len(rows), "run"))
			} else {
				fmt.Fprintf(a.stdout, "%s, %s, %s\n", counted(exps, "experiment"), counted(len(rows), "run"), counted(points, "point"))
			}
			return nil
		},
	}
	sel.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the listing as JSON")
	cmd.Flags().BoolVar(&count, "count", false, "count each run's metric keys and points exactly (reads every history in full)")
	cmd.Flags().BoolVar(&noCount, "no-count", false, "list without counts (the default; kept for scripts)")
	cmd.Flags().BoolVar(&byExp, "experiments", false, "list the experiments with their run counts")
	cmd.Flags().BoolVar(&byRun, "runs", false, "list runs even where experiments are listed by default (a W&B entity)")
	return cmd
}

// paramCount is the number of a run's params, counting the keys of its
// config (a W&B run's params, flattened as MLflow gets them) not among its
// explicit params.
func paramCount(r schema.Run) int {
	n := len(r.Params)
	flat, err := mlflowconv.FlattenConfig(r.Config)
	if err != nil {
		return n
	}
	for _, p := range flat {
		if _, found := slices.BinarySearchFunc(r.Params, p.Key, func(q schema.Param, k string) int { return strings.Compare(q.Key, k) }); !found {
			n++
		}
	}
	return n
}

// listRun describes one run, counting its history when count is set. r
// is a light header when light is set: its params are then not known.
func listRun(ctx context.Context, src sources.Source, e schema.Experiment, r schema.Run, count, light bool) (runListing, error) {
	row := runListing{Experiment: e.Name, Origin: r.Origin.String(), Name: r.Name, Status: string(r.Status),
		Damage: len(r.Damage)}
	if !light {
		n := paramCount(r)
		row.Params = &n
	}
	if !r.Start.IsZero() {
		row.Start = r.Start.Format("2006-01-02 15:04")
	}
	if !count {
		// Only a runferry SQL database: the count in its runs row is the
		// one the copy committed with the run's metrics.
		if db, ok := src.(*sqldb.Source); ok {
			if points, _, ok := db.Size(ctx, r); ok {
				row.Points = &points
			}
		}
		return row, nil
	}
	keys := map[string]struct{}{}
	var points int64
	for page, err := range src.Metrics(ctx, r.Origin) {
		if err != nil {
			return row, fmt.Errorf("run %s: %w", r.Origin, err)
		}
		points += int64(len(page))
		for _, m := range page {
			keys[m.Key] = struct{}{}
		}
	}
	nkeys := len(keys)
	row.Points, row.MetricKeys = &points, &nkeys
	return row, nil
}

// experimentListing is one row of `runferry ls --experiments`.
type experimentListing struct {
	Experiment string `json:"experiment"`
	Origin     string `json:"origin"`
	Created    string `json:"created,omitempty"`
	Runs       int64  `json:"runs"`
}

// lsExperiments lists the experiments filter selects with their run
// counts: the source's own count (sources.RunCounter) when it has one,
// else the runs listed and selected.
func (a *app) lsExperiments(ctx context.Context, src sources.Source, filter transfer.Filter, asJSON bool) error {
	rc, _ := src.(sources.RunCounter)
	rf := sources.RunFilter{RunIDs: filter.RunIDs, Since: filter.Since, Until: filter.Until}
	var rows []experimentListing
	var total int64
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			return err
		}
		if !filter.Experiment(e) {
			continue
		}
		row := experimentListing{Experiment: e.Name, Origin: e.Origin.String()}
		if !e.CreatedAt.IsZero() {
			row.Created = e.CreatedAt.Format("2006-01-02 15:04")
		}
		if rc != nil {
			n, err := rc.RunCount(ctx, e.Origin, rf)
			if err != nil {
				return fmt.Errorf("experiment %s: counting runs: %w", e.Origin, err)
			}
			row.Runs = n
		} else {
			for r, err := range src.Runs(ctx, e.Origin) {
				if err != nil {
					return fmt.Errorf("experiment %s: listing runs: %w", e.Origin, err)
				}
				if filter.Run(r) {
					row.Runs++
				}
			}
		}
		total += row.Runs
		rows = append(rows, row)
	}
	for _, m := range filter.Unmatched() {
		// Runs counted by the source are not seen one by one: only the
		// experiment globs can be said to have matched nothing.
		if rc == nil || strings.HasPrefix(m, "--include") || strings.HasPrefix(m, "--exclude") {
			fmt.Fprintf(a.stderr, "runferry: warning: %s\n", m)
		}
	}
	if pr, ok := src.(sources.ProblemReporter); ok {
		for _, p := range pr.Problems(ctx) {
			fmt.Fprintf(a.stderr, "PROBLEM source: %s\n", p)
			a.exit = exitRunsFailed
		}
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if rows == nil {
			rows = []experimentListing{}
		}
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EXPERIMENT\tORIGIN\tCREATED\tRUNS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", r.Experiment, r.Origin, r.Created, r.Runs)
	}
	tw.Flush()
	fmt.Fprintf(a.stdout, "%s, %s\n", counted(len(rows), "experiment"), counted(total, "run"))
	return nil
}
