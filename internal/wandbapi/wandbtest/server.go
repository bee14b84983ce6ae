// Package wandbtest is a W&B API test server: an httptest server that
// answers the GraphQL queries W&B's public API clients send (the Python
// SDK's wandb.Api, wandb-core's history reader, and runferry's own client)
// from data held in memory, usually loaded from the W&B fixtures made by
// the real SDK (see Load).
//
// It answers POST /graphql with HTTP basic auth (user "api", the key given
// to New; any other credential is a 401). What it serves:
//
//	viewer, serverInfo                       the key's user and entity
//	models(entityName, after, first)         projects of an entity, cursor-paged
//	project(name, entityName)                a project: runCount, runs(filters,
//	                                         after, first, order) cursor-paged, run(name)
//	run fields                               id, name, displayName, state, config
//	                                         (W&B's {"k":{"value":…}} JSON, with define_metric
//	                                         in _wandb.m, the writer's environment record in
//	                                         _wandb.e, cli_version and python_version, as
//	                                         wandb-core keeps them), exitcode, summaryMetrics,
//	                                         systemMetrics, tags, notes, group, jobType,
//	                                         commit, host, user, createdAt, heartbeatAt,
//	                                         historyKeys ({"keys":…, "lastStep":N}),
//	                                         historyLineCount, eventsLineCount, logLineCount
//	logLines(first, after,                   the console log (see LogLine): Relay pages in
//	  useImprovedPagination, last)           line order (forward reads need
//	                                         useImprovedPagination: true), or the last N
//	history(minStep, maxStep, samples)       rows as JSON strings; minStep inclusive,
//	                                         maxStep exclusive; more rows than samples are
//	                                         thinned evenly, first and last kept
//	events(samples)                          system-metrics rows as JSON strings, thinned
//	                                         as history is beyond samples
//	sampledHistory(specs)                    per spec {"keys", "minStep", "maxStep"
//	                                         (inclusive), "samples"}: rows holding every key,
//	                                         projected on them
//	parquetHistory(liveKeys)                 signed parquet URLs and the live tail for a
//	                                         run with Export set (see Export); else none,
//	                                         so readers fall back to the paged scan
//	GET /exports/...                         the parquet export files (signed URLs)
//	fileCount, files(names, after, first,    run files (see File); GET /files/... (with
//	  pattern)                               the key) and /storage/... (signed) serve them
//	outputArtifacts, inputArtifacts,         W&B Artifacts (see artifacts.go); GET
//	  artifact(id), artifactCollection       /artifactstore/... (signed) serves manifests
//	                                         and files
//
// A field it does not know is a GraphQL error naming the field, so a query
// shape a client sends that the server does not answer shows at once.
// Run filters (runs and runCount) are applied for the subset filterRuns
// documents; any other field or operator is an error naming it, so a
// client that relies on one sees it.
//
// Choices the real SDK accepts but cannot confirm against W&B's server:
// non-finite numbers are the bare words NaN, Infinity, -Infinity inside
// JSONString values and history rows (Python and wandb-core read them) but
// strings in the answer's own JSON (wandb-core decodes it with
// encoding/json); times are whole seconds without a zone (a console
// line's to the microsecond, as wandb-core writes them); a console line's
// level and label are "" when unset; historyKeys is a
// JSON object; projectId and internalId are numbers; history rows rebuilt
// by Load key nested dicts as the folder source does ("val/acc").
package wandbtest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Data is what the server holds: one entity and its projects.
type Data struct {
	Entity   string
	Username string
	Projects []*Project
	// SyncedAt is when the runs reached the server (Load: its own time);
	// wandb-core stamps console lines as it receives them, so a run
	// synced from an offline folder has its lines stamped from then on.
	SyncedAt time.Time
}

// Project is a W&B project and its runs, in creation order.
type Project struct {
	Name      string
	CreatedAt time.Time
	Runs      []*Run
	// Artifacts are the project's artifact versions (see artifacts.go).
	Artifacts []*Artifact
}

