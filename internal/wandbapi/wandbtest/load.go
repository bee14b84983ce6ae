package wandbtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"maps"
	"mime"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runferry/runferry/schema"
)

// Reader is what Load needs of a source: the methods of sources.Source and
// sources.RichValueReader (declared here so the test server stays below
// the adapters).
type Reader interface {
	Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error]
	Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error]
	Metrics(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.Metric, error]
	RichValues(ctx context.Context, run schema.Ref) iter.Seq2[[]schema.RichValue, error]
}

// Load reads every run of src (a wandb: folder source) into Data for
// entity, as W&B's cloud would show the same runs once synced: projects
// named by the experiments' last path element, run ids, display names,
// config, define_metric's step metrics (the wandb.step_metric.* tags),
// summary, tags (labels), notes, group, job type, host, commit,
// user, the environment (the folder's environment tags, program and git
// remote as the writer's environment record; sdk_version and python as
// cli_version and python_version; exit_code as exitcode),
// state (from the status and the wandb.state tag), start as
// createdAt and end as heartbeatAt, and history rows rebuilt from the
// metrics and rich values with _step and _timestamp (seconds), system
// metrics apart (the API keeps them apart): the run's events, one row per
// sample ("system.<key>", _timestamp, _runtime), their latest values its
// systemMetrics. When src also reads console output (Logs), its lines
// become the run's LogLines, stamped from Data.SyncedAt (see loadLogs).
// When src also lists files
// (Artifacts, as the folder source does), they become the run's files:
// every file it can open, under its path, except the W&B Artifacts the
// folder source carries under schema.ArtifactFolder: when src lists them
// (Manifests), the versions a run logged become the project's Artifacts
// (see loadArtifacts), with the entries' content the folder had.
func Load(ctx context.Context, src Reader, entity, username string) (*Data, error) {
	d := &Data{Entity: entity, Username: username, SyncedAt: time.Now().UTC().Truncate(time.Microsecond)}
	for exp, err := range src.Experiments(ctx) {
		if err != nil {
			return nil, err
		}
		p := &Project{Name: exp.Origin.ID[strings.LastIndex(exp.Origin.ID, "/")+1:], CreatedAt: exp.CreatedAt}
		for r, err := range src.Runs(ctx, exp.Origin) {
			if err != nil {
				return nil, err
			}
			wr, err := loadRun(ctx, src, r)
			if err != nil {
				return nil, fmt.Errorf("run %s: %w", r.Origin.ID, err)
			}
			var stored map[string][]byte
			if f, ok := src.(filer); ok {
				if wr.Files, stored, err = loadFiles(ctx, f, r); err != nil {
					return nil, fmt.Errorf("run %s: %w", r.Origin.ID, err)
				}
			}
			if l, ok := src.(logger); ok {
				if wr.LogLines, err = loadLogs(ctx, l, r, d.SyncedAt); err != nil {
					return nil, fmt.Errorf("run %s: %w", r.Origin.ID, err)
				}
			}
			if m, ok := src.(manifester); ok {
				if err := loadArtifacts(ctx, m, r, p, wr, stored); err != nil {
					return nil, fmt.Errorf("run %s: %w", r.Origin.ID, err)
				}
			}
			p.Runs = append(p.Runs, wr)
		}
		latestAliases(p)
		d.Projects = append(d.Projects, p)
	}
	return d, nil
}

// filer is a source that lists run files (sources.ArtifactLister).
type filer interface {
	Artifacts(ctx context.Context, run schema.Ref) iter.Seq2[schema.Artifact, error]
}

