package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	sinksall "github.com/runferry/runferry/sinks/all"
	"github.com/runferry/runferry/sources"
	sourcesall "github.com/runferry/runferry/sources/all"
)

// app holds what every verb shares: registries, output streams, global
// flags and the exit code the verb chose.
type app struct {
	sources *sources.Registry
	sinks   *sinks.Registry
	stdout  io.Writer
	stderr  io.Writer
	log     *slog.Logger

	verbose   bool
	quiet     bool
	logFormat string
	rate      float64 // --rate: requests per second to a source's server

	waitMu     sync.Mutex
	waitLogged time.Time // when a server-asked wait was last logged
	prog       *progress // the running job's progress, told of waits (under waitMu)

	exit int // exit code chosen by the verb; 0 unless set
	// resultsFailed: a job's run results could not be read back (see
	// results); said once.
	resultsFailed bool
}

// usageError marks errors in how runferry was called (exit 2).
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	srcs, dsts := sourcesall.Sources(), sinksall.Sinks()
	secrets := secretValues(append(srcs.All(), dsts.All()...), os.Environ(), args)
	a := &app{
		sources: srcs,
		sinks:   dsts,
		stdout:  &scrubWriter{w: stdout, secrets: secrets},
		stderr:  &scrubWriter{w: stderr, secrets: secrets},
	}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	err := root.ExecuteContext(ctx)
	if err != nil {
		var ue usageError
		code := exitFatal
		if errors.As(err, &ue) || strings.Contains(err.Error(), "unknown flag") ||
			strings.Contains(err.Error(), "unknown command") || strings.Contains(err.Error(), "accepts") {
			code = exitUsage
		}
		if ctx.Err() != nil {
			code = exitInterrupted
		}
		fmt.Fprintf(a.stderr, "runferry: %s\n", oneLine(err.Error()))
		return code
	}
	return a.exit
}

// oneLine makes an error message one line: a library's message over
// several lines (pgx names each address it tried on a line of its own)
// is joined, each line trimmed, a line repeated left out; a line ending
// with a colon runs on with a space, the others are joined with "; ".
func oneLine(msg string) string {
	if !strings.Contains(msg, "\n") {
		return msg
	}
	var b strings.Builder
	seen := map[string]bool{}
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || seen[l] {
			continue
		}
		seen[l] = true
		if b.Len() > 0 {
			if strings.HasSuffix(b.String(), ":") {
				b.WriteString(" ")
			} else {
				b.WriteString("; ")
			}
		}
		b.WriteString(l)
	}
	return b.String()
}

// exitCodes are every exit code of runferry, as the root help lists them (README.md's table
// says the same at more length).
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "everything arrived (check: no difference)"},
	{exitFatal, "fatal error: nothing more could be done (unreachable server, bad\n" +
		"credentials, disk full)"},
	{exitUsage, "bad usage: unknown flag, malformed location"},
	{exitRunsFailed, "finished, but some runs failed, were read from damaged source\n" +
		"data or could not be read, or files were not copied (each is\n" +
		"named; re-run to retry; copy/sync --accept-gaps accepts the\n" +
		"source's damage and missing files)"},
	{exitDifferences, "check found differences, archive check found damage, or mapping\n" +
		"check found problems"},
	{exitInterrupted, "interrupted; the ledger is saved, re-run to resume"},
}

// exitCodeHelp renders exitCodes for the root help.
func exitCodeHelp() string {
	var b strings.Builder
	b.WriteString("Exit codes:")
	for _, e := range exitCodes {
		lines := strings.Split(e.meaning, "\n")
		fmt.Fprintf(&b, "\n  %-5d%s", e.code, lines[0])
		for _, l := range lines[1:] {
			b.WriteString("\n       " + l)
		}
	}
	return b.String()
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "runferry",
		Short: "Move ML experiment-tracking runs between W&B, MLflow, Parquet and SQL",
		Long: `runferry moves ML experiment-tracking data between platforms: every run with its
full metric history, params, tags, notes, times, console output and files.

Locations name an adapter by scheme (see 'runferry backends' for options):
  wandb:PATH                      W&B run folders on disk (read only)
  wandb+https://HOST/ENTITY       W&B's cloud or a W&B Server (read only)
  tensorboard:PATH                TensorBoard event files (read only)
  parquet:PATH                    a runferry Parquet archive (also s3://,
                                  gs://, azblob:// after parquet:)
  mlflow+http:// mlflow+https://  an MLflow tracking server
  mlflow+file:, mlflow+sqlite:,   MLflow's own stores, read directly with no
  mlflow+postgresql://,           server (read only)
  mlflow+mysql://
  postgres://, mysql://, sqlite:  a SQL database (runferry's schema, or your
                                  own through ?mapping=FILE)

Transfers are idempotent and resumable: re-running a copy never duplicates a
run or a point, and an interrupted copy resumes where it stopped. 'runferry
check' proves that a destination holds what the source holds.

` + exitCodeHelp(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setupLogging()
		},
	}
	root.SetVersionTemplate("runferry {{.Version}}\n") // the same line as `runferry version`
	pf := root.PersistentFlags()
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log every run, not only failures")
	pf.BoolVarP(&a.quiet, "quiet", "q", false, "print only errors and the final summary")
	pf.StringVar(&a.logFormat, "log-format", "text", "log and progress format on stderr: text or json")
	readers := []*cobra.Command{a.copyCmd("copy"), a.copyCmd("sync"), a.checkCmd(), a.lsCmd()}
	for _, c := range readers {
		a.rateFlag(c)
	}
	root.AddCommand(readers...)
	root.AddCommand(a.backendsCmd(), a.inspectCmd(), a.archiveCmd(), a.mappingCmd(), a.versionCmd())
	return root
}