// Run is a W&B run as the API shows it.
type Run struct {
	ID          string // the run id (GraphQL name)
	StorageID   string // the opaque GraphQL id; derived from ID when empty
	DisplayName string
	State       string // running, finished, failed, crashed, killed
	Group       string
	JobType     string
	Notes       string
	Commit      string
	Host        string
	User        string
	SweepName   string
	Tags        []string
	// Config holds plain values; the API wraps each as {"value": v, "desc": null}.
	Config map[string]any
	// StepMetrics holds define_metric's custom x-axes (metric name or
	// glob → step metric); served as W&B does, in config `_wandb` → `m`.
	StepMetrics   map[string]string
	Summary       map[string]any
	SystemMetrics map[string]any
	CreatedAt     time.Time
	HeartbeatAt   time.Time
	// History holds the rows in step order; each has "_step".
	History []map[string]any
	// Generated, when set, stands for History: the rows are made on
	// demand, never held (see Generated).
	Generated *Generated
	// Events are the run's system-metrics rows ("system.<key>" values,
	// _timestamp in seconds, _runtime, _wandb), as run.events serves them.
	Events []map[string]any
	// EventsGenerated, when set, stands for Events: its rows are made on
	// demand, never held (see GeneratedEvents).
	EventsGenerated *GeneratedEvents
	// Export, when set, makes the server hold parquet exports of the
	// history (see Export).
	Export *Export
	// Files are the run's files (see File), sorted by name.
	Files []File
	// Environment is the writer's environment record (protojson, as
	// wandb-metadata.json holds it), served in config `_wandb.e` with
	// CLIVersion and PythonVersion (`_wandb.cli_version`, `python_version`).
	Environment               map[string]any
	CLIVersion, PythonVersion string
	// ExitCode is the run's exit code, nil when it has none.
	ExitCode *int64
	// Logged and Used are the artifact versions (of its project's
	// Artifacts) the run logged and used.
	Logged, Used []*Artifact
	// LogLines are the run's console log, oldest first (see logs.go).
	LogLines []LogLine
}

// Server is a running test server.
type Server struct {
	*httptest.Server
	data *Data
	key  string

	// Requests counts the GraphQL requests answered.
	Requests atomic.Int64
	// RunsListed counts the runs served in runs listings (project.runs).
	RunsListed atomic.Int64
	// RunsPages counts the pages of runs listings served (project.runs
	// fields answered, plain or in export form).
	RunsPages atomic.Int64
	// HistoryReads counts the history and sampledHistory fields answered.
	HistoryReads atomic.Int64
	// EventsReads counts the events (system metrics) fields answered.
	EventsReads atomic.Int64
	// ParquetQueries counts the parquetHistory fields answered.
	ParquetQueries atomic.Int64
	// ExportDownloads counts the parquet export files served.
	ExportDownloads atomic.Int64
	// FileDownloads counts the run files served.
	FileDownloads atomic.Int64
	// LogLinePages counts the logLines fields answered.
	LogLinePages atomic.Int64

	mu sync.Mutex
	// before, when set, runs before every request; returning true means it
	// answered the request itself (fault injection).
	before  func(w http.ResponseWriter, r *http.Request) bool
	urlTTL  time.Duration
	deleted map[string]bool   // run ids deleted
	exports map[string][]byte // export files built, by project/run/index

	// SetLimit's token bucket and latency
	rate, tokens float64
	refilled     time.Time
	latency      time.Duration
	// Limited counts the requests answered 429 by SetLimit's bucket.
	Limited atomic.Int64

	artifacts artifactCounters
}

// New starts a server holding data that accepts key.
func New(data *Data, key string) *Server {
	s := &Server{data: data, key: key}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Data is what the server holds; a test may change it before the server
// is first asked.
func (s *Server) Data() *Data { return s.data }

// Delete removes the run with id from the server (as if deleted in W&B's
// UI): it is listed no more, and asking for it answers null.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted == nil {
		s.deleted = map[string]bool{}
	}
	s.deleted[id] = true
}

