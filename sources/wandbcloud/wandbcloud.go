// Package wandbcloud is the source for W&B's cloud and W&B Server, read
// through the public GraphQL API: the `wandb+https://HOST/ENTITY[/PROJECT]`
// location (wandb+http for a plain-HTTP server).
//
// # Identity
//
// As for the wandb: folder source: one experiment per project, origin
// {wandb, ENTITY/PROJECT}, named so; one run per run, origin
// {wandb, ENTITY/PROJECT/RUN_ID}.
//
// # Mapping
//
//	W&B API                       schema
//	displayName                   Run.Name (the run id when empty)
//	tags                          Run.Labels
//	notes, group, jobType         Run.Notes, Group, JobType
//	user.username, host, commit   Run.User, Host, GitCommit
//	createdAt                     Run.Start
//	heartbeatAt                   Run.End
//	state                         Run.Status: finished FINISHED, failed FAILED,
//	                              crashed FAILED (tag wandb.state=crashed), killed
//	                              KILLED, running RUNNING (tag wandb.state=running)
//	config                        Run.Config: the values unwrapped from
//	                              {"value": …, "desc": …}, `_wandb` removed
//	summaryMetrics                Run.Summary, kept whole
//	config _wandb.m (define_metric) tags wandb.step_metric.NAME = its step metric, as
//	                              the folder source names them (NAME a metric or a
//	                              glob), so that sinks plot against the same x axis
//	sweepName                     tag wandb.sweep_id
//	exitcode                      tag wandb.exit_code
//	config _wandb: cli_version,   tags wandb.sdk_version, wandb.python, and from
//	  python_version, e (the      the earliest writer's environment record (the
//	  writers' environment)       document of wandb-metadata.json): Run.Program,
//	                              GitRemote, tags wandb.os, args, code_path, root,
//	                              executable, email, docker, cuda, gpu, gpu_count,
//	                              cpu_count, as the folder source names them
//	entity, project, run id       tags wandb.entity, wandb.project, wandb.run_id
//	history rows                  Metric and RichValue by wandbfile.ConvertValues,
//	                              the folder source's conversion: `_step` the step,
//	                              `_timestamp` the time, numbers and booleans
//	                              metrics, dicts without `_type` flattened with
//	                              "/", the rest rich values
//
// A job's --run, --since and --until reach the server as the runs query's
// filters (sources.RunFilterer); --include and --exclude select projects
// before their runs are listed.
//
// Runs are listed with what reading them needs next (listing.go): each
// run's parquetHistory and the first pages of its files and artifact
// versions ride in its listing page, so that a run needs no request of
// its own for them (docs/WANDB-CLOUD.md "Requests per run").
//
// History is read in full, never sampled: from the run's parquet history
// exports (parquetHistory: signed URLs, downloaded into temporary files
// one at a time and read row by row with parquet-go, asked for again when
// storage refuses an expired one) and their live tail; a run without
// exports, or a server without parquetHistory, is read with the paged
// history query, in windows of HistoryWindow steps up to the run's
// lastStep (an empty window is not the end: steps may be sparse). Export
// files must hold disjoint step ranges (they are read in order of their
// first step); a row out of step order is an error naming the run.
//
// Requests go through wandbapi's pacing (see internal/wandbapi/pace.go):
// the server's 429s and RateLimit headers are honoured, requests in flight
// adapt, and SetRate (--rate) caps them; OnWait tells progress why it waits.
// One history read serves Metrics and RichValues (spool.go).
//
// For sync, a run's fingerprint is a digest of its listing (fingerprint.go),
// so a sync in which nothing changed reads no run data; a grown run is
// appended to from its history's tail alone (tail.go, sources.TailReader).
//
// System metrics come from the run's events (one request, for a run whose
// eventsLineCount is not 0), mapped as the folder source maps stats
// records (systemMetrics).
//
// Console output comes as lines from the run's logLines (logs.go), paged
// forward, for a run whose logLineCount is not 0.
//
// What the API does not give that a run folder has (see KnownGaps): times
// finer than a second, the number of segments of a resumed run (tag
// wandb.segments), the times console lines were written (the server's are
// when it received them). Run files come
// from run.files() (files.go): console log, media, config and summary
// files, user files, captured code only with ?code=true; W&B Artifacts
// from outputArtifacts and inputArtifacts (artifacts.go), mapped as the
// folder source maps a run's artifact records.
package wandbcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/wandbapi"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// PageSize is the number of points or values in one yielded page.
const PageSize = 10000

