package wandbdir

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// TagPrefix starts the keys of the tags holding W&B facts that have no
// field of their own in schema.Run (see doc.go for the list).
const TagPrefix = "wandb."

// segMeta is what the metadata pass learns about one segment.
type segMeta struct {
	seg        *segment
	run        *wandbfile.Run
	exit       *wandbfile.Exit
	preempting bool
	lastTime   int64 // latest timestamp seen (history, stats, console), Unix ms
	// damaged says the segment's log is corrupt (handler.corrupt: damage
	// other than a truncated tail): an exit record may have been lost in
	// the damage, so a missing one does not make the run live.
	damaged bool
}

// runMeta accumulates a run's metadata over its segments.
type runMeta struct {
	segs      []*segMeta
	cur       *segMeta
	config    map[string]any
	summary   map[string]any
	sawConfig bool
	sawSumm   bool
	env       wandbfile.Environment
	tele      wandbfile.Telemetry
	producer  string
	stepAxis  map[string]string // define_metric name → step metric
	steps     stepper
	conv      *wandbfile.RowConverter // reads the rows' steps and times
	firstTime int64
}

// readRun reads a run's segments once and builds its schema.Run: identity,
// metadata, config and summary folded over every segment, status, times and
// damage notes (artifact records that cannot be carried among them).
func readRun(ctx context.Context, ri *runInfo, crash crashRule) (schema.Run, error) {
	p := newRunPass(ri)
	damage, err := walk(ctx, ri, p.handler())
	return p.finish(ctx, damage, err, crash)
}

// runPass is readRun's pass over a run's logs: the parts of its handler,
// and finish, which builds the run once the walk is done. A Metrics pass
// runs one beside its own (see onepass.go), so that a copy need not read
// the logs once more for the run's fields.
type runPass struct {
	ri      *runInfo
	m       *runMeta
	console *consoleCounter
	arts    *runArtifacts
	seg     int // index in m.segs of the segment being read
}

func newRunPass(ri *runInfo) *runPass {
	p := &runPass{ri: ri, console: newConsoleCounter(), arts: &runArtifacts{},
		m: &runMeta{config: map[string]any{}, summary: map[string]any{}, stepAxis: map[string]string{}, conv: newConverter()}}
	for _, seg := range ri.segments {
		p.m.segs = append(p.m.segs, &segMeta{seg: seg})
	}
	p.m.cur = p.m.segs[0]
	return p
}

// handler is the pass's handler, for a walk of its own.
func (p *runPass) handler() handler {
	return handler{
		record:  p.record,
		damage:  p.console.damage,
		corrupt: p.corrupt,
		history: p.m.history,
		stats: func(_ *segment, t time.Time, _ []wandbfile.Value) error {
			p.stats(t)
			return nil
		},
		segmentEnd: p.segmentEnd,
	}
}

// record takes every decoded record but history and stats.
func (p *runPass) record(seg *segment, rec *wandbfile.Record) error {
	p.console.record(seg, rec)
	p.arts.record(rec)
	return p.m.record(seg, rec)
}

// corrupt notes that the current segment's log is corrupt.
func (p *runPass) corrupt(*segment) { p.m.cur.damaged = true }

// row takes a history row's step and time, as converted by another pass
// (the same values history parses from the row).
func (p *runPass) row(r wandbfile.RowValues) {
	p.m.steps.next(&r)
	p.m.seen(r.Time)
}

// stats takes a system-metrics sample's time.
func (p *runPass) stats(t time.Time) { p.m.seen(unixMillis(t)) }

// segmentEnd moves on to the next segment.
func (p *runPass) segmentEnd(seg *segment) error {
	p.console.segmentEnd(seg)
	if p.seg++; p.seg < len(p.m.segs) {
		p.m.cur = p.m.segs[p.seg]
	}
	return nil
}