// live returns the runs of p not deleted.
func (s *Server) live(p *Project) []*Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deleted) == 0 {
		return p.Runs
	}
	var out []*Run
	for _, r := range p.Runs {
		if !s.deleted[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// Before installs a hook run before every request; it answers the request
// itself by returning true.
func (s *Server) Before(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.before = f
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	before := s.before
	s.mu.Unlock()
	if before != nil && before(w, r) {
		return
	}
	if s.limit(w, r.URL.Path == "/graphql") {
		return
	}
	if strings.HasPrefix(r.URL.Path, "/exports/") && r.Method == http.MethodGet {
		s.serveSigned(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/artifactstore/") && r.Method == http.MethodGet {
		s.serveArtifact(w, r)
		return
	}
	if (strings.HasPrefix(r.URL.Path, "/files/") || strings.HasPrefix(r.URL.Path, "/storage/")) && r.Method == http.MethodGet {
		s.serveFile(w, r, strings.HasPrefix(r.URL.Path, "/storage/"))
		return
	}
	if r.URL.Path != "/graphql" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user != "api" || pass != s.key {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"message":"user is not logged in"}]}`)
		return
	}
	s.Requests.Add(1)
	var body struct {
		Query         string         `json:"query"`
		Variables     map[string]any `json:"variables"`
		OperationName string         `json:"operationName"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
		return
	}
	doc, err := parseDocument(body.Query, body.OperationName)
	if err != nil {
		writeError(w, http.StatusBadRequest, "query: "+err.Error())
		return
	}
	vars := map[string]any{}
	for k, v := range doc.defaults {
		vars[k] = v
	}
	for k, v := range body.Variables {
		vars[k] = v
	}
	out, err := doc.execute(s.root(), doc.op, vars)
	if err != nil {
		writeError(w, http.StatusOK, err.Error())
		return
	}
	b, err := json.Marshal(map[string]any{"data": strictJSON(out)})
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]any{"errors": []any{map[string]any{"message": msg}}, "data": nil})
	w.Write(b)
}

// marshal encodes like encoding/json but writes NaN and ±Inf as the bare
// words NaN, Infinity and -Infinity, as W&B's history rows hold them.
func marshal(v any) ([]byte, error) {
	b, err := json.Marshal(sanitize(v))
	if err != nil {
		return nil, err
	}
	for word, sentinel := range sentinels {
		q, _ := json.Marshal(sentinel)
		b = bytes.ReplaceAll(b, q, []byte(word))
	}
	return b, nil
}

// sentinels stand for the non-finite numbers while encoding/json writes.
var sentinels = map[string]string{"NaN": "\x00NaN\x00", "Infinity": "\x00+Inf\x00", "-Infinity": "\x00-Inf\x00"}

func nonFinite(x float64) string {
	switch {
	case math.IsNaN(x):
		return sentinels["NaN"]
	case math.IsInf(x, 1):
		return sentinels["Infinity"]
	}
	return sentinels["-Infinity"]
}

// strictJSON replaces non-finite numbers by the strings "NaN",
// "Infinity" and "-Infinity" for the answer's own JSON, which W&B's Go
// clients decode with encoding/json (JSONString values keep the bare
// words: they are decoded by W&B's lenient readers).
func strictJSON(v any) any {
	switch x := v.(type) {
	case float64:
		switch {
		case math.IsNaN(x):
			return "NaN"
		case math.IsInf(x, 1):
			return "Infinity"
		case math.IsInf(x, -1):
			return "-Infinity"
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = strictJSON(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = strictJSON(e)
		}
		return l
	}
	return v
}

func sanitize(v any) any {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nonFinite(x)
		}
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = sanitize(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = sanitize(e)
		}
		return l
	}
	return v
}

