package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/location"
)

func (a *app) archiveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Verify, list snapshots of, summarise, compact and prune runferry Parquet archives",
		Long: `Work on a runferry Parquet archive (written by 'runferry copy ... parquet:PATH').
The format is documented in docs/ARCHIVE.md; DuckDB, pandas and Spark read it
directly. PATH may be given with or without the parquet: prefix, and may be a
prefix in object storage with the location's options: in S3 or an
S3-compatible store, s3://BUCKET/PREFIX (?region=...&endpoint=...&path-style=true;
credentials from the AWS environment), in Google Cloud Storage,
gs://BUCKET/PREFIX (?endpoint=...; credentials from Google's Application Default
Credentials), or in Azure Blob Storage, azblob://CONTAINER/PREFIX (credentials
from the Azure environment); credentials are never in the location.`,
	}
	cmd.AddCommand(a.archiveCheckCmd(), a.archivePruneCmd(), a.archiveCompactCmd(), a.archiveSnapshotsCmd(), a.archiveSummaryCmd())
	return cmd
}

// archivePath returns the location of an archive given as PATH,
// s3://BUCKET/PREFIX[?OPTIONS] (gs://, azblob://) or either with parquet: before it, refusing
// what is neither (another URL, an MLflow store) with a usage error.
func archivePath(arg string) (string, error) {
	raw := arg
	if !strings.HasPrefix(strings.ToLower(raw), "parquet:") {
		raw = "parquet:" + raw
	}
	loc, err := location.Parse(raw, func(s string) (location.Kind, bool) { return location.StoreKind, s == "parquet" })
	if err != nil {
		return "", usageError{err}
	}
	for name := range loc.URL.Query() {
		if !slices.Contains(archive.StoreOptions, name) || !archive.IsObjectStorage(loc.Path) {
			return "", usageError{fmt.Errorf("archive %s: the archive commands take no options but those of object storage (%s)", loc, strings.Join(archive.StoreOptions, ", "))}
		}
	}
	path, err := archive.StoreLocation(loc.Path, loc.URL.Query())
	if err != nil {
		return "", usageError{err}
	}
	return path, nil
}

func (a *app) archiveCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check PATH",
		Short: "Verify every file of an archive against its manifest (sizes and SHA-256)",
		Long: `Verify an archive without changing it: the manifest's own checksum and its
snapshot copy, for every current data file and artifact body its presence, size
and SHA-256, and that the table folders hold no file the manifest does not list
(a query over the folder would read it too). Prints each problem naming the file
and exits 4 when there is any (1 when the archive could not be checked at all).
Files no retained snapshot references are listed as notes: 'archive prune'
removes them.`,
		Example: "  runferry archive check /backups/mlflow\n  runferry archive check 's3://backups/mlflow?region=eu-west-1'",
		Args:    exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := archivePath(args[0])
			if err != nil {
				return err
			}
			rep, err := archive.Check(path)
			for _, p := range rep.Problems {
				fmt.Fprintf(a.stdout, "PROBLEM %s\n", p)
			}
			for _, n := range rep.Notes {
				fmt.Fprintf(a.stdout, "NOTE %s\n", n)
			}
			if len(rep.Problems) > 0 {
				fmt.Fprintf(a.stdout, "archive %s is damaged: %d problem(s)\n", args[0], len(rep.Problems))
				a.exit = exitDifferences
				return nil
			}
			if err != nil {
				return err
			}
			models := ""
			if rep.Models > 0 {
				models = ", " + counted(rep.Models, "registered model")
			}
			fmt.Fprintf(a.stdout, "archive %s is intact: snapshot %d (%d kept), %s%s, %s, %s, %s verified\n",
				args[0], rep.Snapshot, len(rep.Snapshots), counted(rep.Runs, "run"), models, counted(rep.Files, "data file"), counted(rep.Blobs, "artifact body", "artifact bodies"), bytesText(rep.Bytes))
			return nil
		},
	}
}