// pageMargin is the room left beyond PageSize in a page made whole: the
// row that fills a page may take it past PageSize.
const pageMargin = 256

// HistoryWindow is how many steps one history request covers.
var HistoryWindow int64 = 1000

// Source reads W&B projects through the API.
type Source struct {
	cfg Config
	api *wandbapi.Client

	mu        sync.Mutex
	estimates map[string]int64  // run origin id -> estimated points, from the listing
	fileBytes map[string]int64  // run origin id -> bytes of its files and logged artifacts, from its page in export form
	fileCount map[string]int64  // run origin id -> files a copy of it carries, when its page in export form tells them all
	lastSteps map[string]int64  // run origin id -> lastStep from the listing; -1: no history
	noSystem  map[string]bool   // run origin id -> the listing shows no system metrics
	noLogs    map[string]bool   // run origin id -> the listing shows no console lines
	spools    map[string]*spool // run origin id -> rich values read by Metrics
	// fingerprints holds, by run origin id, the listing's digest of each
	// run listed (fingerprint.go).
	fingerprints map[string]string
	// tails holds, by run origin id, what the listing tells of whether
	// the run's history tail can be read alone (tail.go).
	tails       map[string]tailInfo
	manifests   map[string]*cachedManifest // artifact id and digest -> its manifest (artifacts.go)
	pages       map[string]*listedPage     // run origin id -> its listing page, until fetched in export form (listing.go)
	extras      map[string]*listedExtras   // run origin id -> what its listing page carried (listing.go)
	ahead       ahead                      // exports downloaded ahead of their run's read (ahead.go)
	extrasBytes int64                      // their size, within ListedExtrasBudget
	readsAll    atomic.Bool                // ReadsEveryRun was called: listings in export form only (listing.go)

	// ManifestFetches counts the artifact manifests downloaded, and
	// ArtifactFileFetches the artifact files opened.
	ManifestFetches, ArtifactFileFetches atomic.Int64
	// FetchedAhead counts the runs whose exports were downloaded ahead
	// of their read (ahead.go).
	FetchedAhead atomic.Int64
	// EventsAskedAhead counts the runs whose system metrics were asked
	// for ahead of their read (ahead.go).
	EventsAskedAhead atomic.Int64
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.RichValueReader = (*Source)(nil)
	_ sources.Checker         = (*Source)(nil)
	_ sources.RunFilterer     = (*Source)(nil)
	_ sources.RunCounter      = (*Source)(nil)
	_ sources.Estimator       = (*Source)(nil)
	_ sources.FileEstimator   = (*Source)(nil)
	_ sources.Retrier         = (*Source)(nil)
	_ sources.Paced           = (*Source)(nil)
	_ sources.EveryRunReader  = (*Source)(nil)
	_ sources.ArtifactLister  = (*Source)(nil)
	_ sources.ManifestLister  = (*Source)(nil)
)

// Open is the sources.Factory function for wandb+https: locations.
func Open(ctx context.Context, loc location.Location) (sources.Source, error) {
	cfg, err := ParseConfig(loc)
	if err != nil {
		return nil, fault.Fatal(err)
	}
	return New(cfg)
}

// New returns a source for cfg. It does no I/O: Check proves the key.
func New(cfg Config) (*Source, error) {
	api, err := wandbapi.New(wandbapi.Config{BaseURL: cfg.BaseURL, APIKey: cfg.APIKey, RetryWaitMin: cfg.RetryWait, RetryWaitMax: 20 * cfg.RetryWait})
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, api: api}, nil
}