// finish builds the run from what the walk gave (its damage notes and
// error), and keeps the run's console plan and artifact records (see
// runInfo.consolePlan, runInfo.artifactRecords).
func (p *runPass) finish(ctx context.Context, damage []string, err error, crash crashRule) (schema.Run, error) {
	ri, m := p.ri, p.m
	if err != nil {
		// A log that cannot be read (gone since discovery, an I/O error) is
		// this run's damage: the listing of the other runs goes on.
		if fault.KindOf(err) != fault.KindPermanent {
			return schema.Run{}, err
		}
		damage = append(damage, err.Error())
	}
	plan, err := p.console.plan(ctx, ri)
	if err != nil {
		return schema.Run{}, err
	}
	ri.setConsolePlan(plan)
	damage = append(damage, plan.notes...)
	ri.setArtifacts(p.arts)
	damage = append(damage, artifactDamage(p.arts)...)
	r := schema.Run{Origin: ri.ref, Experiment: ri.exp}
	m.fillFromFiles(&damage)
	m.describe(ri, &r, crash)
	if last := m.segs[len(m.segs)-1]; statusUnknown(last) {
		damage = append(damage, fmt.Sprintf("%s: status unknown: the log is damaged and holds no exit record (it may have been lost in the damage); recorded with status failed and tag %sstate=%s, not judged from the folder's times",
			last.seg.name(last.seg.wandbFile), TagPrefix, stateUnknown))
	}
	files, err := listFiles(ri, false)
	if err != nil {
		return schema.Run{}, err
	}
	for _, f := range files {
		if f.problem != "" {
			damage = append(damage, fmt.Sprintf("%s: %s", f.name, f.problem))
		}
	}
	if m.steps.dropped > 0 {
		damage = append(damage, fmt.Sprintf("%d history rows dropped: their _step went backwards", m.steps.dropped))
	}
	r.Damage = damage
	r.Canonicalize()
	return r, nil
}

// record handles the non-history records of the metadata pass.
func (m *runMeta) record(_ *segment, rec *wandbfile.Record) error {
	switch {
	case rec.Run != nil:
		if m.cur.run == nil {
			m.cur.run = rec.Run
		} else {
			// A later run record of the same segment is the SDK's
			// update of the run (run.name, run.notes, run.tags set
			// after wandb.init): the fields it sets win, as W&B shows
			// them after `wandb sync` replays the records. It carries the
			// run's current tags whole, so a tag removed is gone.
			merged := *m.cur.run
			mergeNonZero(&merged, *rec.Run)
			m.cur.run = &merged
		}
		if rec.Run.Config != nil {
			m.sawConfig = true
			fold(m.config, rec.Run.Config.Update, rec.Run.Config.Remove)
		}
		if rec.Run.Summary != nil {
			m.sawSumm = true
			fold(m.summary, rec.Run.Summary.Update, rec.Run.Summary.Remove)
		}
	case rec.Config != nil:
		m.sawConfig = true
		fold(m.config, rec.Config.Update, rec.Config.Remove)
	case rec.Summary != nil:
		m.sawSumm = true
		fold(m.summary, rec.Summary.Update, rec.Summary.Remove)
	case rec.Exit != nil:
		m.cur.exit = rec.Exit
	case rec.Kind == wandbfile.KindPreempting:
		m.cur.preempting = true
	case rec.Environment != nil:
		mergeNonZero(&m.env, *rec.Environment)
	case rec.Telemetry != nil:
		mergeNonZero(&m.tele, *rec.Telemetry)
	case rec.Header != nil && rec.Header.Producer != "":
		m.producer = rec.Header.Producer
	case rec.Metric != nil && rec.Metric.StepMetric != "":
		m.stepAxis[cmpOr(rec.Metric.Name, rec.Metric.GlobName)] = rec.Metric.StepMetric
	case rec.Output != nil:
		m.seen(unixMillis(rec.Output.Timestamp))
	}
	return nil
}

// history tracks steps (to note rows dropped for going backwards) and times.
func (m *runMeta) history(_ *segment, h histRow) error {
	r := h.header(m.conv)
	m.steps.next(&r)
	m.seen(r.Time)
	return nil
}

// seen records activity at Unix ms t.
func (m *runMeta) seen(t int64) {
	if t <= 0 {
		return
	}
	m.cur.lastTime = max(m.cur.lastTime, t)
	if m.firstTime == 0 || t < m.firstTime {
		m.firstTime = t
	}
}

// fold applies summary or config updates, then removals, to tree.
func fold(tree map[string]any, update, remove []wandbfile.Item) {
	for _, it := range wandbfile.ParseItems(update) {
		if it.Err == nil && len(it.Path) > 0 {
			wandbfile.SetPath(tree, it.Path, it.Value)
		}
	}
	for _, it := range remove {
		if p := it.Path(); len(p) > 0 {
			wandbfile.RemovePath(tree, p)
		}
	}
}