// jsonString renders v as a JSON string value (a GraphQL JSONString).
func jsonString(v any) string {
	b, err := marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func timeString(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05")
}

func field(v any) func(map[string]any) (any, error) {
	return func(map[string]any) (any, error) { return v, nil }
}

func (s *Server) root() *object {
	return &object{typ: "Query", fields: map[string]func(map[string]any) (any, error){
		"viewer": field(s.viewer()),
		"serverInfo": field(&object{typ: "ServerInfo", fields: map[string]func(map[string]any) (any, error){
			"cliVersionInfo":         field(map[string]any{}),
			"latestLocalVersionInfo": field((*object)(nil)),
			"features":               field([]*object{}),
		}}),
		"models": func(a map[string]any) (any, error) {
			if e, _ := a["entityName"].(string); e != s.data.Entity {
				return pageOf[*Project]("ProjectConnection", nil, a, nil)
			}
			return pageOf("ProjectConnection", s.data.Projects, a, s.project)
		},
		"artifact": func(a map[string]any) (any, error) {
			id, _ := a["id"].(string)
			if p, art := s.artifactByID(id); art != nil {
				return s.artifactObject(p, art), nil
			}
			return (*object)(nil), nil
		},
		"project": func(a map[string]any) (any, error) {
			name, _ := a["name"].(string)
			if e, _ := a["entityName"].(string); e != s.data.Entity {
				return (*object)(nil), nil
			}
			for _, p := range s.data.Projects {
				if p.Name == name {
					return s.project(p), nil
				}
			}
			return (*object)(nil), nil
		},
	}}
}

func (s *Server) viewer() *object {
	return &object{typ: "User", fields: map[string]func(map[string]any) (any, error){
		"id":        field(base64.StdEncoding.EncodeToString([]byte("User:" + s.data.Username))),
		"entity":    field(s.data.Entity),
		"username":  field(s.data.Username),
		"name":      field(s.data.Username),
		"email":     field(nil),
		"flags":     field(nil),
		"admin":     field(false),
		"deletedAt": field(nil),
		"apiKeys": field(&object{typ: "ApiKeyConnection", fields: map[string]func(map[string]any) (any, error){
			"edges": field([]*object{}),
		}}),
		"teams": field(&object{typ: "EntityConnection", fields: map[string]func(map[string]any) (any, error){
			"edges": field([]*object{}),
		}}),
	}}
}

// pageOf returns a Relay connection over items from args after/first.
func pageOf[T any](typ string, items []T, args map[string]any, node func(T) *object) (any, error) {
	start := 0
	if c, ok := args["after"].(string); ok && c != "" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return nil, fmt.Errorf("bad cursor %q", c)
		}
		start = n
	}
	end := len(items)
	if f, ok := args["first"].(float64); ok && start+int(f) < end {
		end = start + int(f)
	}
	start = min(start, len(items))
	var edges []*object
	for i := start; i < end; i++ {
		edges = append(edges, &object{typ: typ[:len(typ)-len("Connection")] + "Edge", fields: map[string]func(map[string]any) (any, error){
			"node":   field(node(items[i])),
			"cursor": field(strconv.Itoa(i + 1)),
		}})
	}
	endCursor := any(nil)
	if end > start {
		endCursor = strconv.Itoa(end)
	}
	return &object{typ: typ, fields: map[string]func(map[string]any) (any, error){
		"edges": field(edges),
		"pageInfo": field(&object{typ: "PageInfo", fields: map[string]func(map[string]any) (any, error){
			"endCursor":   field(endCursor),
			"hasNextPage": field(end < len(items)),
		}}),
		"totalCount": field(len(items)),
	}}, nil
}

func (s *Server) project(p *Project) *object {
	id := base64.StdEncoding.EncodeToString([]byte("Project:" + p.Name))
	filtered := func(a map[string]any) ([]*Run, error) {
		f, _ := a["filters"].(string)
		if a["filters"] != nil && f == "" {
			return nil, fmt.Errorf("filters: want a JSONString, got %T", a["filters"])
		}
		return filterRuns(s.live(p), f)
	}
	return &object{typ: "Project", fields: map[string]func(map[string]any) (any, error){
		"id":          field(id),
		"internalId":  field(s.projectNumber(p)),
		"name":        field(p.Name),
		"entityName":  field(s.data.Entity),
		"createdAt":   field(timeString(p.CreatedAt)),
		"isBenchmark": field(false),
		"readOnly":    field(false),
		"description": field(nil),
		"user":        field(s.viewer()),
		"entity": field(&object{typ: "Entity", fields: map[string]func(map[string]any) (any, error){
			"id": field(s.data.Entity), "name": field(s.data.Entity),
		}}),
		"runCount": func(a map[string]any) (any, error) {
			runs, err := filtered(a)
			if err != nil {
				return nil, err
			}
			return len(runs), nil
		},
		"runs": func(a map[string]any) (any, error) {
			runs, err := filtered(a)
			if err != nil {
				return nil, err
			}
			s.RunsPages.Add(1)
			if o, _ := a["order"].(string); o == "-created_at" {
				runs = slices.Clone(runs)
				slices.Reverse(runs)
			} else if o != "" && o != "+created_at" && o != "created_at" {
				return nil, fmt.Errorf("order %q is not supported by the test server", o)
			}
			return pageOf("RunConnection", runs, a, func(r *Run) *object {
				s.RunsListed.Add(1)
				return s.run(p, r)
			})
		},
		"artifactCollection": func(a map[string]any) (any, error) {
			name, _ := a["name"].(string)
			return s.artifactCollection(p, name), nil
		},
		"run": func(a map[string]any) (any, error) {
			name, _ := a["name"].(string)
			for _, r := range s.live(p) {
				if r.ID == name {
					return s.run(p, r), nil
				}
			}
			return (*object)(nil), nil
		},
	}}
}