// Check proves the key (fatal when refused) and that the project, when
// one is given, exists; without a project, that the entity has at least
// one project visible to the key (an entity that does not exist and one
// without projects look alike through the API: the error says both).
func (s *Source) Check(ctx context.Context) error {
	if _, err := s.api.Viewer(ctx); err != nil {
		return err
	}
	if s.cfg.Project != "" {
		if _, err := s.api.Project(ctx, s.cfg.Entity, s.cfg.Project); err != nil {
			return fault.Fatal(err)
		}
		return nil
	}
	for _, err := range s.api.Projects(ctx, s.cfg.Entity) {
		return err // one project (or the error) is enough
	}
	return fault.Fatal(fmt.Errorf("wandb: entity %q has no project on %s visible to this API key (or does not exist)", s.cfg.Entity, s.cfg.BaseURL))
}

// SetRate caps the requests sent to the server per second (retries and
// downloads included); 0 removes the cap.
func (s *Source) SetRate(perSecond float64) { s.api.SetRate(perSecond) }

// SetRetries bounds the retries of each request and download after a
// passing failure (5xx, a failed connection) to n (--retries); a 429's
// wait is not counted. Without it a request is retried up to 8 times.
func (s *Source) SetRetries(n int) { s.api.SetRetries(n) }

// OnWait sets the function told about every wait the server asked for
// (429 with Retry-After, RateLimit-Remaining 0 until RateLimit-Reset).
func (s *Source) OnWait(f func(reason string, d time.Duration)) { s.api.SetWaitHook(f) }

// Close removes the rich values kept aside (see spool.go); it is safe to
// call more than once.
func (s *Source) Close() error {
	s.closeAhead()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.spools {
		sp.remove()
	}
	s.spools = nil
	return nil
}

// Experiments yields the entity's projects (or the one given), sorted by
// origin.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		var ps []wandbapi.Project
		if s.cfg.Project != "" {
			p, err := s.api.Project(ctx, s.cfg.Entity, s.cfg.Project)
			if err != nil {
				yield(schema.Experiment{}, fault.Fatal(err))
				return
			}
			ps = append(ps, p)
		} else {
			for p, err := range s.api.Projects(ctx, s.cfg.Entity) {
				if err != nil {
					yield(schema.Experiment{}, err)
					return
				}
				ps = append(ps, p)
			}
		}
		slices.SortFunc(ps, func(a, b wandbapi.Project) int { return strings.Compare(a.Name, b.Name) })
		for _, p := range ps {
			if ctx.Err() != nil {
				yield(schema.Experiment{}, ctx.Err())
				return
			}
			id := s.cfg.Entity + "/" + p.Name
			e := schema.Experiment{Origin: schema.Ref{System: System, ID: id}, Name: id, CreatedAt: parseTime(p.CreatedAt),
				Tags: []schema.Tag{{Key: TagPrefix + "entity", Value: s.cfg.Entity}, {Key: TagPrefix + "project", Value: p.Name}}}
			e.Canonicalize()
			if !yield(e, nil) {
				return
			}
		}
	}
}

// split returns the project and run id of an origin under the entity.
func (s *Source) split(id string, parts int) ([]string, error) {
	rest, ok := strings.CutPrefix(id, s.cfg.Entity+"/")
	p := strings.Split(rest, "/")
	if !ok || len(p) != parts {
		return nil, fault.Permanent(fmt.Errorf("wandb: %q is not an origin under entity %s", id, s.cfg.Entity))
	}
	return p, nil
}

// Runs yields the project's runs, oldest first.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return s.FilteredRuns(ctx, exp, sources.RunFilter{})
}