// fillFromFiles falls back to the run files for what the `.wandb` files did
// not hold: config.yaml and wandb-summary.json (the last segment's copy
// wins), as for pre-0.10 folders, offline-less online runs whose log was
// lost, or logs damaged before their first records.
func (m *runMeta) fillFromFiles(damage *[]string) {
	for _, sm := range m.segs {
		dir := sm.seg.filesDir()
		if !m.sawConfig {
			path := filepath.Join(dir, "config.yaml")
			if b, err := readCapped(path, maxSmallFile); err == nil {
				cfg, internal, err := parseConfigYAML(b)
				if err != nil {
					*damage = append(*damage, fmt.Sprintf("%s: %v", sm.seg.name(path), err))
				} else {
					m.config = cfg
					if internal != nil {
						m.config[wandbfile.KeyWandb] = internal
					}
				}
			}
		}
		if !m.sawSumm {
			path := filepath.Join(dir, "wandb-summary.json")
			if b, err := readCapped(path, maxSmallFile); err == nil {
				s, err := parseSummaryJSON(b)
				if err != nil {
					*damage = append(*damage, fmt.Sprintf("%s: %v", sm.seg.name(path), err))
				} else {
					m.summary = s
				}
			}
		}
	}
}

// describe fills r's metadata from the segments, later segments winning
// for each field they set, with wandb-metadata.json as the fallback.
func (m *runMeta) describe(ri *runInfo, r *schema.Run, crash crashRule) {
	var md metadata
	for _, sm := range m.segs {
		if got := readMetadata(filepath.Join(sm.seg.filesDir(), "wandb-metadata.json")); got != nil {
			mergeNonZero(&md, *got)
		}
	}
	var labels []string
	var rr wandbfile.Run
	for _, sm := range m.segs {
		if sm.run != nil {
			// A segment that sets tags replaces the earlier ones, as
			// W&B's server does: the SDK's run record carries the run's
			// tags whole (run.tags = ... in a resumed run), and the
			// server's upsert replaces the run's tags with a list that
			// is not empty.
			if len(sm.run.Tags) > 0 {
				labels = slices.Clone(sm.run.Tags)
			}
			tags := rr.Tags
			mergeNonZero(&rr, *sm.run)
			rr.Tags = tags
		}
	}
	env := m.env
	r.Name = cmpOr(rr.DisplayName, md.Name, ri.id)
	r.Labels = labels
	r.Notes, r.Group, r.JobType = cmpOr(rr.Notes, md.Notes), rr.Group, cmpOr(rr.JobType, md.JobType)
	// The user the run's own records name is the run's user, as W&B
	// showed it; wandb-metadata.json's "username" alone (SDKs that write
	// no environment record) is the machine's login name, kept as a tag
	// (transform.TagLogin) that drop-personal leaves out of MLflow.
	r.User = env.Username
	r.Host = cmpOr(rr.Host, env.Host, md.Host)
	r.Program = cmpOr(env.Program, md.Program)
	r.GitCommit = cmpOr(rr.GitCommit, env.GitCommit, md.GitCommit)
	r.GitRemote = cmpOr(rr.GitRemote, env.GitRemote, md.GitRemote)

	wandbInternal, _ := m.config[wandbfile.KeyWandb].(map[string]any)
	delete(m.config, wandbfile.KeyWandb)
	if len(m.config) > 0 {
		r.Config = json.RawMessage(wandbfile.ValueToJSON(m.config))
	}
	if len(m.summary) > 0 {
		r.Summary = json.RawMessage(wandbfile.ValueToJSON(m.summary))
	}
	sdk, _ := wandbInternal["cli_version"].(string)
	pyFromConfig, _ := wandbInternal["python_version"].(string)
	producer, _, _ := strings.Cut(m.producer, "+")

	var args string
	if len(env.Args) > 0 {
		args = wandbfile.ValueToJSON(stringsToAny(env.Args))
	}
	tags := map[string]string{
		"entity": ri.entity, "project": ri.project, "run_id": ri.id,
		"sweep_id":    rr.SweepID,
		"python":      cmpOr(m.tele.PythonVersion, env.Python, md.Python, pyFromConfig),
		"sdk_version": cmpOr(m.tele.CLIVersion, producer, sdk),
		"os":          cmpOr(env.OS, md.OS),
		"args":        cmpOr(args, md.Args),
		"code_path":   cmpOr(env.CodePath, md.CodePath),
		"root":        cmpOr(env.Root, md.Root),
		"executable":  cmpOr(env.Executable, md.Executable),
		"email":       cmpOr(env.Email, md.Email),
		"docker":      cmpOr(env.Docker, md.Docker),
		"cuda":        cmpOr(env.CUDAVersion, md.CUDA),
		"gpu":         cmpOr(env.GPUType, md.GPU),
		"gpu_count":   count(int64(env.GPUCount), md.GPUCount),
		"cpu_count":   count(int64(env.CPUCount), md.CPUCount),
		"storage_id":  rr.StorageID,
	}
	if md.Username != r.User {
		tags["username"] = md.Username
	}
	if len(m.segs) > 1 {
		tags["segments"] = strconv.Itoa(len(m.segs))
	}
	if rr.StartStep != 0 {
		tags["starting_step"] = strconv.FormatInt(rr.StartStep, 10)
	}
	if bp := rr.BranchPoint; bp != nil && bp.Run != "" {
		tags["branch_point"] = fmt.Sprintf("%s@%s=%s", bp.Run, bp.Metric, strconv.FormatFloat(bp.Value, 'g', -1, 64))
	}
	last := m.segs[len(m.segs)-1]
	var state string
	r.Status, state = runState(last, md, crash)
	tags["state"] = state
	switch {
	case last.exit != nil:
		tags["exit_code"] = strconv.Itoa(int(last.exit.ExitCode))
	case last.seg.wandbFile == "" && md.ExitCode != nil:
		tags["exit_code"] = strconv.FormatInt(*md.ExitCode, 10)
	}
	for name, axis := range m.stepAxis {
		tags["step_metric."+name] = axis
	}
	for k, v := range tags {
		if v != "" {
			r.Tags = append(r.Tags, schema.Tag{Key: TagPrefix + k, Value: v})
		}
	}
	r.Start, r.End = m.times(env, md)
}