// projectNumber is the project's internal id: W&B's clients read it as a
// number.
func (s *Server) projectNumber(p *Project) int {
	return slices.Index(s.data.Projects, p) + 1
}

func (s *Server) run(p *Project, r *Run) *object {
	id := r.StorageID
	if id == "" {
		id = base64.StdEncoding.EncodeToString([]byte("Run:v1:" + r.ID + ":" + p.Name + ":" + s.data.Entity))
	}
	cfg := map[string]any{}
	for k, v := range r.Config {
		cfg[k] = map[string]any{"value": v, "desc": nil}
	}
	internal := map[string]any{}
	if m := metricRecords(r.StepMetrics); m != nil {
		internal["m"] = m
	}
	if len(r.Environment) > 0 {
		internal["e"] = map[string]any{"writer-" + r.ID: r.Environment}
	}
	if r.CLIVersion != "" {
		internal["cli_version"] = r.CLIVersion
	}
	if r.PythonVersion != "" {
		internal["python_version"] = r.PythonVersion
	}
	if len(internal) > 0 {
		cfg["_wandb"] = map[string]any{"value": internal, "desc": nil}
	}
	orNil := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	summary := r.Summary
	if summary == nil {
		summary = map[string]any{}
	}
	sys := r.SystemMetrics
	if sys == nil {
		sys = map[string]any{}
	}
	tags := r.Tags
	if tags == nil {
		tags = []string{}
	}
	user := &object{typ: "User", fields: map[string]func(map[string]any) (any, error){
		"name": field(r.User), "username": field(r.User), "id": field(r.User),
	}}
	return &object{typ: "Run", fields: map[string]func(map[string]any) (any, error){
		"id":               field(id),
		"projectId":        field(s.projectNumber(p)),
		"name":             field(r.ID),
		"displayName":      field(orNil(r.DisplayName)),
		"state":            field(r.State),
		"config":           field(jsonString(cfg)),
		"summaryMetrics":   field(jsonString(summary)),
		"systemMetrics":    field(jsonString(sys)),
		"tags":             field(tags),
		"notes":            field(orNil(r.Notes)),
		"description":      field(orNil(r.Notes)),
		"group":            field(orNil(r.Group)),
		"jobType":          field(orNil(r.JobType)),
		"commit":           field(orNil(r.Commit)),
		"host":             field(orNil(r.Host)),
		"sweepName":        field(orNil(r.SweepName)),
		"readOnly":         field(false),
		"createdAt":        field(timeString(r.CreatedAt)),
		"heartbeatAt":      field(timeString(r.HeartbeatAt)),
		"historyLineCount": field(r.historyLen()),
		"eventsLineCount":  field(r.eventsLen()),
		"exitcode": func(map[string]any) (any, error) {
			if r.ExitCode == nil {
				return nil, nil
			}
			return *r.ExitCode, nil
		},
		"user":        field(user),
		"historyKeys": field(historyKeys(r)),
		"history": func(a map[string]any) (any, error) {
			s.HistoryReads.Add(1)
			lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
			if v, ok := a["minStep"].(float64); ok {
				lo = int64(v)
			}
			if v, ok := a["maxStep"].(float64); ok {
				hi = int64(v)
			}
			samples := 500
			if v, ok := a["samples"].(float64); ok {
				samples = int(v)
			}
			var rows []map[string]any
			r.eachRow(lo, hi, func(row map[string]any) { rows = append(rows, row) })
			out := []string{}
			for _, row := range thin(rows, samples) {
				out = append(out, jsonString(row))
			}
			return out, nil
		},
		"sampledHistory": func(a map[string]any) (any, error) {
			s.HistoryReads.Add(1)
			specs, _ := a["specs"].([]any)
			var out []any
			for _, sp := range specs {
				var spec struct {
					Keys    []string `json:"keys"`
					MinStep *int64   `json:"minStep"`
					MaxStep *int64   `json:"maxStep"`
					Samples int      `json:"samples"`
				}
				str, _ := sp.(string)
				if err := json.Unmarshal([]byte(str), &spec); err != nil {
					return nil, fmt.Errorf("bad spec %q: %v", str, err)
				}
				var rows []map[string]any
				lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
				if spec.MinStep != nil {
					lo = *spec.MinStep
				}
				if spec.MaxStep != nil && *spec.MaxStep < math.MaxInt64 {
					hi = *spec.MaxStep + 1
				}
				r.eachRow(lo, hi, func(row map[string]any) {
					proj := map[string]any{}
					for _, k := range spec.Keys {
						v, ok := row[k]
						if !ok {
							return
						}
						proj[k] = v
					}
					rows = append(rows, proj)
				})
				if spec.Samples == 0 {
					spec.Samples = 500
				}
				l := []any{}
				for _, row := range thin(rows, spec.Samples) {
					l = append(l, row)
				}
				out = append(out, l)
			}
			return out, nil
		},
		"events": func(a map[string]any) (any, error) {
			s.EventsReads.Add(1)
			samples := 500
			if v, ok := a["samples"].(float64); ok {
				samples = int(v)
			}
			out := []string{}
			if g := r.EventsGenerated; g != nil {
				for _, i := range thinIndex(g.Rows, samples) {
					out = append(out, jsonString(g.Row(i)))
				}
				return out, nil
			}
			for _, row := range thin(r.Events, samples) {
				out = append(out, jsonString(row))
			}
			return out, nil
		},
		"parquetHistory": func(a map[string]any) (any, error) { return s.parquetHistory(p, r, a) },
		"fileCount":      field(len(r.Files)),
		"files":          func(a map[string]any) (any, error) { return s.files(p, r, a) },
		"logLineCount":   field(len(r.LogLines)),
		"logLines":       func(a map[string]any) (any, error) { return s.logLines(r, a) },
		"outputArtifacts": func(a map[string]any) (any, error) {
			return pageOf("ArtifactConnection", r.Logged, a, func(x *Artifact) *object { return s.artifactObject(p, x) })
		},
		"inputArtifacts": func(a map[string]any) (any, error) {
			return pageOf("ArtifactConnection", r.Used, a, func(x *Artifact) *object { return s.artifactObject(p, x) })
		},
	}}
}

