package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/transform"
)

// selection holds the flags that choose what a job covers.
type selection struct {
	include, exclude, runs []string
	since, until           string
}

func (s *selection) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringSliceVar(&s.include, "include", nil, "only experiments whose name matches this glob; a W&B project matches as entity/project or as project (repeatable; a glob matching nothing is warned about)")
	f.StringSliceVar(&s.exclude, "exclude", nil, "leave out experiments/projects whose name matches this glob (repeatable)")
	f.StringSliceVar(&s.runs, "run", nil, "only these runs: the RUN column of 'ls' (wandb:ent/proj/abc12), the id, or its last part (repeatable, or comma-separated)")
	f.StringVar(&s.since, "since", "", "only runs started at or after this time (RFC 3339 or YYYY-MM-DD)")
	f.StringVar(&s.until, "until", "", "only runs started before this time (RFC 3339 or YYYY-MM-DD)")
}

func (s *selection) filter() (transfer.Filter, error) {
	f := transfer.Filter{Include: s.include, Exclude: s.exclude, RunIDs: s.runs}
	for _, g := range append(append([]string{}, s.include...), s.exclude...) {
		if _, err := filepath.Match(g, ""); err != nil {
			return f, usageError{fmt.Errorf("bad glob %q: %v", g, err)}
		}
	}
	var err error
	if f.Since, err = parseTime("--since", s.since); err != nil {
		return f, err
	}
	if f.Until, err = parseTime("--until", s.until); err != nil {
		return f, err
	}
	return f, nil
}