// FilteredRuns yields the project's runs that f may select, oldest first,
// asking the server only for those: the --run ids that can name a run of
// this project become {"name": {"$in": [...]}} (none: no request at all),
// --since and --until bound createdAt, widened to whole seconds (the API's
// times are whole seconds) so that no run f selects is left out.
func (s *Source) FilteredRuns(ctx context.Context, exp schema.Ref, f sources.RunFilter) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		p, err := s.split(exp.ID, 1)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		query, some := runQuery(exp, f)
		if !some {
			return
		}
		for r, err := range s.listRuns(ctx, p[0], query) {
			if err != nil {
				yield(schema.Run{}, err)
				return
			}
			run := s.convert(exp, p[0], r)
			// A run whose listing cannot be digested gets "": it is
			// transferred every time, and its history read says why.
			fp, _ := fingerprint(run, r)
			s.mu.Lock()
			if s.fingerprints == nil {
				s.fingerprints = map[string]string{}
			}
			s.fingerprints[run.Origin.ID] = fp
			if s.estimates == nil {
				s.estimates = map[string]int64{}
			}
			s.estimates[run.Origin.ID] = estimatePoints(r)
			if s.lastSteps == nil {
				s.lastSteps = map[string]int64{}
			}
			if last, ok, err := r.LastStep(); err == nil {
				s.lastSteps[run.Origin.ID] = map[bool]int64{true: last, false: -1}[ok]
			}
			if s.noSystem == nil {
				s.noSystem = map[string]bool{}
			}
			s.noSystem[run.Origin.ID] = !r.HasSystemMetrics()
			if s.noLogs == nil {
				s.noLogs = map[string]bool{}
			}
			s.noLogs[run.Origin.ID] = !r.HasLogLines()
			if s.tails == nil {
				s.tails = map[string]tailInfo{}
			}
			s.tails[run.Origin.ID] = tailOf(r)
			s.mu.Unlock()
			if !yield(run, nil) {
				return
			}
		}
	}
}

// RunCount is the number of the project's runs f may select (W&B's
// runCount with the filters FilteredRuns sends); no request when no --run
// id can name a run of the project.
func (s *Source) RunCount(ctx context.Context, exp schema.Ref, f sources.RunFilter) (int64, error) {
	p, err := s.split(exp.ID, 1)
	if err != nil {
		return 0, err
	}
	query, some := runQuery(exp, f)
	if !some {
		return 0, nil
	}
	return s.api.RunCount(ctx, s.cfg.Entity, p[0], query)
}

// ListingCount is RunCount (one request: the project's runCount with the
// filters its listing sends); ok is false when it fails. See
// sources.ListingCounter.
func (s *Source) ListingCount(ctx context.Context, exp schema.Ref, f sources.RunFilter) (int64, bool) {
	n, err := s.RunCount(ctx, exp, f)
	return n, err == nil
}

// ListsExperiments is true for a location naming a whole entity: `ls`
// lists its projects with run counts.
func (s *Source) ListsExperiments() bool { return s.cfg.Project == "" }

// Estimate is the run's metric points as its listing tells them, without
// reading its history: historyLineCount rows (lastStep+1 when the server
// gives no count) times the history keys whose last value is a number or
// a boolean (an upper bound: a sparse key is not in every row), plus
// eventsLineCount system-metrics rows times the numeric system metrics in
// systemMetrics. Its bytes are those of the run's files (captured code
// only with Config.Code) and of the artifact versions it logged, as the
// run's listing page in export form tells them (asked for once a page of
// runs, as a copy asks it: one request a page of 50 runs); a run with more
// files or logged versions than that page carries (wandbapi.FilesPageSize,
// 50 versions) is estimated from those it carries, and the bytes are 0
// when the page cannot be asked in export form (Config.PagedHistory, a
// server that refuses it). A run not listed by this source is asked for
// (one request), its bytes 0.
func (s *Source) Estimate(ctx context.Context, run schema.Run) (points, bytes int64, ok bool) {
	s.mu.Lock()
	n, ok := s.estimates[run.Origin.ID]
	s.mu.Unlock()
	if ok {
		s.exportPage(ctx, run.Origin.ID)
		s.mu.Lock()
		b := s.fileBytes[run.Origin.ID]
		s.mu.Unlock()
		return n, b, true
	}
	p, err := s.split(run.Origin.ID, 2)
	if err != nil {
		return 0, 0, false
	}
	r, err := s.api.Run(ctx, s.cfg.Entity, p[0], p[1])
	if err != nil {
		return 0, 0, false
	}
	return estimatePoints(r), 0, true
}