// loadFiles reads the run's files; those under schema.ArtifactFolder (the
// entries of the artifact versions it logged, and their manifests) and
// schema.UsedArtifactsFile are the cloud's artifacts, not run files: their
// contents come back in stored, by path.
func loadFiles(ctx context.Context, src filer, r schema.Run) ([]File, map[string][]byte, error) {
	var out []File
	stored := map[string][]byte{}
	for a, err := range src.Artifacts(ctx, r.Origin) {
		if err != nil {
			return nil, nil, err
		}
		if a.Open == nil {
			continue
		}
		rc, err := a.Open(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("file %s: %w", a.Path, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("file %s: %w", a.Path, err)
		}
		if strings.HasPrefix(a.Path, schema.ArtifactFolder+"/") || a.Path == schema.UsedArtifactsFile {
			stored[a.Path] = b
			continue
		}
		mt := mime.TypeByExtension(path.Ext(a.Path))
		if mt == "" {
			mt = "application/octet-stream"
		}
		out = append(out, File{Name: a.Path, Content: b, Mimetype: mt, UpdatedAt: r.End})
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return out, stored, nil
}

// manifester is a source that lists the artifact versions its runs logged
// and used (sources.ManifestLister).
type manifester interface {
	Manifests(ctx context.Context, run schema.Ref) iter.Seq2[schema.ArtifactManifest, error]
}

// loadArtifacts adds the versions the run logged to the project, as W&B's
// server would hold them once synced: numbered v0, v1, … per name in the
// order logged, each entry's content from stored (the run file under the
// version's folder) when the source had it. A version used that the
// project holds (same name and version) is linked as used.
func loadArtifacts(ctx context.Context, src manifester, r schema.Run, p *Project, wr *Run, stored map[string][]byte) error {
	for m, err := range src.Manifests(ctx, r.Origin) {
		if err != nil {
			return err
		}
		if m.Role == schema.ArtifactUsed {
			for _, a := range p.Artifacts {
				if a.Name == m.Name && (a.version() == m.Version || m.Digest != "" && a.Digest == m.Digest) {
					wr.Used = append(wr.Used, a)
				}
			}
			continue
		}
		idx := 0
		for _, a := range p.Artifacts {
			if a.Name == m.Name {
				idx++
			}
		}
		a := &Artifact{Name: m.Name, Type: m.Type, VersionIndex: idx, Digest: m.Digest, Description: m.Description,
			Metadata: m.Metadata, Tags: m.Tags, CreatedAt: r.Start} // the server's own id, not the SDK's client id
		for _, al := range m.Aliases {
			if al != "latest" {
				a.Aliases = append(a.Aliases, al)
			}
		}
		for _, e := range m.Entries {
			ae := ArtifactEntry{Path: e.Path, Digest: e.Digest, Size: e.Size, Ref: e.Ref}
			if b, ok := stored[m.Folder()+"/"+e.Path]; ok && e.Ref == "" && entryDigest(b) == e.Digest {
				ae.Content = b
			}
			a.Entries = append(a.Entries, ae)
		}
		p.Artifacts = append(p.Artifacts, a)
		wr.Logged = append(wr.Logged, a)
	}
	return nil
}

// latestAliases gives "latest" to the newest version of each artifact name,
// as W&B's server moves it.
func latestAliases(p *Project) {
	newest := map[string]*Artifact{}
	for _, a := range p.Artifacts {
		newest[a.Name] = a
	}
	for _, a := range newest {
		a.Aliases = append(a.Aliases, "latest")
	}
}

func loadRun(ctx context.Context, src Reader, r schema.Run) (*Run, error) {
	tag := func(k string) string {
		for _, t := range r.Tags {
			if t.Key == "wandb."+k {
				return t.Value
			}
		}
		return ""
	}
	state := map[schema.RunStatus]string{schema.StatusFinished: "finished", schema.StatusFailed: "failed",
		schema.StatusKilled: "killed", schema.StatusRunning: "running"}[r.Status]
	if s := tag("state"); s != "" {
		state = s
	}
	wr := &Run{
		ID: r.Origin.ID[strings.LastIndex(r.Origin.ID, "/")+1:], DisplayName: r.Name, State: state,
		Group: r.Group, JobType: r.JobType, Notes: r.Notes, Commit: r.GitCommit, Host: r.Host, User: r.User,
		SweepName: tag("sweep_id"), Tags: r.Labels, CreatedAt: r.Start, HeartbeatAt: r.End,
	}
	wr.CLIVersion, wr.PythonVersion = tag("sdk_version"), tag("python")
	if c := tag("exit_code"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tag wandb.exit_code %q: %w", c, err)
		}
		wr.ExitCode = &n
	}
	env := map[string]any{}
	for k, name := range map[string]string{"os": "os", "python": "python", "code_path": "codePath", "root": "root",
		"executable": "executable", "email": "email", "docker": "docker", "cuda": "cudaVersion", "gpu": "gpu"} {
		if v := tag(k); v != "" {
			env[name] = v
		}
	}
	for k, name := range map[string]string{"cpu_count": "cpu_count", "gpu_count": "gpu_count"} {
		if v := tag(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("tag wandb.%s %q: %w", k, v, err)
			}
			env[name] = n
		}
	}
	if a := tag("args"); a != "" {
		var args []any
		if err := json.Unmarshal([]byte(a), &args); err != nil {
			return nil, fmt.Errorf("tag wandb.args: %w", err)
		}
		env["args"] = args
	}
	for k, v := range map[string]string{"program": r.Program, "host": r.Host, "username": r.User} {
		if v != "" {
			env[k] = v
		}
	}
	if r.GitRemote != "" || r.GitCommit != "" {
		env["git"] = map[string]any{"remote": r.GitRemote, "commit": r.GitCommit}
	}
	if len(env) > 0 {
		env["startedAt"] = r.Start.UTC().Format(time.RFC3339Nano)
		wr.Environment = env
	}
	for _, t := range r.Tags {
		if name, ok := strings.CutPrefix(t.Key, "wandb.step_metric."); ok {
			if wr.StepMetrics == nil {
				wr.StepMetrics = map[string]string{}
			}
			wr.StepMetrics[name] = t.Value
		}
	}
	if len(r.Config) > 0 {
		if err := json.Unmarshal(r.Config, &wr.Config); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	if len(r.Summary) > 0 {
		if err := decodeNonFinite(r.Summary, &wr.Summary); err != nil {
			return nil, fmt.Errorf("summary: %w", err)
		}
	}
	rows := map[int64]map[string]any{}
	row := func(step, ms int64) map[string]any {
		m := rows[step]
		if m == nil {
			m = map[string]any{"_step": float64(step)}
			rows[step] = m
		}
		if ms != 0 {
			m["_timestamp"] = float64(ms) / 1000
		}
		return m
	}
	events := map[int64]map[string]any{}
	for page, err := range src.Metrics(ctx, r.Origin) {
		if err != nil {
			return nil, err
		}
		for _, m := range page {
			name, system := strings.CutPrefix(m.Key, "system/")
			if !system {
				row(m.Step, m.Time)[m.Key] = m.Value
				continue
			}
			e := events[m.Step]
			if e == nil {
				e = map[string]any{"_wandb": true}
				events[m.Step] = e
			}
			e["_timestamp"] = float64(m.Time) / 1000
			e["system."+name] = m.Value
		}
	}
	for _, st := range slices.Sorted(maps.Keys(events)) {
		e := events[st]
		if ts, ok := e["_timestamp"].(float64); ok {
			e["_runtime"] = ts - float64(r.Start.UnixMilli())/1000
		}
		wr.Events = append(wr.Events, e)
		if wr.SystemMetrics == nil {
			wr.SystemMetrics = map[string]any{}
		}
		for k, v := range e {
			if strings.HasPrefix(k, "system.") {
				wr.SystemMetrics[k] = v
			}
		}
	}
	for page, err := range src.RichValues(ctx, r.Origin) {
		if err != nil {
			return nil, err
		}
		for _, v := range page {
			if strings.HasPrefix(v.Key, "system/") {
				continue
			}
			var val any
			if err := decodeNonFinite([]byte(v.JSON), &val); err != nil {
				return nil, fmt.Errorf("history %s at step %d: %w", v.Key, v.Step, err)
			}
			row(v.Step, v.Time)[v.Key] = val
		}
	}
	steps := make([]int64, 0, len(rows))
	for s := range rows {
		steps = append(steps, s)
	}
	slices.Sort(steps)
	for _, s := range steps {
		wr.History = append(wr.History, rows[s])
	}
	return wr, nil
}

// decodeNonFinite decodes JSON that may hold the bare words NaN, Infinity
// and -Infinity (as W&B writes them) by first quoting them... it only
// accepts standard JSON plus those words outside strings.
func decodeNonFinite(b []byte, v any) error {
	return json.Unmarshal(quoteNonFinite(b), v)
}

// quoteNonFinite rewrites bare NaN/Infinity/-Infinity outside strings to
// null-safe sentinels understood by encoding/json: here simply to their
// string form, as the fixtures' expected.json encodes them.
func quoteNonFinite(b []byte) []byte {
	var out []byte
	inStr := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inStr {
			out = append(out, c)
			if c == '\\' && i+1 < len(b) {
				i++
				out = append(out, b[i])
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			out = append(out, c)
			continue
		}
		for _, w := range []string{"-Infinity", "Infinity", "NaN"} {
			if strings.HasPrefix(string(b[i:min(len(b), i+len(w))]), w) {
				out = append(out, '"')
				out = append(out, w...)
				out = append(out, '"')
				i += len(w) - 1
				c = 0
				break
			}
		}
		if c != 0 {
			out = append(out, c)
		}
	}
	return out
}