// rateFlag gives cmd the --rate flag. Only the commands that can read a
// source with a server that paces requests (the W&B cloud: copy, sync,
// check, ls) have it; elsewhere it would do nothing.
func (a *app) rateFlag(cmd *cobra.Command) {
	cmd.Flags().Float64Var(&a.rate, "rate", 0, "at most this many requests per second to a source's server (the W&B cloud, wandb+https:), retries included; 0: no cap (the server's rate limits are honoured all the same)")
}

func (a *app) setupLogging() error {
	level := slog.LevelInfo
	switch {
	case a.verbose && a.quiet:
		return usageError{errors.New("--verbose and --quiet exclude each other")}
	case a.verbose:
		level = slog.LevelDebug
	case a.quiet:
		level = slog.LevelError
	}
	opts := &slog.HandlerOptions{Level: level}
	switch a.logFormat {
	case "text":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", a.logFormat)}
	}
	logLockWaits(a.log)
	return nil
}

// openSource opens the location raw as a source; its errors name it as the source.
func (a *app) openSource(ctx context.Context, raw string) (sources.Source, location.Location, error) {
	return a.openSide(ctx, raw, "source")
}

// openSide is openSource for a location that plays the part side in the
// command ("source", or "destination" for check's DST, read as a source):
// its errors name that side.
func (a *app) openSide(ctx context.Context, raw, side string) (sources.Source, location.Location, error) {
	if _, err := a.sources.Parse(raw); err != nil {
		if m := wrongRole(raw, a.sources.Kind, a.sinks.Kind, "write only (a destination, not a source); sources are", a.sources.All()); m != "" {
			return nil, location.Location{}, usageError{fmt.Errorf("%s %s", side, m)}
		}
		return nil, location.Location{}, usageError{fmt.Errorf("%s %w", side, err)}
	}
	if a.rate < 0 {
		return nil, location.Location{}, usageError{fmt.Errorf("--rate %g: want a number of requests per second, 0 for no cap", a.rate)}
	}
	src, loc, err := a.sources.Open(ctx, raw)
	if err != nil {
		return nil, loc, fmt.Errorf("%s %w", side, err)
	}
	if p, ok := src.(sources.Paced); ok {
		p.SetRate(a.rate)
		p.OnWait(func(reason string, d time.Duration) { a.logWait(loc.String(), reason, d) })
	} else if a.rate > 0 {
		a.log.Warn("--rate has no effect: the source sends no requests to a server", "source", loc.String())
	}
	if k, ok := src.(sources.KeyReporter); ok {
		k.OnKeys(a.keysRead)
	}
	return src, loc, nil
}

// keysRead tells the job's progress how many of a run's metric keys the
// source has read (sources.KeyReporter): an MLflow server's run with
// thousands of keys is a long read of one request per key.
func (a *app) keysRead(run schema.Ref, done, total int) {
	a.waitMu.Lock()
	prog := a.prog
	a.waitMu.Unlock()
	if prog != nil {
		prog.keys(run.String(), done, total)
	}
}

// logWait says that runferry waits on a source's server, and why: in the
// log at most one line every 5 seconds, so that a long rate-limited export
// shows it without flooding the log, and to the job's progress every time.
func (a *app) logWait(source, reason string, d time.Duration) {
	a.waitMu.Lock()
	prog := a.prog
	if now := time.Now(); now.Sub(a.waitLogged) >= 5*time.Second {
		a.waitLogged = now
		a.log.Info("waiting on the server", "source", source, "for", d.Round(time.Millisecond).String(), "because", reason)
	}
	a.waitMu.Unlock()
	if prog != nil {
		prog.waiting(reason, d)
	}
}

// wrongRole describes a location whose scheme the registry asked (has)
// does not serve but the other one does (other): a read-only scheme given
// as the destination, say. what says so and introduces the schemes that
// fit the role, listed from fits. It returns "" when the scheme is unknown to other too.
func wrongRole(raw string, has, other func(string) (location.Kind, bool), what string, fits []location.Description) string {
	scheme, _, ok := strings.Cut(raw, ":")
	if !ok {
		return ""
	}
	scheme = strings.ToLower(scheme)
	if _, ok := has(scheme); ok {
		return ""
	}
	if _, ok := other(scheme); !ok {
		return ""
	}
	var names []string
	for _, d := range fits {
		for _, s := range d.Schemes() {
			names = append(names, s+":")
		}
	}
	return fmt.Sprintf("location %q: %s: is %s %s (see 'runferry backends')",
		location.Redact(raw), scheme, what, strings.Join(names, ", "))
}

func (a *app) openSink(ctx context.Context, raw string) (sinks.Sink, location.Location, error) {
	if _, err := a.sinks.Parse(raw); err != nil {
		if m := wrongRole(raw, a.sinks.Kind, a.sources.Kind, "read only (a source, not a destination); destinations are", a.sinks.All()); m != "" {
			return nil, location.Location{}, usageError{fmt.Errorf("destination %s", m)}
		}
		return nil, location.Location{}, usageError{fmt.Errorf("destination %w", err)}
	}
	dst, loc, err := a.sinks.Open(ctx, raw)
	if err != nil {
		return nil, loc, fmt.Errorf("destination %w", err)
	}
	return dst, loc, nil
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print runferry's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(a.stdout, "runferry %s\n", versionString())
		},
	}
}