// EstimateFiles is how many files a copy of the run carries, as the run's
// listing page in export form tells them (asked for once a page of runs,
// as Estimate asks it): its run files (captured code only with
// Config.Code), for each artifact version it logged the version's
// manifest.json and the files the version stores (the server's fileCount
// of the version), and wandb-used-artifacts.json when it used any. An
// artifact entry whose content the server does not hold is counted (the
// copy names it as a file not copied). ok is false when the listing does
// not tell them all: the page could not be asked in export form
// (Config.PagedHistory, a server that refuses it), the run has more files
// or versions than the page carries, or the server gives no fileCount of
// a version it logged.
func (s *Source) EstimateFiles(ctx context.Context, run schema.Run) (files int64, ok bool) {
	s.exportPage(ctx, run.Origin.ID)
	s.mu.Lock()
	defer s.mu.Unlock()
	files, ok = s.fileCount[run.Origin.ID]
	return files, ok
}

// estimatePoints is Estimate's count for a listed run.
func estimatePoints(r wandbapi.Run) int64 {
	var system int64
	if r.EventsLineCount != nil {
		system = *r.EventsLineCount * r.SystemKeys()
	}
	return historyPoints(r) + system
}

// historyPoints estimates the points of the run's history.
func historyPoints(r wandbapi.Run) int64 {
	rows := r.HistoryLineCount
	if last, ok, _ := r.LastStep(); rows == 0 && ok {
		rows = last + 1
	}
	var hk struct {
		Keys map[string]struct {
			PreviousValue any `json:"previousValue"`
		} `json:"keys"`
	}
	if rows <= 0 || json.Unmarshal(r.HistoryKeys, &hk) != nil {
		return 0
	}
	var keys int64
	for k, v := range hk.Keys {
		switch k {
		case "_step", "_timestamp", "_runtime", "_wandb":
			continue
		}
		switch x := v.PreviousValue.(type) {
		case float64, bool:
			keys++
		case string:
			if x == "NaN" || x == "Infinity" || x == "-Infinity" {
				keys++
			}
		}
	}
	return rows * keys
}

// runQuery turns f into W&B's run filter for the runs of experiment exp;
// some is false when no run of exp can match.
func runQuery(exp schema.Ref, f sources.RunFilter) (q map[string]any, some bool) {
	var and []any
	if len(f.RunIDs) > 0 {
		var names []any
		for _, id := range f.RunIDs {
			// The engine's rule (transfer.Filter.Run): the origin, the
			// origin id, or a suffix of the origin id after a "/".
			id = strings.TrimPrefix(id, System+":")
			name := id[strings.LastIndexByte(id, '/')+1:]
			if name == "" || slices.Contains(names, any(name)) {
				continue
			}
			if full := exp.ID + "/" + name; full == id || strings.HasSuffix(full, "/"+id) {
				names = append(names, name)
			}
		}
		if len(names) == 0 {
			return nil, false
		}
		and = append(and, map[string]any{"name": map[string]any{"$in": names}})
	}
	const layout = "2006-01-02T15:04:05Z"
	if !f.Since.IsZero() {
		and = append(and, map[string]any{"createdAt": map[string]any{"$gte": f.Since.UTC().Truncate(time.Second).Format(layout)}})
	}
	if !f.Until.IsZero() {
		u := f.Until.UTC()
		if t := u.Truncate(time.Second); !t.Equal(u) {
			u = t.Add(time.Second)
		}
		and = append(and, map[string]any{"createdAt": map[string]any{"$lt": u.Format(layout)}})
	}
	switch len(and) {
	case 0:
		return nil, true
	case 1:
		return and[0].(map[string]any), true
	}
	return map[string]any{"$and": and}, true
}