func (a *app) archivePruneCmd() *cobra.Command {
	var keep int
	cmd := &cobra.Command{
		Use:   "prune PATH --keep N",
		Short: "Remove all but the newest N snapshots of an archive",
		Long: `Keep the newest N snapshots (the current one counts) and remove older snapshot
manifests, the superseded data files only they used, and artifact bodies no kept
snapshot references. Refuses to run while a write holds the archive. In S3, what
is still under Object Lock retention (object-lock=, or the bucket's default) is
kept and listed with the date its retention ends, and a snapshot kept so stays
readable; exit status 0 (retention is the policy asked for).`,
		Example: "  runferry archive prune /backups/mlflow --keep 7",
		Args:    exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("keep") {
				return usageError{fmt.Errorf("prune needs --keep N: how many of the newest snapshots to keep")}
			}
			if keep < 1 {
				return usageError{fmt.Errorf("--keep must be at least 1 (the current snapshot)")}
			}
			path, err := archivePath(args[0])
			if err != nil {
				return err
			}
			rep, err := archive.Prune(path, keep)
			if err != nil {
				return err
			}
			kept := make([]string, len(rep.Kept))
			for i, n := range rep.Kept {
				kept[i] = fmt.Sprint(n)
			}
			fmt.Fprintf(a.stdout, "kept snapshots %s; removed %s, %s, %s, %s freed\n",
				strings.Join(kept, ", "), counted(rep.Snapshots, "snapshot"), counted(rep.Files, "data file"), counted(rep.Blobs, "artifact body", "artifact bodies"), bytesText(rep.Bytes))
			if len(rep.Retained) > 0 {
				fmt.Fprintf(a.stdout, "kept %s under Object Lock retention (a later prune removes them once it ends):\n", counted(len(rep.Retained), "object"))
				for _, r := range rep.Retained {
					fmt.Fprintf(a.stdout, "  %s  retained until %s\n", r.Name, r.Until.UTC().Format(time.RFC3339))
				}
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&keep, "keep", 0, "number of newest snapshots to keep (required, at least 1)")
	return cmd
}

func (a *app) archiveCompactCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "compact PATH",
		Short: "Merge the metrics files that syncs appended to a run into one per run",
		Long: `A sync that appends to a grown run adds one small metrics file to it (since format
version 4). 'compact' merges each such run's metrics files into one holding the
same points in the same order, so readers open one file per run again; DuckDB,
pyarrow and runferry see each point once before, during and after. Each run is
committed on its own, so an interrupted compact leaves every run whole and a
re-run finishes it. The merged-away files move to history/, where earlier
snapshots still read them: 'archive prune' frees their space, as restic's prune
frees what forget left. Needs the archive alone (refused while a sync writes it).`,
		Example: "  runferry archive compact /backups/mlflow --dry-run\n  runferry archive compact /backups/mlflow && runferry archive prune /backups/mlflow --keep 7",
		Args:    exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := archivePath(args[0])
			if err != nil {
				return err
			}
			rep, err := archive.Compact(path, dryRun)
			if err != nil {
				return err
			}
			switch {
			case rep.Runs == 0:
				fmt.Fprintf(a.stdout, "nothing to compact: every run holds its points in one metrics file\n")
			case dryRun:
				fmt.Fprintf(a.stdout, "would merge %s of %s (%s, %s) into %d (dry run, nothing written)\n",
					counted(rep.FilesBefore, "metrics file"), counted(rep.Runs, "run"), counted(rep.Points, "point"), bytesText(rep.Bytes), rep.Runs)
			default:
				fmt.Fprintf(a.stdout, "merged %s of %s (%s) into %d in snapshot %d: %s became %s; the merged files are in history/ until 'archive prune'\n",
					counted(rep.FilesBefore, "metrics file"), counted(rep.Runs, "run"), counted(rep.Points, "point"), rep.Runs, rep.Snapshot, bytesText(rep.Bytes), bytesText(rep.NewBytes))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "say what would be merged and write nothing")
	return cmd
}

