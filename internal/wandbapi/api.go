package wandbapi

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"sort"
	"strings"

	"github.com/runferry/runferry/internal/fault"
)

// Viewer is the user the key belongs to.
type Viewer struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Entity   string `json:"entity"`
}

// Viewer proves the key: it returns the key's user, or a fatal error.
func (c *Client) Viewer(ctx context.Context) (Viewer, error) {
	var out struct {
		Viewer *Viewer `json:"viewer"`
	}
	if err := c.Query(ctx, `query Viewer { viewer { id username entity } }`, nil, &out); err != nil {
		if fault.KindOf(err) == fault.KindPermanent {
			err = fault.Fatal(err)
		}
		return Viewer{}, err
	}
	if out.Viewer == nil {
		return Viewer{}, fault.Fatal(fmt.Errorf("wandb: %s does not know the API key (no viewer): check WANDB_API_KEY or ~/.netrc", c.host))
	}
	return *out.Viewer, nil
}

// Project is a W&B project.
type Project struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	EntityName string `json:"entityName"`
	CreatedAt  string `json:"createdAt"`
}

type pageInfo struct {
	EndCursor   *string `json:"endCursor"`
	HasNextPage bool    `json:"hasNextPage"`
}

// ProjectsPageSize is how many projects one request asks for.
const ProjectsPageSize = 100

const projectsQuery = `query Projects($entity: String!, $cursor: String, $perPage: Int!) {
  models(entityName: $entity, after: $cursor, first: $perPage) {
    pageInfo { endCursor hasNextPage }
    edges { node { id name entityName createdAt } }
  }
}`

// Projects yields the projects of entity, in the server's order.
func (c *Client) Projects(ctx context.Context, entity string) iter.Seq2[Project, error] {
	return func(yield func(Project, error) bool) {
		var cursor *string
		for {
			var out struct {
				Models *struct {
					PageInfo pageInfo `json:"pageInfo"`
					Edges    []struct {
						Node Project `json:"node"`
					} `json:"edges"`
				} `json:"models"`
			}
			err := c.Query(ctx, projectsQuery, map[string]any{"entity": entity, "cursor": cursor, "perPage": ProjectsPageSize}, &out)
			if err != nil {
				yield(Project{}, err)
				return
			}
			if out.Models == nil {
				yield(Project{}, fault.Fatal(fmt.Errorf("wandb: entity %q not found on %s", entity, c.host)))
				return
			}
			for _, e := range out.Models.Edges {
				if !yield(e.Node, nil) {
					return
				}
			}
			if !out.Models.PageInfo.HasNextPage || out.Models.PageInfo.EndCursor == nil {
				return
			}
			cursor = out.Models.PageInfo.EndCursor
		}
	}
}

// Project returns one project; a project (or entity) that does not exist
// is a permanent error naming it.
func (c *Client) Project(ctx context.Context, entity, name string) (Project, error) {
	var out struct {
		Project *Project `json:"project"`
	}
	q := `query Project($entity: String!, $project: String!) {
  project(name: $project, entityName: $entity) { id name entityName createdAt }
}`
	if err := c.Query(ctx, q, map[string]any{"entity": entity, "project": name}, &out); err != nil {
		return Project{}, err
	}
	if out.Project == nil {
		return Project{}, fault.Permanent(fmt.Errorf("wandb: project %s/%s not found on %s", entity, name, c.host))
	}
	return *out.Project, nil
}

// User is a run's user.
type User struct {
	Name     string `json:"name"`
	Username string `json:"username"`
}

// Run is a run as the API lists it. JSON-valued fields are kept raw.
type Run struct {
	ID               string          `json:"id"`
	Name             string          `json:"name"` // the run id
	DisplayName      *string         `json:"displayName"`
	State            string          `json:"state"`
	Config           string          `json:"config"`
	SummaryMetrics   string          `json:"summaryMetrics"`
	SystemMetrics    string          `json:"systemMetrics"`
	Tags             []string        `json:"tags"`
	Notes            *string         `json:"notes"`
	Group            *string         `json:"group"`
	JobType          *string         `json:"jobType"`
	Commit           *string         `json:"commit"`
	Host             *string         `json:"host"`
	SweepName        *string         `json:"sweepName"`
	CreatedAt        string          `json:"createdAt"`
	HeartbeatAt      *string         `json:"heartbeatAt"`
	Exitcode         *int64          `json:"exitcode"`
	HistoryLineCount int64           `json:"historyLineCount"`
	EventsLineCount  *int64          `json:"eventsLineCount"` // system-metrics rows
	LogLineCount     *int64          `json:"logLineCount"`    // console lines
	FileCount        *int64          `json:"fileCount"`       // run files
	HistoryKeys      json.RawMessage `json:"historyKeys"`     // a JSON object, not a JSONString
	User             *User           `json:"user"`
}