// canonical renders the selection for the ledger's job key: two jobs with
// different selections keep separate state.
func (s *selection) canonical() string {
	parts := []string{
		"include=" + strings.Join(sorted(s.include), ","),
		"exclude=" + strings.Join(sorted(s.exclude), ","),
		"run=" + strings.Join(sorted(s.runs), ","),
		"since=" + s.since, "until=" + s.until,
	}
	return strings.Join(parts, ";")
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

func parseTime(flag, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, usageError{fmt.Errorf("%s %q: want RFC 3339 (2024-05-01T12:00:00Z) or a date (2024-05-01)", flag, v)}
}

func (a *app) copyCmd(verb string) *cobra.Command {
	var (
		sel         selection
		concurrency int
		retries     int
		dryRun      bool
		reportPath  string
		statePath   string
		restart     bool
		force       bool
		lookback    time.Duration
		propagate   bool
		noState     bool
		prefix      string
		drop        []string
		personal    bool
		dropUser    bool
		shardFlag   string
		withDeleted bool
		acceptGaps  bool
		allowSame   bool
	)
	short := "Copy runs from SRC to DST, skipping what DST already holds"
	long := `Copy every selected run from SRC to DST: metadata, params, tags, the full metric
history, non-numeric history values, console output and files.

Re-running is always safe: runs already committed with the same content are
skipped (the resume ledger and the destination's own origin markers both say
so), runs left incomplete by an interrupted copy are resumed without
duplicates, and runs whose source changed are written again.

--force also compares every run the fingerprints call unchanged with its copy
in DST in full, as 'check' does (metadata, params, tags, every metric key's
count and digest, console output, files by SHA-256): a run that differs is
written again ("repairing: ..." in the report), one that matches is reported
as verified, not copied. It reads every such run on both sides.`
	if verb == "sync" {
		short = "Bring DST up to date with SRC (incremental copy, for nightly backups)"
		long = `Bring DST up to date with SRC: new runs and runs whose content changed since
the last sync are written; unchanged runs cost only a look-up. Nothing is
deleted from DST unless --propagate-deletes (below). 'sync' is 'copy' under
the name nightly jobs use.

Whether a run changed is told by a cheap fingerprint taken before the run is
read (W&B folders: file sizes and times; the W&B cloud: the run listing's
name, state, heartbeat, config, summary, tags, notes and history,
system-metrics, console and file counts, so a file replaced under its name
is not seen; MLflow: status, end time, tags, params, each metric key's
latest point and the file listing; archives: the recorded fingerprint).
--restart and --no-state forget the ledger, but a run DST holds with the
same fingerprint is still unchanged. --force compares
every such run in full with DST, as 'check' does, and writes again only the
runs that differ (repair after DST was edited or damaged); the others are
reported as verified. A Parquet archive's file bodies are checked by size at
each sync (a run whose body went missing or changed size is written again);
parquet:PATH?verify=sha256 also hashes them, else a change of the same size
is found only by 'check' and 'archive check'.

--lookback DURATION covers what a fingerprint can miss near the previous
sync: a write within the same tick of a coarse file-system clock, or a
writer whose clock is behind the source's. A run whose change time is at
or after the previous sync's start minus DURATION is compared in full with
DST, as --force compares every run, even when its fingerprint is
unchanged; it is written again if it differs and reported as verified if
not. The change time is what the source's own clock says: for W&B folders
the latest modification time of the run's logs and files (or the latest
timestamp at the end of its log, if later); for MLflow the latest of the
run's start, end and each metric key's latest timestamp; for other sources
the run's start and end. A run whose change time is unknown is compared.
The previous sync's start is the start of the last job with the same
SRC, DST and options, as the ledger recorded it (finished or not); with
no such job (the first sync, --restart) no run is compared. Runs older
than the window cost a look-up as before. --lookback needs the ledger
(not with --no-state); --force compares every run whatever --lookback.

Runs deleted at the source (committed by an earlier sync of the same SRC,
DST and options, as the ledger records, and no longer listed by SRC; an
MLflow source lists no deleted run) are reported by name in the summary
and the report's "deleted", once, and kept in DST: a deletion alone does
not change the exit code. --propagate-deletes mirrors them in DST the way
its users delete a run, data kept: MLflow moves the copy to the deleted
lifecycle stage (restorable until 'mlflow gc'); a Parquet archive writes a
tombstone (readers of the current snapshot no longer see the run; earlier
snapshots keep it until 'archive prune'). A deletion that fails is a
problem (exit 3) and is tried again by the next sync. When the listing was
incomplete (a folder or experiment that could not be read) no run is judged
deleted. Both need the ledger (not with --no-state). --dry-run reads the
ledger without changing it and names the runs deleted at the source, and
whether --propagate-deletes would delete them in DST.

One job (the same SRC, DST and options, with the same ledger) runs once at
a time: a second run started while the first goes on (a cron entry firing
while last night's sync still runs) stops at once with exit 1, naming the
lock file beside the ledger, and writes nothing. Other jobs, shards and
--no-state runs are not held back.`
	}
	cmd := &cobra.Command{
		Use:   verb + " SRC DST",
		Short: short,
		Long:  long,
		Example: `  runferry ` + verb + ` wandb:./wandb parquet:./archive
  runferry ` + verb + ` parquet:/backups/mlflow mlflow+http://127.0.0.1:5000 --dry-run
  runferry ` + verb + ` wandb:/scratch/wandb parquet:/backup --include 'vision-*' --since 2024-01-01 --report report.json`,
		Args: exactArgs(2, "SRC DST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter, err := sel.filter()
			if err != nil {
				return err
			}
			if concurrency < 1 {
				return usageError{fmt.Errorf("--concurrency must be at least 1")}
			}
			if err := checkReportPath(reportPath); err != nil {
				return err
			}
			shard, err := parseShardFlag(shardFlag)
			if err != nil {
				return err
			}
			if host, same := sameMLflowServer(args[0], args[1], prefix); same {
				return usageError{fmt.Errorf("SRC and DST are the same MLflow server (%s): a copy would write each of its runs again beside itself; name another server as DST, or give an experiment prefix (?experiment-prefix=, --experiment-prefix) to make copies on purpose", host)}
			}
			if kind, what, same := sameLocation(args[0], args[1]); same {
				if kind == "archive" {
					return usageError{fmt.Errorf("SRC and DST are the same archive (%s): its runs are there already, and a copy into itself would only write a snapshot of them again; name another archive as DST (an earlier snapshot is read with SRC's ?snapshot=N)", what)}
				}
				return usageError{fmt.Errorf("SRC and DST are the same database (%s): its runs are there already, and a copy into itself would only write them again; name another database as DST", what)}
			}
			ctx := cmd.Context()
			if withDeleted {
				if args[0], err = a.includeDeleted(args[0]); err != nil {
					return err
				}
			}
			if !dryRun && !noState {
				if statePath == "" {
					if statePath, err = state.DefaultPath(); err != nil {
						return err
					}
				}
				// Each shard its own file, also on a volume the shards share.
				statePath = shardStatePath(statePath, shard)
				// The source may keep what it read beside the ledger (a W&B
				// folder: each log's identity with its run record and
				// tail); --force and --restart trust none of it.
				ctx = sources.WithInputCache(ctx, sources.InputCache{Path: statePath, Fresh: force || restart})
			}
			src, srcLoc, err := a.openSource(ctx, args[0])
			if err != nil {
				return err
			}
			defer src.Close()
			if r, ok := src.(sources.Retrier); ok {
				r.SetRetries(retries)
			}
			dst, dstLoc, err := a.openSink(ctx, args[1])
			if err != nil {
				return err
			}
			// One MLflow store reached another way (another address, or its
			// own store read directly) is recognised by what both sides
			// hold, before anything is planned: a copy would double every
			// native run.
			if !dstPrefixed(args[1], prefix) {
				if ev, ok := compareStores(ctx, src, dst); ok {
					if err := sameStoreError(ev, mlflowHost(args[1]), allowSame); err != nil {
						dst.Close()
						return err
					}
				}
			}
			// A destination this user cannot write stops the job before
			// the plan (a dry run writes nothing, and is not stopped).
			if w, ok := dst.(interface{ CheckWritable() error }); ok && !dryRun {
				if err := w.CheckWritable(); err != nil {
					dst.Close()
					return fmt.Errorf("destination %s: %w", dstLoc, err)
				}
			}
			if r, ok := dst.(interface{ SetSource(string) }); ok {
				r.SetSource(srcLoc.String())
			}
			opt := transfer.Options{
				Concurrency: concurrency, Attempts: retries + 1, Filter: filter, DryRun: dryRun,
				Source: srcLoc.String(), Sink: dstLoc.String(), Shard: shard, AcceptGaps: acceptGaps,
			}
			jobOptions := sel.canonical()
			if !shard.IsZero() {
				jobOptions += ";shard=" + shard.String()
			}
			if prefix != "" {
				// One meaning with the sink's own experiment-prefix option
				// where the sink has one: runs copied under two prefixes are
				// two copies. Elsewhere experiments are renamed on their way.
				if p, ok := dst.(sinks.ExperimentPrefixer); ok {
					if err := p.SetExperimentPrefix(prefix); err != nil {
						return usageError{err}
					}
					jobOptions += ";experiment-prefix=" + prefix
				} else {
					opt.Transform = append(opt.Transform, transform.PrefixExperiments(prefix))
				}
			}
			opt.Transform = append(opt.Transform, dropTransform(drop)...)
			_, shared := dst.(sinks.SharedView)
			switch {
			case dropUser && personal:
				return usageError{fmt.Errorf("--drop-user and --keep-personal contradict each other: --keep-personal writes the run's user too")}
			case dropUser && !shared:
				return usageError{fmt.Errorf("--drop-user leaves the run's user out with the personal data left out of a destination all its users see (MLflow); %s keeps what the source had", dstLoc.Scheme)}
			case shared && !personal:
				opt.Transform = append(opt.Transform, transform.DropPersonal{User: dropUser})
			}
			if lookback < 0 {
				return usageError{fmt.Errorf("--lookback must not be negative")}
			}
			if propagate && noState {
				return usageError{fmt.Errorf("--propagate-deletes finds the runs deleted at the source in the ledger: not with --no-state")}
			}
			opt.PropagateDeletes = propagate
			if lookback > 0 && noState {
				return usageError{fmt.Errorf("--lookback compares runs changed near the previous sync, which the ledger records: not with --no-state")}
			}
			if lookback > 0 && !force {
				opt.Lookback = lookback // LastStart comes from the ledger below
			}
			if force || lookback > 0 {
				// The destination read as a source, as check reads it; each
				// run is compared under the transform recorded with it.
				// It is opened at the first run to compare: a destination
				// that does not exist yet (a first copy) has none, and
				// cannot be read as a source.
				flag := "--force"
				if !force {
					flag = "--lookback"
				}
				var (
					mu   sync.Mutex
					dsrc sources.Source
					v    *check.RunVerifier
				)
				defer func() {
					if dsrc != nil {
						dsrc.Close()
					}
				}()
				opt.Verify = func(ctx context.Context, exp schema.Experiment, run schema.Run) (string, error) {
					mu.Lock()
					if v == nil {
						var err error
						if dsrc == nil {
							if dsrc, _, err = a.openSource(ctx, args[1]); err != nil {
								mu.Unlock()
								return "", fault.Fatal(fmt.Errorf("%s reads DST as check does: %w", flag, err))
							}
						}
						if v, err = check.NewRunVerifier(ctx, src, dsrc, check.Options{}); err != nil {
							mu.Unlock()
							return "", fault.Fatal(err)
						}
					}
					mu.Unlock()
					return v.Verify(ctx, exp, run)
				}
			}
			if dryRun && !noState {
				// The plan the job would make, deletions at the source
				// included, from the ledger read as is: nothing in it
				// changes.
				if statePath == "" {
					if statePath, err = state.DefaultPath(); err != nil {
						return err
					}
				}
				l, err := state.OpenReadOnly(shardStatePath(statePath, shard), state.Job{Source: srcLoc.String(), Sink: dstLoc.String(),
					Options: jobOptions + ";" + opt.Transform.String()})
				if err != nil {
					return err
				}
				if l != nil && !restart {
					defer l.Close()
					opt.Ledger = l
					opt.LastStart = l.PreviousStart()
				} else if l != nil {
					l.Close()
				}
			}
			if !dryRun && !noState {
				job := state.Job{Source: srcLoc.String(), Sink: dstLoc.String(),
					Options: jobOptions + ";" + opt.Transform.String()}
				if err := os.MkdirAll(filepath.Dir(statePath), 0o700); err != nil {
					return fmt.Errorf("state %s: %w", statePath, err)
				}
				release, err := lockJob(statePath, job.Key())
				if err != nil {
					return err
				}
				defer release()
				l, err := state.Open(statePath, job, restart)
				if err != nil {
					return err
				}
				defer l.Close()
				secrets := a.secretValues(args)
				l.Scrub = func(s string) string { return scrub(s, secrets) }
				opt.Ledger = l
				opt.LastStart = l.PreviousStart()
			}
			prog := a.newProgress()
			reportOptions := map[string]string{
				"selection": sel.canonical(), "transform": opt.Transform.String(),
				"concurrency": fmt.Sprint(concurrency), "retries": fmt.Sprint(retries),
				"dry_run": fmt.Sprint(dryRun), "restart": fmt.Sprint(restart), "no_state": fmt.Sprint(noState),
				"experiment_prefix": prefix, "keep_personal": fmt.Sprint(personal), "drop_user": fmt.Sprint(dropUser),
				"force": fmt.Sprint(force), "lookback": lookback.String(), "propagate_deletes": fmt.Sprint(propagate), "shard": shard.String(),
				"accept_gaps": fmt.Sprint(acceptGaps),
			}
			opt.Observer = prog.observe
			// The run results wait in a temporary file, not in memory, to
			// be printed and written at the end (docs/WANDB-CLOUD.md gap 6).
			opt.SpillRuns = true
			rep, err := transfer.Copy(ctx, src, dst, opt)
			// rep is a report whatever err says (Copy's contract).
			defer func() { _ = rep.Close() }()
			prog.finish(rep.Reached)
			rep.Version, rep.Options = versionString(), reportOptions
			if cerr := dst.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("closing destination: %w", cerr)
				rep.Fatal = err.Error()
			}
			a.exit = verdictExit(rep.Verdict(err))
			// Before the source and destination answered there is nothing to
			// sum up for a reader: the error alone is printed (JSON readers
			// still get their object, with the fatal error in it).
			if rep.Reached || err == nil || a.logFormat == "json" {
				a.printReport(rep)
			}
			if reportPath != "" {
				if werr := writeReport(reportPath, rep, a.secretValues(args)); werr != nil {
					fmt.Fprintf(a.stderr, "runferry: writing report %s: %v\n", reportPath, werr)
					a.exit = max(a.exit, exitFatal)
				}
			}
			if err != nil && a.exit == exitFatal {
				fmt.Fprintf(a.stderr, "runferry: %s\n", oneLine(err.Error()))
			}
			return nil
		},
	}
	sel.register(cmd)
	f := cmd.Flags()
	f.IntVar(&concurrency, "concurrency", 4, "runs transferred at once (capped by the destination's limit); an MLflow destination then finds how many of their metric batches to send at once")
	f.IntVar(&retries, "retries", 2, "extra attempts for a run that failed for a passing reason; from the W&B cloud also the retries of each request and download after a 5xx or a failed connection (a 429's wait is not counted)")
	f.BoolVarP(&dryRun, "dry-run", "n", false, "print the plan (runs, points, files, bytes; runs deleted at the source, from the ledger, read but not changed) and write nothing")
	f.StringVar(&reportPath, "report", "", "write the job report as JSON to this file")
	f.StringVar(&statePath, "state", "", "resume ledger file (default $XDG_STATE_HOME/runferry/ledger.db)")
	f.BoolVar(&restart, "restart", false, "ignore what the ledger recorded for this job (the destination's own markers still prevent duplicates)")
	f.BoolVar(&force, "force", false, "compare every run the fingerprints call unchanged with DST in full, as 'check' does; write again only those that differ (the others are reported as verified)")
	f.DurationVar(&lookback, "lookback", 0, "also compare in full with DST, as --force does, the runs whose change time is within this long before the previous sync's start or later (e.g. 10m; covers coarse file times and clock skew; needs the ledger)")
	f.BoolVar(&propagate, "propagate-deletes", false, "delete in DST the copies of runs deleted at the source since the last sync (MLflow: deleted lifecycle stage, restorable; Parquet: a tombstone, data kept until 'archive prune'); without it they are reported and kept")
	f.BoolVar(&noState, "no-state", false, "keep no ledger; rely on the destination's origin markers alone")
	f.StringVar(&prefix, "experiment-prefix", "", "prepend this to every experiment name in DST (e.g. 'wandb/'); into MLflow the same as the location's ?experiment-prefix= (copies under two prefixes are two copies)")
	f.StringSliceVar(&drop, "drop-metrics", nil, "leave out metric keys matching this glob, e.g. 'system/*' (repeatable)")
	f.StringVar(&shardFlag, "shard", "", "move only shard K of N (K/N, K from 1 to N; 'auto' reads JOB_COMPLETION_INDEX with RUNFERRY_SHARDS, or SLURM_ARRAY_TASK_ID/MIN/COUNT): runs are split by a fixed hash of their origin, each shard keeps its own ledger file, --state with .shard-K-of-N before the extension (see docs/SHARDING.md)")
	f.BoolVar(&withDeleted, "include-deleted", false, "also copy the experiments and runs SRC holds as deleted (MLflow sources: the same as SRC's ?deleted=true; they stay marked deleted in DST); without it they are left out and counted in the report")
	f.BoolVar(&allowSame, "allow-same-store", false, "go on although SRC and DST look like one MLflow store or copies of one (some experiments with the same id, name and creation time on both sides, as a cloned database that went its own way has); not when they hold exactly the same experiments")
	f.BoolVar(&acceptGaps, "accept-gaps", false, "exit 0 although the source has gaps runferry cannot fill: runs read from damaged source data, files the source names but does not hold (a W&B artifact entry whose staged copy is gone); they are still named and counted (without it: exit 3, on every sync while the ledger knows the copy is incomplete). Damage notes a source only carries (an archive, SQL database or MLflow run written by runferry from damaged data) are named as inherited and do not need it")
	f.BoolVar(&personal, "keep-personal", false, "also write personal data (host names, login names, e-mail addresses, local paths, command lines, home folders: docs/MLFLOW-MAPPING.md) into a destination all its users see (MLflow); by default it is left out there, named in the report's coverage, and kept in archives. The run's user (MLflow's 'Created by', W&B's run user) is attribution and kept either way (see --drop-user)")
	f.BoolVar(&dropUser, "drop-user", false, "also leave the run's user (MLflow's 'Created by', mlflow.user; W&B's run user) out of a destination all its users see (MLflow), named in the report's coverage like the other personal data")
	return cmd
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s needs %s (got %s); see '%s --help'", cmd.Name(), names, counted(len(args), "argument"), cmd.CommandPath())}
		}
		return nil
	}
}