func (s *Source) convert(exp schema.Ref, project string, r wandbapi.Run) schema.Run {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out := schema.Run{
		Origin: schema.Ref{System: System, ID: exp.ID + "/" + r.Name}, Experiment: exp,
		Name: cmpOr(str(r.DisplayName), r.Name), Labels: slices.Clone(r.Tags),
		Notes: str(r.Notes), Group: str(r.Group), JobType: str(r.JobType),
		Host: str(r.Host), GitCommit: str(r.Commit),
		Start: schema.CanonicalTime(parseTime(r.CreatedAt)),
	}
	if r.User != nil {
		out.User = r.User.Username
	}
	if r.HeartbeatAt != nil {
		out.End = schema.CanonicalTime(parseTime(*r.HeartbeatAt))
	}
	tags := map[string]string{"entity": s.cfg.Entity, "project": project, "run_id": r.Name, "sweep_id": str(r.SweepName)}
	switch r.State {
	case "finished":
		out.Status = schema.StatusFinished
	case "failed":
		out.Status = schema.StatusFailed
	case "killed":
		out.Status = schema.StatusKilled
	case "crashed":
		out.Status, tags["state"] = schema.StatusFailed, "crashed"
	case "running":
		out.Status, tags["state"] = schema.StatusRunning, "running"
	default:
		out.Status, tags["state"] = schema.StatusFailed, r.State
		out.Damage = append(out.Damage, fmt.Sprintf("unknown W&B run state %q", r.State))
	}
	env, err := wandbapi.RunEnvironment(r.Config)
	if err != nil {
		out.Damage = append(out.Damage, err.Error())
	}
	out.Program, out.GitRemote = env.Program, env.GitRemote
	out.Host, out.GitCommit, out.User = cmpOr(out.Host, env.Host), cmpOr(out.GitCommit, env.GitCommit), cmpOr(out.User, env.Username)
	var args string
	if len(env.Args) > 0 {
		l := make([]any, len(env.Args))
		for i, a := range env.Args {
			l[i] = a
		}
		args = wandbfile.ValueToJSON(l) // as the folder source renders them
	}
	count := func(n int64) string {
		if n == 0 {
			return ""
		}
		return strconv.FormatInt(n, 10)
	}
	for k, v := range map[string]string{"python": cmpOr(env.Python, env.PythonVersion), "sdk_version": env.CLIVersion,
		"os": env.OS, "args": args, "code_path": env.CodePath, "root": env.Root, "executable": env.Executable,
		"email": env.Email, "docker": env.Docker, "cuda": env.CUDA, "gpu": env.GPU,
		"gpu_count": count(env.GPUCount), "cpu_count": count(env.CPUCount)} {
		tags[k] = v
	}
	if r.Exitcode != nil {
		tags["exit_code"] = strconv.FormatInt(*r.Exitcode, 10)
	}
	axes, err := wandbapi.StepMetrics(r.Config)
	if err != nil {
		out.Damage = append(out.Damage, err.Error())
	}
	for name, axis := range axes {
		tags["step_metric."+name] = axis
	}
	for k, v := range tags {
		if v != "" {
			out.Tags = append(out.Tags, schema.Tag{Key: TagPrefix + k, Value: v})
		}
	}
	cfg, err := wandbapi.UnwrapConfig(r.Config)
	if err != nil {
		out.Damage = append(out.Damage, err.Error())
	} else if len(cfg) > 0 {
		out.Config = compact(cfg)
	}
	if sm := strings.TrimSpace(r.SummaryMetrics); sm != "" && sm != "{}" && sm != "null" {
		v, err := decodeLenient(sm)
		if err != nil {
			out.Damage = append(out.Damage, fmt.Sprintf("summaryMetrics: %v", err))
		} else {
			out.Summary = json.RawMessage(wandbfile.ValueToJSON(v))
		}
	}
	out.Canonicalize()
	return out
}

// compact renders an unwrapped config as one JSON object.
func compact(cfg map[string]json.RawMessage) json.RawMessage {
	m := map[string]any{}
	for k, raw := range cfg {
		v, err := decodeLenient(string(raw))
		if err != nil {
			v = string(raw)
		}
		m[k] = v
	}
	return json.RawMessage(wandbfile.ValueToJSON(m))
}