// LastStep reads lastStep from historyKeys; ok is false when the run has
// no history.
func (r Run) LastStep() (step int64, ok bool, err error) {
	if len(r.HistoryKeys) == 0 || string(r.HistoryKeys) == "null" {
		return 0, false, nil
	}
	var hk struct {
		LastStep *int64 `json:"lastStep"`
	}
	if err := json.Unmarshal(r.HistoryKeys, &hk); err != nil {
		return 0, false, fmt.Errorf("historyKeys: %v", err)
	}
	if hk.LastStep == nil {
		return 0, false, nil
	}
	return *hk.LastStep, true, nil
}

// RunFields is the selection runferry asks for every run: everything the
// run's schema.Run needs, asked for explicitly.
const RunFields = `id name displayName state config summaryMetrics systemMetrics tags notes group jobType
  commit host sweepName createdAt heartbeatAt exitcode historyLineCount eventsLineCount logLineCount fileCount historyKeys user { name username }`

// RunsPageSize is how many runs one request asks for.
const RunsPageSize = 50

const runsQuery = `query Runs($entity: String!, $project: String!, $cursor: String, $perPage: Int!, $filters: JSONString) {
  project(name: $project, entityName: $entity) {
    runs(filters: $filters, after: $cursor, first: $perPage, order: "+created_at") {
      pageInfo { endCursor hasNextPage }
      edges { node { ` + RunFields + ` } }
    }
  }
}`

// Runs yields the runs of entity/project, oldest first.
func (c *Client) Runs(ctx context.Context, entity, project string) iter.Seq2[Run, error] {
	return c.RunsWhere(ctx, entity, project, nil)
}

// RunsWhere yields the runs of entity/project that match filters, oldest
// first. filters is W&B's MongoDB-like run filter (the SDK's
// `api.runs(path, filters=...)`), e.g. {"name": {"$in": ["a1", "b2"]}} or
// {"createdAt": {"$gte": "2024-01-01T00:00:00Z"}}; nil means all runs.
func (c *Client) RunsWhere(ctx context.Context, entity, project string, filters map[string]any) iter.Seq2[Run, error] {
	return runListing[Run](ctx, c, entity, project, filters, runsQuery, nil)
}

// RunCount returns how many runs of entity/project match filters (see
// RunsWhere; nil means all).
func (c *Client) RunCount(ctx context.Context, entity, project string, filters map[string]any) (int64, error) {
	fjson := "{}"
	if len(filters) > 0 {
		b, err := json.Marshal(filters)
		if err != nil {
			return 0, fault.Permanent(fmt.Errorf("wandb: run filter: %v", err))
		}
		fjson = string(b)
	}
	q := `query RunCount($entity: String!, $project: String!, $filters: JSONString) {
  project(name: $project, entityName: $entity) { runCount(filters: $filters) }
}`
	var out struct {
		Project *struct {
			RunCount *int64 `json:"runCount"`
		} `json:"project"`
	}
	if err := c.Query(ctx, q, map[string]any{"entity": entity, "project": project, "filters": fjson}, &out); err != nil {
		return 0, err
	}
	if out.Project == nil {
		return 0, fault.Permanent(fmt.Errorf("wandb: project %s/%s not found on %s", entity, project, c.host))
	}
	if out.Project.RunCount == nil {
		return 0, fault.Permanent(fmt.Errorf("wandb: %s gave no runCount for project %s/%s", c.host, entity, project))
	}
	return *out.Project.RunCount, nil
}

// Run returns one run; one that does not exist is a permanent error.
func (c *Client) Run(ctx context.Context, entity, project, id string) (Run, error) {
	q := `query Run($entity: String!, $project: String!, $run: String!) {
  project(name: $project, entityName: $entity) { run(name: $run) { ` + RunFields + ` } }
}`
	var out struct {
		Project *struct {
			Run *Run `json:"run"`
		} `json:"project"`
	}
	if err := c.Query(ctx, q, map[string]any{"entity": entity, "project": project, "run": id}, &out); err != nil {
		return Run{}, err
	}
	if out.Project == nil || out.Project.Run == nil {
		return Run{}, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host))
	}
	return *out.Project.Run, nil
}

const historyQuery = `query HistoryPage($entity: String!, $project: String!, $run: String!, $minStep: Int64!, $maxStep: Int64!, $pageSize: Int!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { history(minStep: $minStep, maxStep: $maxStep, samples: $pageSize) }
  }
}`