func (a *app) archiveSnapshotsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "snapshots PATH",
		Short: "List an archive's snapshots: when, from where, runs, points and size",
		Long: `List the snapshots an archive still holds, oldest first, as 'restic snapshots'
does: the snapshot number, when it was written, the runs the archive held after
it and how many of them it wrote, their metric points and size (tables and
file bodies), and the location it was written from. The current snapshot is
marked with '*'. Any snapshot can be read with parquet:PATH?snapshot=N; 'archive
prune' drops the oldest. Reads only the snapshot manifests.`,
		Example: "  runferry archive snapshots /backups/mlflow\n  runferry copy 'parquet:/backups/mlflow?snapshot=3' mlflow+http://127.0.0.1:5000",
		Args:    exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := archivePath(args[0])
			if err != nil {
				return err
			}
			snaps, err := archive.Snapshots(path)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(snaps)
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SNAPSHOT\tTIME\tRUNS\tWRITTEN\tPOINTS\tSIZE\tSOURCE")
			for _, s := range snaps {
				mark := " "
				if s.Current {
					mark = "*"
				}
				fmt.Fprintf(tw, "%d%s\t%s\t%d\t%d\t%d\t%s\t%s\n", s.Snapshot, mark, s.Created.Local().Format("2006-01-02 15:04:05"),
					s.Runs, s.Written, s.Points, bytesText(s.Bytes), s.Source)
			}
			tw.Flush()
			fmt.Fprintf(a.stdout, "%s\n", counted(len(snaps), "snapshot"))
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the list as JSON")
	return cmd
}

func (a *app) archiveSummaryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "summary PATH",
		Short: "Print points, file bodies and bytes per run of an archive (from its manifest)",
		Long: `Print one line per current run of the archive: its origin, its experiment's
name (as 'ls' names it), the snapshot that wrote it, metric points, file bodies
(distinct contents: a run's files with the same bytes are stored once, so a copy
that counts files may count more) and their bytes, and the bytes of the run's
tables, then the totals: the bodies stored, each counted once however many runs
hold it (the distinct sha256 of the artifacts table), and, when runs share
bodies, what the FILE BODIES column adds up to. Reads the manifest and the
experiments' own files.`,
		Example: "  runferry archive summary ./demo-archive",
		Args:    exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := archivePath(args[0])
			if err != nil {
				return err
			}
			runs, tot, err := archive.SummaryWithTotals(path)
			if err != nil {
				return err
			}
			names, err := a.experimentNames(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tEXPERIMENT\tSNAPSHOT\tPOINTS\tFILE BODIES\tBODY BYTES\tTABLE BYTES")
			for _, r := range runs {
				exp := r.Experiment
				if name, ok := names[exp]; ok {
					exp = name
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", r.Origin, exp, r.Snapshot, r.Points, r.Files, bytesText(r.FileBytes), bytesText(r.Bytes))
			}
			tw.Flush()
			fmt.Fprintln(a.stdout, summaryTotalsLine(tot))
			return nil
		},
	}
}

// summaryTotalsLine is archive summary's closing line: the bodies the
// archive stores for its runs, each once however many files and runs hold
// its content, and, when runs share bodies, what the FILE BODIES column
// adds up to (each run's bodies, a shared one counted with each run), so
// that neither reads as the other.
func summaryTotalsLine(t archive.SummaryTotals) string {
	shared := ""
	if t.RunBodies != t.Bodies || t.RunBodyBytes != t.BodyBytes {
		shared = fmt.Sprintf("; the runs' FILE BODIES add up to %d of %s, a body held by several runs counted in each",
			t.RunBodies, bytesText(t.RunBodyBytes))
	}
	return fmt.Sprintf("%s, %s, %s of %s stored (files with the same content are one body, in one run or across runs%s), %s of tables",
		counted(t.Runs, "run"), counted(t.Points, "point"), counted(t.Bodies, "file body", "file bodies"), bytesText(t.BodyBytes), shared,
		bytesText(t.TableBytes))
}

// experimentNames maps the origin of each experiment of the archive at arg
// to its name, read as 'ls' reads them (the archive opened as a source), so
// that archive summary names experiments as ls does.
func (a *app) experimentNames(ctx context.Context, arg string) (map[string]string, error) {
	raw := arg
	if !strings.HasPrefix(strings.ToLower(raw), "parquet:") {
		raw = "parquet:" + raw
	}
	src, _, err := a.openSource(ctx, raw)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	names := map[string]string{}
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			return nil, fmt.Errorf("listing experiments: %w", err)
		}
		names[e.Origin.String()] = e.Name
	}
	return names, nil
}