// signalExitCodes are the exit codes of a killed run: what a shell gives a
// process killed by SIGINT, SIGKILL and SIGTERM, and 255, which the wandb
// SDK records when the script ends in KeyboardInterrupt.
var signalExitCodes = map[int32]bool{130: true, 137: true, 143: true, 255: true}

// status maps an exit code to a run status: 0 is FINISHED, a signal exit
// code KILLED, any other FAILED.
func status(code int64) schema.RunStatus {
	switch {
	case code == 0:
		return schema.StatusFinished
	case code >= math.MinInt32 && code <= math.MaxInt32 && signalExitCodes[int32(code)]:
		return schema.StatusKilled
	}
	return schema.StatusFailed
}

// W&B run states runferry records in the tag wandb.state when no exit
// record says how the run ended.
const (
	stateRunning = "running"
	stateCrashed = "crashed"
	// stateUnknown is the state of a run whose damaged log holds no exit
	// record: how it ended may be in the damage (statusUnknown).
	stateUnknown = "unknown"
)

// statusUnknown reports whether the segment's ending cannot be told: its
// log is corrupt (damaged other than by a truncated tail, which a live
// writer or a crash leaves and the times judge as before) and holds
// neither an exit record nor a preempting one.
// Such a run is FAILED with wandb.state=unknown, not judged live or
// crashed by its times: a log whose exit record was lost in a damaged
// block would otherwise read as a live run when its folder is new.
func statusUnknown(last *segMeta) bool {
	return last.damaged && last.seg.wandbFile != "" && (last.exit == nil || last.exit.NotComplete) && !(last.exit == nil && last.preempting)
}

// crashRule judges runs that left no word of their end: silent for longer
// than after, counted back from now, they crashed.
type crashRule struct {
	now   time.Time
	after time.Duration
}

// crashed reports whether a run last heard from at since has crashed. A
// run never heard from (zero since) has.
func (c crashRule) crashed(since time.Time) bool {
	return since.IsZero() || c.now.Sub(since) > c.after
}

// runState maps the last segment's ending to a run status and, when no
// exit record decides it, W&B's state for the tag wandb.state:
//   - an exit record: its exit code (see status); not_complete counts as
//     no exit record;
//   - a preempting record and no exit: KILLED;
//   - no `.wandb` (SDKs before 0.10): wandb-metadata.json's state
//     (finished, failed, killed) and exitcode, the state kept in the tag;
//   - a damaged log without either (statusUnknown): FAILED, state
//     unknown, whatever its times say;
//   - otherwise the run is live (RUNNING, state running) or, silent for
//     longer than crash.after by its records or by its files (see
//     silentSince), crashed: FAILED, state crashed, as W&B shows a run
//     whose heartbeat stopped.
func runState(last *segMeta, md metadata, crash crashRule) (schema.RunStatus, string) {
	if e := last.exit; e != nil && !e.NotComplete {
		return status(int64(e.ExitCode)), ""
	}
	if last.exit == nil && last.preempting {
		return schema.StatusKilled, ""
	}
	if last.seg.wandbFile == "" {
		switch md.State {
		case "finished":
			return schema.StatusFinished, md.State
		case "failed":
			return schema.StatusFailed, md.State
		case "killed":
			return schema.StatusKilled, md.State
		}
		if md.ExitCode != nil {
			return status(*md.ExitCode), md.State
		}
	}
	if statusUnknown(last) {
		return schema.StatusFailed, stateUnknown
	}
	if crash.crashed(silentSince(last, md)) {
		return schema.StatusFailed, stateCrashed
	}
	return schema.StatusRunning, stateRunning
}

