package main

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/transform"
)

// checkProgressEvery is how often check logs how many runs it has
// compared, so that a long check is not silent.
var checkProgressEvery = 5 * time.Second

// checkProgress logs check's progress: after a run when checkProgressEvery
// passed since the last line, and every checkProgressEvery while one run is
// being compared (a run of 600,000 points against MLflow takes minutes),
// so that a line comes at least that often whatever the runs' sizes.
type checkProgress struct {
	log   *slog.Logger
	every time.Duration

	mu                 sync.Mutex
	checked, differing int
	logged             time.Time
}

// runDone is check.Options.Progress: run was compared with diffs differences.
func (p *checkProgress) runDone(run string, diffs int) {
	p.log.Debug("checked", "run", run, "differences", diffs)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checked++
	p.differing += diffs
	p.logIfDue(time.Now())
}

// logIfDue logs a line when every has passed since the last; p.mu is held.
func (p *checkProgress) logIfDue(now time.Time) {
	if now.Sub(p.logged) >= p.every {
		p.logged = now
		p.log.Info("checking", "runs_checked", p.checked, "differences", p.differing)
	}
}

// tick logs a line every p.every while no run finishes, until the returned
// stop is called (which returns once no line is being logged). With every
// at zero or below, lines come after runs only.
func (p *checkProgress) tick() (stop func()) {
	if p.every <= 0 {
		return func() {}
	}
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(p.every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				p.mu.Lock()
				p.logIfDue(now)
				p.mu.Unlock()
			}
		}
	}()
	return func() { close(done); <-ended }
}