func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// row is one history row converted by wandbfile.ConvertValues (the
// folder source's conversion): its points and rich values carry the row's
// step and time.
type row struct {
	step   int64
	points []schema.Metric
	rich   []schema.RichValue
}

// convertRow converts one history row, decoded from the API's JSON, with
// wandbfile.ConvertValues, each top-level key an item (the API's nested
// dicts are flattened by it as the folder source flattens them).
func convertRow(m map[string]any) row {
	items := make([]wandbfile.Value, 0, len(m))
	// One backing array for the one-element paths (not one allocation a
	// value): it is never appended to beyond len(m).
	keys := make([]string, 0, len(m))
	for k, v := range m {
		keys = append(keys, k)
		n := len(keys)
		items = append(items, wandbfile.Value{Path: keys[n-1 : n : n], Value: v})
	}
	rv, points := wandbfile.ConvertValues(items, nil)
	for i := range points {
		points[i].Step, points[i].Time = rv.Step, rv.Time
	}
	for i := range rv.Rich {
		rv.Rich[i].Step, rv.Rich[i].Time = rv.Step, rv.Time
	}
	return row{step: rv.Step, points: points, rich: rv.Rich}
}

// history calls fn for every history row of run, in step order: from the
// parquet exports and their live tail when the run has them (unless
// Config.PagedHistory), else with the paged history scan. A row's points
// are fn's only until it returns: fn copies those it keeps.
func (s *Source) history(ctx context.Context, run schema.Ref, fn func(row) error) error {
	p, err := s.split(run.ID, 2)
	if err != nil {
		return err
	}
	// The listing told the run's last step; a run not listed by this
	// source is asked for.
	s.mu.Lock()
	last, listed := s.lastSteps[run.ID]
	s.mu.Unlock()
	if !listed {
		r, err := s.api.Run(ctx, s.cfg.Entity, p[0], p[1])
		if err != nil {
			return err
		}
		l, ok, err := r.LastStep()
		if err != nil {
			return fault.Permanent(fmt.Errorf("wandb: run %s: %v", run.ID, err))
		}
		last = map[bool]int64{true: l, false: -1}[ok]
	}
	if last < 0 {
		return nil
	}
	if !s.cfg.PagedHistory {
		if handled, err := s.exportHistory(ctx, run, p[0], p[1], last, fn); handled || err != nil {
			return err
		}
	}
	return s.pagedHistory(ctx, run, p[0], p[1], 0, last, fn)
}

// pagedHistory calls fn for every history row with from <= step <= last,
// in step order, read with the paged history query in windows of
// HistoryWindow steps (an empty window is not the end).
func (s *Source) pagedHistory(ctx context.Context, run schema.Ref, project, id string, from, last int64, fn func(row) error) error {
	for lo := from; lo <= last; lo += HistoryWindow {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		texts, err := s.api.HistoryPage(ctx, s.cfg.Entity, project, id, lo, lo+HistoryWindow, int(HistoryWindow))
		if err != nil {
			return err
		}
		rows := make([]row, 0, len(texts))
		for i, text := range texts {
			v, err := wandbfile.ParseValueJSON(text)
			m, ok := v.(map[string]any)
			if err != nil || !ok {
				return fault.Permanent(fmt.Errorf("wandb: run %s: history row %d of steps [%d,%d): not a JSON object", run.ID, i, lo, lo+HistoryWindow))
			}
			rows = append(rows, convertRow(m))
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].step < rows[j].step })
		for _, r := range rows {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	return nil
}

// Metrics yields the run's numeric history, PageSize points at a time;
// the rich values met on the way are kept for RichValues (see spool.go).
func (s *Source) Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		sp := &spool{}
		complete := true
		s.mu.Lock()
		hint := s.estimates[run.ID]
		s.mu.Unlock()
		for page, err := range historyPages(ctx, s, run, hint, func(r row) ([]schema.Metric, error) {
			for _, v := range r.rich {
				if err := sp.add(s.cfg.TempDir, v); err != nil {
					return nil, err
				}
			}
			return r.points, nil
		}) {
			if err != nil {
				sp.remove()
				yield(nil, err)
				return
			}
			if !yield(page, nil) {
				complete = false
				break
			}
		}
		if complete {
			s.keepSpool(run.ID, sp)
		} else {
			sp.remove()
		}
	}
}