// HistoryPage returns the run's history rows with minStep <= _step <
// maxStep, each a JSON object as text (W&B writes NaN and infinities as
// bare words). pageSize must be at least maxStep-minStep, so that the
// server has no reason to sample.
func (c *Client) HistoryPage(ctx context.Context, entity, project, id string, minStep, maxStep int64, pageSize int) ([]string, error) {
	var out struct {
		Project *struct {
			Run *struct {
				History []string `json:"history"`
			} `json:"run"`
		} `json:"project"`
	}
	vars := map[string]any{"entity": entity, "project": project, "run": id, "minStep": minStep, "maxStep": maxStep, "pageSize": pageSize}
	if err := c.Query(ctx, historyQuery, vars, &out); err != nil {
		return nil, err
	}
	if out.Project == nil || out.Project.Run == nil {
		return nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host))
	}
	return out.Project.Run.History, nil
}

// UnwrapConfig turns the API's config JSON ({"key": {"value": v, "desc":
// ...}}) into plain values, dropping W&B's internal "_wandb" key.
func UnwrapConfig(s string) (map[string]json.RawMessage, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var wrapped map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &wrapped); err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	out := map[string]json.RawMessage{}
	for k, v := range wrapped {
		if k == "_wandb" {
			continue
		}
		var w struct {
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(v, &w); err != nil || w.Value == nil {
			out[k] = v // not wrapped: keep as is
			continue
		}
		out[k] = w.Value
	}
	return out, nil
}

// StepMetrics returns the custom x-axes define_metric gave a run, from the
// API's config JSON: metric name or glob ("val/*") → its step metric.
// W&B keeps the definitions in config `_wandb` → `m`, a list of
// MetricRecords keyed by proto field number ("1" name, "2" glob name, "4"
// step metric, "5" step_metric_index: the 1-based position in the list of
// the step metric's own record). Definitions without a step metric are
// left out; nil when there is none. An `m` that is not such a list, or an
// index outside it, is an error.
func StepMetrics(config string) (map[string]string, error) {
	if strings.TrimSpace(config) == "" {
		return nil, nil
	}
	var wrapped struct {
		Wandb *struct {
			Value struct {
				M json.RawMessage `json:"m"`
			} `json:"value"`
		} `json:"_wandb"`
	}
	if err := json.Unmarshal([]byte(config), &wrapped); err != nil {
		return nil, fmt.Errorf("config: %v", err)
	}
	if wrapped.Wandb == nil || len(wrapped.Wandb.Value.M) == 0 || string(wrapped.Wandb.Value.M) == "null" {
		return nil, nil
	}
	var defs []struct {
		Name       string `json:"1"`
		Glob       string `json:"2"`
		StepMetric string `json:"4"`
		StepIndex  int    `json:"5"`
	}
	if err := json.Unmarshal(wrapped.Wandb.Value.M, &defs); err != nil {
		return nil, fmt.Errorf("config _wandb.m (define_metric): %v", err)
	}
	var out map[string]string
	for i, d := range defs {
		axis := d.StepMetric
		if axis == "" && d.StepIndex != 0 {
			if d.StepIndex < 1 || d.StepIndex > len(defs) || defs[d.StepIndex-1].Name == "" {
				return nil, fmt.Errorf("config _wandb.m (define_metric): definition %d names step metric %d of %d", i+1, d.StepIndex, len(defs))
			}
			axis = defs[d.StepIndex-1].Name
		}
		name := cmpOr(d.Name, d.Glob)
		if axis == "" || name == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = axis
	}
	return out, nil
}

// Environment is what W&B's SDK records of the machine and program that
// wrote a run, as the server keeps it in the run's config (`_wandb`):
// cli_version, python_version, and the environment records of its writers
// (`e`: writer id → the EnvironmentRecord as protojson, the same document
// as the run file wandb-metadata.json).
type Environment struct {
	CLIVersion, PythonVersion                                  string
	OS, Python, Program, CodePath, Root, Host, Username, Email string
	Executable, Docker, CUDA, GPU, GitRemote, GitCommit        string
	Args                                                       []string
	CPUCount, GPUCount                                         int64
}