func (a *app) checkCmd() *cobra.Command {
	var (
		sel        selection
		reportPath string
		ignore     []string
		drop       []string
	)
	cmd := &cobra.Command{
		Use:   "check SRC DST",
		Short: "Prove that DST holds every run of SRC, point for point",
		Long: `Compare every selected experiment of SRC (name, description, tags, creation
time, deleted state) and every selected run with its counterpart in DST (found
by origin), as DST's own API shows them:
metadata, params, tags, and for every metric key the point count, first and
last step, min/max/last value and an order-independent digest of every
(step, time, value); console output and non-numeric values by count and
digest; files by path, size and SHA-256 of the bodies read back. A run held
twice in DST, or a run in a compared experiment of DST that SRC lacks, is a
difference too.

Prints each difference and exits 0 only when there is none (4 otherwise).
A run whose source data cannot be read (a damaged or missing file) is named
as "NOT COMPARED ...", counted, and the other runs are compared; with no
difference, the check then exits 3.
Differences that a known gap of SRC or DST explains (what one of them cannot
give: W&B's API, for one, gives times to the second and no system metrics,
where a run folder has them) are printed as "known (GAP): ...", counted
apart, and do not fail the check. While it works, a line on stderr says
every 5 seconds how many runs it has compared (not with -q).`,
		Example: `  runferry check wandb:./wandb parquet:./archive
  runferry check mlflow+http://127.0.0.1:5000 parquet:/backups/mlflow --include 'prod-*'`,
		Args: exactArgs(2, "SRC DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := sel.filter()
			if err != nil {
				return err
			}
			if err := checkReportPath(reportPath); err != nil {
				return err
			}
			ctx := cmd.Context()
			src, srcLoc, err := a.openSource(ctx, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			dst, dstLoc, err := a.openSide(ctx, args[1], "destination")
			if err != nil {
				return err
			}
			defer dst.Close()
			if err := proveSource(ctx, src, "source", srcLoc); err != nil {
				return err
			}
			if err := proveSource(ctx, dst, "destination", dstLoc); err != nil {
				return err
			}
			p := &checkProgress{log: a.log, every: checkProgressEvery, logged: time.Now()}
			stop := p.tick()
			res, err := check.Run(ctx, src, dst, check.Options{Filter: filter, IgnoreFields: ignore,
				Transform: dropTransform(drop), Progress: p.runDone})
			stop()
			if err != nil {
				return nameSide(err, srcLoc, dstLoc)
			}
			for _, m := range res.Warnings {
				fmt.Fprintf(a.stdout, "WARNING %s\n", m)
			}
			for _, d := range res.Differences {
				fmt.Fprintln(a.stdout, d.String())
			}
			for _, d := range res.NotCompared {
				fmt.Fprintf(a.stdout, "NOT COMPARED %s\n", d.String())
			}
			for _, d := range res.Known {
				fmt.Fprintf(a.stdout, "known (%s): %s\n", d.Gap, d.String())
			}
			damaged := map[string]bool{}
			for _, d := range res.SourceDamage {
				fmt.Fprintf(a.stdout, "damaged source %s\n", d.String())
				damaged[d.Run] = true
			}
			inherited := map[string]bool{}
			for _, d := range res.InheritedDamage {
				fmt.Fprintf(a.stdout, "inherited damage note %s\n", d.String())
				inherited[d.Run] = true
			}
			fmt.Fprintf(a.stdout, "checked %s, %s, %s", counted(res.Experiments, "experiment"), counted(res.Runs, "run"), counted(res.Points, "point"))
			if res.Models > 0 {
				fmt.Fprintf(a.stdout, ", %d registered models", res.Models)
			}
			if res.Traces > 0 {
				fmt.Fprintf(a.stdout, ", %s", counted(res.Traces, "trace"))
			}
			fmt.Fprintf(a.stdout, ": %d match, %s", res.Matching, counted(len(res.Differences), "difference"))
			if len(res.NotCompared) > 0 {
				fmt.Fprintf(a.stdout, ", %s not compared (could not be read, see above)", counted(len(res.NotCompared), "run"))
			}
			if len(res.Known) > 0 {
				gaps := map[string]bool{}
				for _, d := range res.Known {
					gaps[d.Gap] = true
				}
				fmt.Fprintf(a.stdout, ", %s (%s: what one side cannot give, see above)", counted(len(res.Known), "known difference"), counted(len(gaps), "kind"))
			}
			if len(damaged) > 0 {
				fmt.Fprintf(a.stdout, ", %s read from damaged source data (compared what was readable, see above)", counted(len(damaged), "run"))
			}
			if len(inherited) > 0 {
				fmt.Fprintf(a.stdout, ", %s with inherited damage notes (see above: found by an earlier copy, carried whole)", counted(len(inherited), "run"))
			}
			fmt.Fprintln(a.stdout)
			if reportPath != "" {
				if err := writeJSON(reportPath, res, a.secretValues(args)); err != nil {
					return fmt.Errorf("writing report %s: %w", reportPath, err)
				}
			}
			switch {
			case len(res.Differences) > 0:
				a.exit = exitDifferences
			case len(res.NotCompared) > 0:
				a.exit = exitRunsFailed
			}
			return nil
		},
	}
	sel.register(cmd)
	cmd.Flags().StringVar(&reportPath, "report", "", "write the differences as JSON to this file")
	cmd.Flags().StringSliceVar(&ignore, "ignore-field", nil, "run field not compared (e.g. Labels), for destinations that cannot hold it")
	cmd.Flags().StringSliceVar(&drop, "drop-metrics", nil, "metric keys the copy left out with the same flag: not expected in DST (repeatable)")
	return cmd
}

// dropTransform is the transform of --drop-metrics globs (nil for none).
func dropTransform(globs []string) transform.Chain {
	if len(globs) == 0 {
		return nil
	}
	return transform.Chain{transform.DropMetrics(globs)}
}

// nameSide returns err, an error of check.Run, with the location of the
// side it is about (redacted, as Location.String gives it) when its text
// names the side alone ("destination: mlflow: cannot connect ..." becomes
// "destination mlflow+http://HOST: mlflow: cannot connect ...", as copy
// says it); the error chain is kept. Other errors are returned as they are.
func nameSide(err error, src, dst location.Location) error {
	msg := err.Error()
	for _, side := range []struct {
		name string
		loc  location.Location
	}{{"source", src}, {"destination", dst}} {
		if rest, ok := strings.CutPrefix(msg, side.name+": "); ok {
			return sideError{msg: fmt.Sprintf("%s %s: %s", side.name, side.loc, rest), err: err}
		}
	}
	return err
}

// sideError is an error whose text names the location of the side it is
// about; it unwraps to the error it was made from.
type sideError struct {
	msg string
	err error
}

func (e sideError) Error() string { return e.msg }
func (e sideError) Unwrap() error { return e.err }