func writeJSON(path string, v any, secrets []string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = []byte(scrub(string(b), secrets) + "\n")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// writeReport writes rep to path as writeJSON would (the same bytes), a
// run result at a time: the results of a job of many runs are not held in
// memory (transfer.Options.SpillRuns).
func writeReport(path string, rep *transfer.Report, secrets []string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	err = rep.WriteJSON(f, func(s string) string { return scrub(s, secrets) })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// results yields rep's run results (transfer.Report.Results); an error
// reading them (a temporary file that could not be read back) is printed
// once, on stderr, and makes the exit code fatal: the summary above it is
// then incomplete.
func (a *app) results(rep *transfer.Report) iter.Seq[transfer.RunResult] {
	return func(yield func(transfer.RunResult) bool) {
		for r, err := range rep.Results() {
			if err != nil {
				if !a.resultsFailed {
					a.resultsFailed = true
					fmt.Fprintf(a.stderr, "runferry: %v\n", err)
					a.exit = max(a.exit, exitFatal)
				}
				return
			}
			if !yield(r) {
				return
			}
		}
	}
}

// printReport prints the job's summary: failures always, every run with -v,
// and one closing line.
func (a *app) printReport(rep *transfer.Report) {
	if a.logFormat == "json" {
		a.printReportJSON(rep)
		return
	}
	w := a.stdout
	verb := "copied"
	estimated := false
	if rep.DryRun {
		verb = "would copy"
		fmt.Fprintf(w, "Plan (dry run, nothing written):\n")
		width := 40 // the origin column: as wide as the longest origin, so that the rest stays aligned
		for r := range a.results(rep) {
			if r.Outcome == transfer.Planned {
				width = max(width, len(r.Origin))
			}
		}
		for r := range a.results(rep) {
			if r.Outcome == transfer.Planned {
				reason := r.Reason
				if r.Estimated {
					reason += ", estimated"
					estimated = true
				}
				files, size := strconv.FormatInt(r.Files, 10), bytesText(r.Bytes)
				filesNoun := nounFor(r.Files, "file")
				if r.FilesNotEstimated {
					reason += "; files not estimated: the source's listing does not tell them"
					files, filesNoun = "-", "files"
					if r.Bytes == 0 {
						size = "-"
					}
				}
				fmt.Fprintf(w, "  %-*s %-24s %10d %-6s %5s %-5s %12s  (%s)\n", width, r.Origin, trim(r.Name, 24),
					r.Points, nounFor(r.Points, "point"), files, filesNoun, size, reason)
			}
		}
	}
	filesNotCopied := 0
	for r := range a.results(rep) {
		filesNotCopied += len(r.FileProblem)
		switch {
		case r.Outcome == transfer.Failed:
			fmt.Fprintf(w, "FAILED %s (%s) after %s: %s\n", r.Origin, r.Name, counted(r.Attempts, "attempt"), r.Error)
		case a.verbose && !rep.DryRun:
			how := ""
			switch {
			case r.Appended:
				how = fmt.Sprintf(", appended (%s held already)", counted(r.KeptPoints, "point"))
			case r.Continued:
				how = fmt.Sprintf(", continued in place (%s held already)", counted(r.KeptPoints, "point"))
			}
			if r.DeletedFiles > 0 {
				how += fmt.Sprintf(", %s deleted (gone from the source)", counted(r.DeletedFiles, "file"))
			}
			fmt.Fprintf(w, "%-11s %s (%s) %s, %s%s\n", r.Outcome, r.Origin, r.Name, counted(r.Points, "point"), counted(r.Files, "file"), how)
		}
		if r.Restored != "" {
			what := "restored"
			if rep.DryRun {
				what = "would be restored"
			}
			fmt.Fprintf(w, "DELETED at the destination %s (%s): %s %s\n", r.Origin, r.Name, r.Restored, what)
		}
		for _, d := range r.Damage {
			fmt.Fprintf(w, "damaged source %s: %s\n", r.Origin, d)
		}
		for _, d := range r.InheritedDamage {
			fmt.Fprintf(w, "inherited damage note %s: %s\n", r.Origin, d)
		}
		for _, p := range r.FileProblem {
			fmt.Fprintf(w, "file not copied %s: %s\n", r.Origin, p)
		}
		for _, p := range r.InheritedFileProblems {
			fmt.Fprintf(w, "inherited file problem %s: %s\n", r.Origin, p)
		}
	}
	propagate := rep.Options["propagate_deletes"] == "true"
	for _, d := range rep.Deleted {
		what := "kept in the destination"
		switch {
		case rep.DryRun && propagate:
			what = "would be deleted in the destination"
		case rep.DryRun:
			what = "would be kept in the destination (--propagate-deletes deletes it)"
		case d.Propagated:
			what = "deleted in the destination"
		case d.Error != "":
			what = "could not be deleted in the destination"
		}
		fmt.Fprintf(w, "DELETED at the source %s (%s): %s\n", d.Origin, d.Name, what)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "PROBLEM %s\n", p)
	}
	for _, m := range rep.Warnings {
		fmt.Fprintf(w, "WARNING %s\n", m)
	}
	printExperimentURLs(w, rep)
	// A coverage kind is the report's key, a phrase that reads as a plural
	// ("metric keys MLflow rejects, renamed (...)") or a singular ("host
	// name left out by ..."): a count before it would disagree with it for
	// some counts, so the count follows it.
	var notAsGiven int64
	for _, k := range slices.Sorted(maps.Keys(rep.Coverage)) {
		fmt.Fprintf(w, "not as given: %s: %d\n", k, rep.Coverage[k])
		notAsGiven += rep.Coverage[k]
	}
	t := rep.Totals
	about := ""
	if estimated {
		about = "about " // some counts are the source's estimate
	}
	if rep.Shard != "" {
		fmt.Fprintf(w, "shard %s: ", rep.Shard)
	}
	fmt.Fprintf(w, "%s %s (%s%s, %s%s); %d unchanged",
		verb, counted(t.Committed+t.Planned, "run"), about, counted(t.Points, "point"), filesText(t), a.extended(rep), t.Unchanged)
	if rep.Shard != "" {
		fmt.Fprintf(w, ", %d in other shards", t.OtherShards)
	}
	if t.Verified > 0 {
		fmt.Fprintf(w, ", %d verified", t.Verified)
	}
	switch {
	case t.Restored > 0 && rep.DryRun:
		fmt.Fprintf(w, ", %s deleted at the destination to restore (named above)", counted(t.Restored, "run"))
	case t.Restored > 0:
		fmt.Fprintf(w, ", %s deleted at the destination restored (named above)", counted(t.Restored, "run"))
	}
	fmt.Fprintf(w, ", %d failed", t.Failed)
	if n := len(rep.Problems); n > 0 {
		// Failures outside any run (a run the source could not give, an
		// experiment it could not list): in no count above, so said here.
		fmt.Fprintf(w, ", %s (named above)", counted(n, "problem"))
	}
	switch {
	case t.Deleted > 0 && rep.DryRun:
		would := 0
		if propagate {
			would = t.Deleted
		}
		fmt.Fprintf(w, ", %d deleted at the source (%d would be deleted in the destination)", t.Deleted, would)
	case t.Deleted > 0:
		fmt.Fprintf(w, ", %d deleted at the source (%d deleted in the destination)", t.Deleted, t.DeletesPropagated)
	}
	if g := rep.Registry; g != nil {
		fmt.Fprintf(w, "; %s (%s), %d failed", counted(g.Models, "registered model"), counted(g.Versions, "version"), g.Failed)
	}
	if g := rep.Traces; g != nil {
		fmt.Fprintf(w, "; %s, %d failed", counted(g.Copied, "trace"), g.Failed)
	}
	if t.Damaged > 0 {
		fmt.Fprintf(w, ", %d read from damaged source data (see above)", t.Damaged)
	}
	if t.InheritedDamage > 0 {
		fmt.Fprintf(w, ", %s with inherited damage notes (see above: found by an earlier copy, carried whole; not new damage)", counted(t.InheritedDamage, "run"))
	}
	if filesNotCopied > 0 {
		fmt.Fprintf(w, ", %s not copied (named above)", counted(filesNotCopied, "file"))
	}
	if t.InheritedFileProblems > 0 {
		fmt.Fprintf(w, ", %s (named above: files an earlier copy could not copy from the original source, carried as it recorded them; not new gaps)", counted(t.InheritedFileProblems, "inherited file problem"))
	}
	switch {
	case notAsGiven > 0 && rep.DryRun:
		// What a destination would not hold of the metric points (MLflow:
		// system metrics renamed, per-core CPU folded, keys it rejects) is
		// found only as they are written: the copy counts more than this.
		fmt.Fprintf(w, ", %s not as given (see above; a dry run counts what the destination would not hold of the runs' metadata and files, not of their metric points: the copy counts those too)", counted(notAsGiven, "item"))
	case notAsGiven > 0:
		fmt.Fprintf(w, ", %s not as given (see above)", counted(notAsGiven, "item"))
	}
	if rep.AcceptedGaps && (t.Damaged > 0 || filesNotCopied > 0) {
		fmt.Fprintf(w, " (gaps accepted: --accept-gaps)")
	}
	switch {
	case rep.Canceled && t.Interrupted > 0:
		fmt.Fprintf(w, ", interrupted with %s not done (re-run to resume)", counted(t.Interrupted, "run"))
	case rep.Canceled:
		// Interrupted before the plan was made: no run is known yet.
		fmt.Fprintf(w, ", interrupted (re-run to resume)")
	case rep.Fatal != "" && t.Interrupted > 0:
		// Not the user's interruption: the error printed below stopped
		// the job (a full disk, lost credentials).
		fmt.Fprintf(w, ", stopped by the error below with %s not done (re-run to resume)", counted(t.Interrupted, "run"))
	case t.Interrupted > 0:
		fmt.Fprintf(w, ", interrupted (re-run to resume)")
	}
	fmt.Fprintf(w, " in %s\n", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
}

// filesText is the closing line's count of files and bytes: a dry run's
// estimate that could not tell the files of some runs says so, never "0
// files" of runs whose files are not known.
func filesText(t transfer.Totals) string {
	switch n := t.FilesNotEstimated; {
	case n == 0:
		return counted(t.Files, "file") + ", " + bytesText(t.Bytes)
	case n == t.Planned && t.Bytes == 0:
		return "files and their bytes not estimated (the source's listing does not tell them)"
	default:
		return fmt.Sprintf("%s, %s; the files of %s not estimated: the source's listing does not tell them", counted(t.Files, "file"), bytesText(t.Bytes), counted(n, "run"))
	}
}

// extended says, for the closing line, how many of the runs copied were
// appended to or continued in place, and how many points their copies held
// already (not sent again), so that "copied 1 run (2000 points, ...)" of a
// run of 52,000 points does not read as a run copied with 2,000, and how
// many files their copies lost because they are gone from the source (a
// file deleted at the source is carried so, and "0 files" alone read as
// nothing done); "" when none was appended to or continued.
func (a *app) extended(rep *transfer.Report) string {
	t := rep.Totals
	if t.Appended+t.Continued == 0 {
		return ""
	}
	var kept int64
	for r := range a.results(rep) {
		if (r.Outcome == transfer.Committed || r.Outcome == transfer.Planned) && (r.Appended || r.Continued) {
			kept += r.KeptPoints
		}
	}
	var how []string
	switch {
	case t.Appended > 0 && rep.DryRun:
		how = append(how, counted(t.Appended, "run")+" to be appended to")
	case t.Appended > 0:
		how = append(how, counted(t.Appended, "run")+" appended to")
	}
	if t.Continued > 0 {
		how = append(how, counted(t.Continued, "run")+" continued in place (a first copy cut short)")
	}
	gone := ""
	switch {
	case t.DeletedFiles > 0 && rep.DryRun:
		gone = ", " + counted(t.DeletedFiles, "file") + " to be deleted (gone from the source)"
	case t.DeletedFiles > 0:
		gone = ", " + counted(t.DeletedFiles, "file") + " deleted (gone from the source)"
	}
	return fmt.Sprintf("; %s: %s held already, not sent again%s", strings.Join(how, ", "), counted(kept, "point"), gone)
}

// maxURLs is how many experiment addresses the text summary prints; the
// report holds them all.
const maxURLs = 20

// printExperimentURLs prints where each experiment written can be opened
// (for sinks with a web UI, such as MLflow), at most maxURLs of them.
func printExperimentURLs(w io.Writer, rep *transfer.Report) {
	n := 0
	for _, e := range rep.Experiments {
		if e.URL == "" {
			continue
		}
		if n++; n <= maxURLs {
			fmt.Fprintf(w, "experiment %s: %s\n", e.Name, e.URL)
		}
	}
	if n > maxURLs {
		fmt.Fprintf(w, "experiment URLs: %d more in the report (--report FILE)\n", n-maxURLs)
	}
}

// printReportJSON prints the job's closing summary as one JSON object on
// stdout, for --log-format json: what the text form says, in fields.
func (a *app) printReportJSON(rep *transfer.Report) {
	type failure struct {
		Origin   string `json:"origin"`
		Name     string `json:"name,omitempty"`
		Attempts int    `json:"attempts"`
		Error    string `json:"error"`
	}
	out := struct {
		Summary bool             `json:"summary"`
		Shard   string           `json:"shard,omitempty"`
		DryRun  bool             `json:"dry_run,omitempty"`
		Totals  transfer.Totals  `json:"totals"`
		Timings transfer.Timings `json:"timings"`
		Failed  []failure        `json:"failed,omitempty"`
		// Damage is what the source could not read of its data, by run.
		Damage map[string][]string `json:"damage,omitempty"`
		// FilesNotCopied are the files the source names but could not
		// give (PATH: PROBLEM), by run: the text form's "file not copied"
		// lines; they are not damage of the source's data.
		FilesNotCopied map[string][]string `json:"files_not_copied,omitempty"`
		// Inherited are the damage notes the source only carries, by run.
		Inherited map[string][]string `json:"inherited_damage,omitempty"`
		// InheritedFiles are the files an earlier copy could not copy,
		// carried as it recorded them, by run.
		InheritedFiles map[string][]string      `json:"inherited_file_problems,omitempty"`
		Coverage       map[string]int64         `json:"coverage,omitempty"`
		Problems       []string                 `json:"problems,omitempty"`
		Warnings       []string                 `json:"warnings,omitempty"`
		Deleted        []transfer.DeletedRun    `json:"deleted,omitempty"`
		Registry       *transfer.RegistryResult `json:"registry,omitempty"`
		Traces         *transfer.TraceResult    `json:"traces,omitempty"`
		// Experiments are the experiments written, with their URLs.
		Experiments []transfer.ExperimentResult `json:"experiments,omitempty"`
		Fatal       string                      `json:"fatal,omitempty"`
		Interrupt   bool                        `json:"interrupted,omitempty"`
		ExitCode    int                         `json:"exit_code"`
	}{Summary: true, Shard: rep.Shard, DryRun: rep.DryRun, Totals: rep.Totals, Timings: rep.Timings, Coverage: rep.Coverage,
		Problems: rep.Problems, Warnings: rep.Warnings, Deleted: rep.Deleted, Registry: rep.Registry, Traces: rep.Traces, Experiments: rep.Experiments, Fatal: rep.Fatal,
		Interrupt: rep.Canceled, ExitCode: a.exit}
	for r := range a.results(rep) {
		if r.Outcome == transfer.Failed {
			out.Failed = append(out.Failed, failure{r.Origin, r.Name, r.Attempts, r.Error})
		}
		byRun(&out.Damage, r.Origin, r.Damage)
		byRun(&out.FilesNotCopied, r.Origin, r.FileProblem)
		byRun(&out.Inherited, r.Origin, r.InheritedDamage)
		byRun(&out.InheritedFiles, r.Origin, r.InheritedFileProblems)
	}
	b, _ := json.Marshal(out)
	fmt.Fprintf(a.stdout, "%s\n", b)
}

// byRun records a run's lines under its origin in *m, made on the first
// run that has any; a run without lines is left out.
func byRun(m *map[string][]string, origin string, lines []string) {
	if len(lines) == 0 {
		return
	}
	if *m == nil {
		*m = map[string][]string{}
	}
	(*m)[origin] = lines
}

func trim(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