// RichValues yields the run's non-numeric history values in step order:
// those the run's last complete Metrics kept, else read from the history.
func (s *Source) RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error] {
	if sp := s.takeSpool(run.ID); sp != nil {
		return sp.values()
	}
	return historyPages(ctx, s, run, 0, func(r row) ([]schema.RichValue, error) { return r.rich, nil })
}

// historyPages scans the run's history and yields, PageSize at a time, what
// pick takes from each row.
//
// Pages are made at their size at once, not grown by doubling (a tenth of
// a run's CPU at 10,000 steps of 10 keys went to growing and clearing the
// pages: docs/BENCHMARKS.md): the first at hint (what the run's listing
// tells of its size, Estimate; 0: unknown, the page grows as it fills),
// at most PageSize, and a margin; once a page was yielded, the next at
// PageSize and a margin.
func historyPages[T any](ctx context.Context, s *Source, run schema.Ref, hint int64, pick func(row) ([]T, error)) iter.Seq2[[]T, error] {
	return func(yield func([]T, error) bool) {
		var page []T
		full := false // a page was yielded: the history has PageSize or more
		stopped := false
		err := s.history(ctx, run, func(r row) error {
			got, err := pick(r)
			if err != nil {
				return err
			}
			if page == nil && len(got) > 0 {
				switch {
				case full:
					page = make([]T, 0, PageSize+max(len(got), pageMargin))
				case hint > 0:
					page = make([]T, 0, int(min(hint, PageSize))+max(len(got), pageMargin))
				}
			}
			page = append(page, got...)
			if len(page) >= PageSize {
				if !yield(page, nil) {
					stopped = true
					return errStop
				}
				page, full = nil, true
			}
			return nil
		})
		if stopped {
			return
		}
		if err == nil {
			err = s.systemMetrics(ctx, run, func(r row) error {
				got, err := pick(r)
				page = append(page, got...)
				return err
			})
		}
		if err != nil {
			yield(nil, err)
			return
		}
		if len(page) > 0 {
			yield(page, nil)
		}
	}
}

// systemMetrics calls fn for every system-metrics row of run (run.events),
// as the folder source maps stats records: "system.<key>" becomes the
// metric "system/<key>", the row's index its step, _timestamp its time. A
// run the listing showed without system metrics is not asked.
func (s *Source) systemMetrics(ctx context.Context, run schema.Ref, fn func(row) error) error {
	return s.systemMetricsFrom(ctx, run, 0, fn)
}

// systemMetricsFrom is systemMetrics for the rows from index from on.
func (s *Source) systemMetricsFrom(ctx context.Context, run schema.Ref, from int64, fn func(row) error) error {
	s.mu.Lock()
	none := s.noSystem[run.ID]
	s.mu.Unlock()
	if none {
		return nil
	}
	p, err := s.split(run.ID, 2)
	if err != nil {
		return err
	}
	texts, ok := s.takeEvents(ctx, run.ID)
	if !ok {
		texts, err = s.api.Events(ctx, s.cfg.Entity, p[0], p[1])
		if err != nil {
			return err
		}
	}
	for i, text := range texts {
		if int64(i) < from {
			continue
		}
		v, err := wandbfile.ParseValueJSON(text)
		m, ok := v.(map[string]any)
		if err != nil || !ok {
			return fault.Permanent(fmt.Errorf("wandb: run %s: system metrics row %d: not a JSON object", run.ID, i))
		}
		out := map[string]any{"_step": float64(i)}
		if ts, ok := m["_timestamp"]; ok {
			out["_timestamp"] = ts
		}
		for k, v := range m {
			if name, ok := strings.CutPrefix(k, "system."); ok {
				out["system/"+name] = v
			}
		}
		if err := fn(convertRow(out)); err != nil {
			return err
		}
	}
	return nil
}

var errStop = fmt.Errorf("stopped")