// RunEnvironment reads the Environment from a run's config JSONString;
// with several writers, each field comes from the earliest writer
// (startedAt) that has it.
func RunEnvironment(config string) (Environment, error) {
	var env Environment
	if strings.TrimSpace(config) == "" {
		return env, nil
	}
	var wrapped struct {
		Wandb *struct {
			Value struct {
				CLIVersion    string                     `json:"cli_version"`
				PythonVersion string                     `json:"python_version"`
				E             map[string]json.RawMessage `json:"e"`
			} `json:"value"`
		} `json:"_wandb"`
	}
	if err := json.Unmarshal([]byte(config), &wrapped); err != nil {
		return env, fmt.Errorf("config: %v", err)
	}
	if wrapped.Wandb == nil {
		return env, nil
	}
	v := wrapped.Wandb.Value
	env.CLIVersion, env.PythonVersion = v.CLIVersion, v.PythonVersion
	type record struct {
		OS         string   `json:"os"`
		Python     string   `json:"python"`
		StartedAt  string   `json:"startedAt"`
		Docker     string   `json:"docker"`
		Args       []string `json:"args"`
		Program    string   `json:"program"`
		CodePath   string   `json:"codePath"`
		Email      string   `json:"email"`
		Root       string   `json:"root"`
		Host       string   `json:"host"`
		Username   string   `json:"username"`
		Executable string   `json:"executable"`
		CPUCount   int64    `json:"cpu_count"`
		GPU        string   `json:"gpu"`
		GPUCount   int64    `json:"gpu_count"`
		CUDA       string   `json:"cudaVersion"`
		Git        *struct {
			Remote string `json:"remote"`
			Commit string `json:"commit"`
		} `json:"git"`
	}
	var recs []record
	for w, raw := range v.E {
		var r record
		if err := json.Unmarshal(raw, &r); err != nil {
			return env, fmt.Errorf("config _wandb.e (environment of writer %q): %v", w, err)
		}
		recs = append(recs, r)
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].StartedAt < recs[j].StartedAt })
	first := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	for _, r := range recs {
		first(&env.OS, r.OS)
		first(&env.Python, r.Python)
		first(&env.Program, r.Program)
		first(&env.CodePath, r.CodePath)
		first(&env.Root, r.Root)
		first(&env.Host, r.Host)
		first(&env.Username, r.Username)
		first(&env.Email, r.Email)
		first(&env.Executable, r.Executable)
		first(&env.Docker, r.Docker)
		first(&env.CUDA, r.CUDA)
		first(&env.GPU, r.GPU)
		if r.Git != nil {
			first(&env.GitRemote, r.Git.Remote)
			first(&env.GitCommit, r.Git.Commit)
		}
		if env.Args == nil {
			env.Args = r.Args
		}
		if env.CPUCount == 0 {
			env.CPUCount = r.CPUCount
		}
		if env.GPUCount == 0 {
			env.GPUCount = r.GPUCount
		}
	}
	return env, nil
}

// EventsSamples is how many system-metrics rows one events request asks
// for: the server samples a run's system metrics only beyond that.
var EventsSamples = 100000

// Events returns the run's system-metrics rows (run.events, as the SDK's
// history(stream="system") asks for them), each a JSON object as text:
// "system.<key>" values with _timestamp (seconds) and _runtime.
func (c *Client) Events(ctx context.Context, entity, project, id string) ([]string, error) {
	var out struct {
		Project *struct {
			Run *struct {
				Events []string `json:"events"`
			} `json:"run"`
		} `json:"project"`
	}
	q := `query RunEvents($entity: String!, $project: String!, $run: String!, $samples: Int) {
  project(name: $project, entityName: $entity) { run(name: $run) { events(samples: $samples) } }
}`
	if err := c.Query(ctx, q, map[string]any{"entity": entity, "project": project, "run": id, "samples": EventsSamples}, &out); err != nil {
		return nil, err
	}
	if out.Project == nil || out.Project.Run == nil {
		return nil, fault.Permanent(fmt.Errorf("wandb: run %s/%s/%s not found on %s", entity, project, id, c.host))
	}
	return out.Project.Run.Events, nil
}

// HasLogLines reports whether the run's console log is worth asking for:
// its logLineCount is not 0 (or the server gives none).
func (r Run) HasLogLines() bool {
	return r.LogLineCount == nil || *r.LogLineCount > 0
}

// HasSystemMetrics reports whether the run has system-metrics rows worth
// asking for: its eventsLineCount, or when the server gives none, its
// systemMetrics (the latest values) holding any.
func (r Run) HasSystemMetrics() bool {
	if r.EventsLineCount != nil {
		return *r.EventsLineCount > 0
	}
	s := strings.TrimSpace(r.SystemMetrics)
	return s != "" && s != "{}" && s != "null"
}

// SystemKeys counts the numeric system metrics in systemMetrics.
func (r Run) SystemKeys() int64 {
	var m map[string]any
	if json.Unmarshal([]byte(r.SystemMetrics), &m) != nil {
		return 0
	}
	var n int64
	for k, v := range m {
		switch v.(type) {
		case float64, bool:
			if !strings.HasPrefix(k, "_") {
				n++
			}
		}
	}
	return n
}