// silentSince is when a run's last segment was last heard from, as both
// its own records and its files tell it: the earlier of
//   - the latest time its records carry: the segment's start, the last
//     timestamp in its records (history `_timestamp`, stats, console;
//     before 0.10 also wandb-metadata.json's heartbeatAt), and
//   - the latest modification time of its log (`.wandb`; before 0.10
//     wandb-history.jsonl, wandb-events.jsonl, wandb-metadata.json,
//     output.log and wandb-summary.json).
//
// A run is live only while both are recent: a folder copied without its
// times (cp -r, rsync without -t, unzip) has new files but old records,
// and a crashed run in it is silent since its last record; a log left
// untouched is silent since its file's time, whatever its records say (a
// writer's clock running ahead). Either alone decides when the other is
// not known; the zero time if neither is.
func silentSince(last *segMeta, md metadata) time.Time {
	var records, files time.Time
	later := func(t *time.Time, u time.Time) {
		if u.After(*t) {
			*t = u
		}
	}
	later(&records, last.seg.start)
	if last.lastTime > 0 {
		later(&records, time.UnixMilli(last.lastTime))
	}
	paths := []string{last.seg.wandbFile}
	if last.seg.wandbFile == "" {
		later(&records, md.HeartbeatAt)
		dir := last.seg.filesDir()
		paths = []string{filepath.Join(last.seg.dir, "wandb-history.jsonl"), filepath.Join(last.seg.dir, "wandb-events.jsonl"),
			filepath.Join(dir, "wandb-metadata.json"), filepath.Join(dir, "output.log"), filepath.Join(dir, "wandb-summary.json")}
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			later(&files, fi.ModTime())
		}
	}
	switch {
	case records.IsZero():
		return files
	case files.IsZero() || records.Before(files):
		return records
	}
	return files
}

// times returns the run's start and end. Start: the first segment's run
// record, else the environment or wandb-metadata.json, else the first
// timestamp seen. End: the last segment's start plus the runtime its exit
// record adds to the runtime before it, or the last activity seen if later
// (or if there is no exit record).
func (m *runMeta) times(env wandbfile.Environment, md metadata) (start, end time.Time) {
	first := m.segs[0]
	start = first.seg.start
	if start.IsZero() {
		start = cmpOrTime(env.StartedAt, md.StartedAt)
	}
	if start.IsZero() && m.firstTime > 0 {
		start = time.UnixMilli(m.firstTime)
	}
	last := m.segs[len(m.segs)-1]
	if last.exit != nil && !last.seg.start.IsZero() {
		// Runtimes are cumulative over segments; RunRecord.runtime says what
		// came before, else (offline resumes) earlier exit records do.
		var prior int32
		if last.run != nil {
			prior = last.run.Runtime
		}
		if prior == 0 {
			for _, sm := range m.segs[:len(m.segs)-1] {
				if sm.exit != nil {
					prior = max(prior, sm.exit.Runtime)
				}
			}
		}
		if d := last.exit.Runtime - prior; d > 0 {
			end = last.seg.start.Add(time.Duration(d) * time.Second)
		} else {
			end = last.seg.start
		}
	}
	if t := last.lastTime; t > 0 && time.UnixMilli(t).After(end) {
		end = time.UnixMilli(t)
	}
	if !start.IsZero() && end.Before(start) {
		end = start
	}
	return schema.CanonicalTime(start), schema.CanonicalTime(end)
}

// cmpOr returns the first non-empty string.
func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func cmpOrTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// count renders the first non-zero count, "" when both are zero.
func count(a, b int64) string {
	if a == 0 {
		a = b
	}
	if a == 0 {
		return ""
	}
	return strconv.FormatInt(a, 10)
}

func stringsToAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