func stepOf(row map[string]any) int64 {
	switch v := row["_step"].(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	}
	return 0
}

// thin keeps at most n rows, evenly spread, the first and last kept.
func thin(rows []map[string]any, n int) []map[string]any {
	if n <= 0 || len(rows) <= n {
		return rows
	}
	out := make([]map[string]any, 0, n)
	for _, i := range thinIndex(len(rows), n) {
		out = append(out, rows[i])
	}
	return out
}

// thinIndex is the indexes of the rows thin keeps of rows rows.
func thinIndex(rows, n int) []int {
	if n <= 0 || rows <= n {
		n = rows
	}
	if n == 1 || rows == 0 {
		return make([]int, n)
	}
	out := make([]int, 0, n)
	for i := range n {
		out = append(out, i*(rows-1)/(n-1))
	}
	return out
}

// historyKeys is the run's historyKeys, a JSON object (not a JSONString):
// every key with its last value, and lastStep, left out for a run without
// history (clients then take -1).
func historyKeys(r *Run) any {
	keys := map[string]any{}
	rows := r.History
	if n := r.historyLen(); r.Generated != nil && n > 0 {
		rows = []map[string]any{r.rowAt(n - 1)} // every row has every key
	}
	for _, row := range rows {
		for k, v := range row {
			keys[k] = map[string]any{"previousValue": v}
		}
	}
	hk := map[string]any{"keys": keys}
	if n := r.historyLen(); n > 0 {
		hk["lastStep"] = stepOf(r.rowAt(n - 1))
	}
	return hk
}

// metricRecords renders define_metric's step metrics as W&B keeps them in
// config `_wandb` → `m`: MetricRecords keyed by proto field number, each
// step metric first with its own record ("1" name, "6" options: [3]
// defined), then each metric ("1" name, or "2" for a glob) with "5" the
// 1-based index of its step metric's record. Sorted, so the same
// definitions give the same JSON.
func metricRecords(axes map[string]string) []any {
	if len(axes) == 0 {
		return nil
	}
	var m []any
	index := map[string]int{}
	for _, name := range slices.Sorted(maps.Keys(axes)) {
		axis := axes[name]
		if _, ok := index[axis]; !ok {
			m = append(m, map[string]any{"1": axis, "6": []any{3}, "7": []any{}})
			index[axis] = len(m)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(axes)) {
		field := "1"
		if strings.Contains(name, "*") {
			field = "2"
		}
		m = append(m, map[string]any{field: name, "5": index[axes[name]], "6": []any{1}, "7": []any{}})
	}
	return m
}
