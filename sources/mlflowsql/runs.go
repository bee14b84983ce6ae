package mlflowsql

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"math"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/schema"
)

// PageSize is the number of points in one yielded page.
const PageSize = 10_000

// Runs yields the runs of an experiment ordered by start time and run id
// (deleted ones only with the deleted option), leaving out runs a later
// runferry copy superseded, mapped as the REST source maps native runs.
func (s *Source) Runs(ctx context.Context, exp schema.Ref) iter.Seq2[schema.Run, error] {
	return func(yield func(schema.Run, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Run{}, err)
			return
		}
		expID, err := s.experimentID(ctx, exp)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		s.mu.Lock()
		s.listed[expID] = true
		s.mu.Unlock()
		infos, err := s.runInfos(ctx, expID)
		if err != nil {
			yield(schema.Run{}, err)
			return
		}
		for _, info := range infos {
			if !s.cfg.Deleted && info.LifecycleStage == mlflowapi.StageDeleted {
				continue
			}
			r, err := s.runData(ctx, info)
			if err != nil {
				yield(schema.Run{}, err)
				return
			}
			if _, sup := mlflowconv.RunTag(r, mlflowconv.TagSuperseded); sup {
				continue
			}
			run := s.convertRun(exp, r)
			s.mu.Lock()
			s.runs[run.Origin] = &runInfo{id: info.RunID, artifactURI: info.ArtifactURI, experimentID: expID}
			s.mu.Unlock()
			if !yield(run, nil) {
				return
			}
		}
	}
}

// runInfos reads the runs table rows of an experiment.
func (s *Source) runInfos(ctx context.Context, expID string) ([]mlflowapi.RunInfo, error) {
	what := "the runs of experiment " + expID
	rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT run_uuid, {name}, user_id, {status}, start_time, end_time, artifact_uri, lifecycle_stage
		FROM runs WHERE experiment_id = ? ORDER BY start_time, run_uuid`), expID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var out []mlflowapi.RunInfo
	for rows.Next() {
		var (
			id                                  string
			name, user, status, artifact, stage sql.NullString
			start, end                          sql.NullInt64
		)
		if err := rows.Scan(&id, &name, &user, &status, &start, &end, &artifact, &stage); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		info := mlflowapi.RunInfo{RunID: id, ExperimentID: expID, RunName: name.String, UserID: user.String, Status: status.String,
			StartTime: start.Int64, ArtifactURI: artifact.String, LifecycleStage: stageOf(stage)}
		if end.Valid {
			info.EndTime = &end.Int64
		}
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	return out, nil
}

// runData reads a run's params, tags and dataset inputs into the REST
// API's form.
func (s *Source) runData(ctx context.Context, info mlflowapi.RunInfo) (mlflowapi.Run, error) {
	r := mlflowapi.Run{Info: info}
	params, err := s.keyValues(ctx, "SELECT {key}, {value} FROM params WHERE run_uuid = ?", "params of run "+info.RunID, info.RunID)
	if err != nil {
		return r, err
	}
	for _, p := range params {
		r.Data.Params = append(r.Data.Params, mlflowapi.Param(p))
	}
	tags, err := s.keyValues(ctx, "SELECT {key}, {value} FROM tags WHERE run_uuid = ?", "tags of run "+info.RunID, info.RunID)
	if err != nil {
		return r, err
	}
	for _, t := range tags {
		r.Data.Tags = append(r.Data.Tags, mlflowapi.Tag(t))
	}
	if s.has(revInputs) {
		if r.Inputs.DatasetInputs, err = s.datasetInputs(ctx, info.RunID); err != nil {
			return r, err
		}
	}
	return r, nil
}

// datasetInputs reads a run's dataset inputs as MLflow's SQL store
// assembles them: one per dataset, with the tags of its inputs.
func (s *Source) datasetInputs(ctx context.Context, runID string) ([]mlflowapi.DatasetInput, error) {
	what := "dataset inputs of run " + runID
	rows, err := s.st.DB.QueryContext(ctx, s.q(`SELECT i.input_uuid, d.dataset_uuid, d.{name}, d.digest, d.dataset_source_type, d.dataset_source, d.dataset_schema, d.dataset_profile
		FROM inputs i JOIN datasets d ON i.source_id = d.dataset_uuid
		WHERE i.destination_type = 'RUN' AND i.destination_id = ? ORDER BY i.input_uuid`), runID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	type input struct{ inputID, datasetID string }
	var (
		order []input
		byDS  = map[string]*mlflowapi.DatasetInput{}
	)
	for rows.Next() {
		var in input
		var name, digest, stype, source, schemaText, profile sql.NullString
		if err := rows.Scan(&in.inputID, &in.datasetID, &name, &digest, &stype, &source, &schemaText, &profile); err != nil {
			rows.Close()
			return nil, dbErr(ctx, what, err)
		}
		order = append(order, in)
		if byDS[in.datasetID] == nil {
			byDS[in.datasetID] = &mlflowapi.DatasetInput{Dataset: mlflowapi.Dataset{Name: name.String, Digest: digest.String,
				SourceType: stype.String, Source: source.String, Schema: schemaText.String, Profile: profile.String}}
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	var out []mlflowapi.DatasetInput
	for _, in := range order {
		tags, err := s.keyValues(ctx, "SELECT {name}, {value} FROM input_tags WHERE input_uuid = ?", what, in.inputID)
		if err != nil {
			return nil, err
		}
		d := byDS[in.datasetID]
		for _, t := range tags {
			d.Tags = append(d.Tags, mlflowapi.Tag(t))
		}
	}
	seen := map[string]bool{}
	for _, in := range order {
		if !seen[in.datasetID] {
			seen[in.datasetID] = true
			out = append(out, *byDS[in.datasetID])
		}
	}
	return out, nil
}

// convertRun maps a run as the REST source maps a native one. A run
// runferry wrote into MLflow is read as MLflow holds it: its sidecar files
// are in the artifact store, which this source does not interpret, and
// Damage says so.
func (s *Source) convertRun(exp schema.Ref, r mlflowapi.Run) schema.Run {
	tags := map[string]string{}
	for _, t := range r.Data.Tags {
		tags[t.Key] = t.Value
	}
	if _, former := tags[mlflowconv.FormerTag(mlflowconv.TagSidecar)]; former {
		mlflowconv.UpgradeFormerTags(tags)
	}
	run := mlflowconv.NativeRun(r, tags, s.ref)
	if _, ok := mlflowconv.LookupTag(tags, mlflowconv.TagSidecar); ok {
		run.Damage = append(run.Damage, fmt.Sprintf("mlflow run %s: written by runferry; read from the store as MLflow holds it, runferry's own files (%s) not applied: read it through a tracking server (mlflow+http://) to restore it exactly", r.Info.RunID, mlflowconv.Dir))
	}
	run.Experiment = exp
	run.Status = mlflowconv.RunStatus(r.Info.Status)
	run.Start = mlflowconv.MsTime(r.Info.StartTime)
	if r.Info.EndTime != nil {
		run.End = mlflowconv.MsTime(*r.Info.EndTime)
	}
	run.Deleted = r.Info.LifecycleStage == mlflowapi.StageDeleted
	run.Inputs = mlflowconv.SchemaInputs(r)
	run.Canonicalize()
	return run
}

// runInfoOf returns what Runs recorded about a run.
func (s *Source) runInfoOf(ref schema.Ref) (*runInfo, error) {
	if err := s.open(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	info, ok := s.runs[ref]
	s.mu.Unlock()
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("mlflow store: run %s was not listed by Runs", ref))
	}
	return info, nil
}

// Metrics yields a run's full history key by key in key order (bytewise),
// each key's points sorted by step, time and value as the REST source
// sorts them: NaN where MLflow stored is_nan, ±1.7976931348623157e308
// where MLflow stored an infinity (as its server returns them). One key's
// history is held in memory while it is sorted.
func (s *Source) Metrics(ctx context.Context, ref schema.Ref) iter.Seq2[[]schema.Metric, error] {
	return func(yield func([]schema.Metric, error) bool) {
		info, err := s.runInfoOf(ref)
		if err != nil {
			yield(nil, err)
			return
		}
		keys, err := s.metricKeys(ctx, info.id)
		if err != nil {
			yield(nil, err)
			return
		}
		nan := "0"
		if s.has(revIsNaN) {
			nan = "CASE WHEN is_nan THEN 1 ELSE 0 END"
		}
		query := s.q("SELECT {value}, {timestamp}, {step}, " + nan + " FROM metrics WHERE run_uuid = ? AND {key} = ?")
		for _, k := range keys {
			what := fmt.Sprintf("metric %q of run %s", k, info.id)
			points, err := s.history(ctx, query, what, info.id, k)
			if err != nil {
				yield(nil, err)
				return
			}
			schema.SortMetrics(points)
			for chunk := range slices.Chunk(points, PageSize) {
				if !yield(slices.Clip(chunk), nil) {
					return
				}
			}
		}
	}
}

func (s *Source) metricKeys(ctx context.Context, runID string) ([]string, error) {
	what := "metric keys of run " + runID
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT DISTINCT {key} FROM metrics WHERE run_uuid = ?"), runID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	slices.Sort(keys)
	return keys, nil
}

func (s *Source) history(ctx context.Context, query, what, runID, key string) ([]schema.Metric, error) {
	rows, err := s.st.DB.QueryContext(ctx, query, runID, key)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var points []schema.Metric
	for rows.Next() {
		var (
			v     sql.NullFloat64
			ts    sql.NullInt64
			step  sql.NullInt64
			isNaN int64
		)
		if err := rows.Scan(&v, &ts, &step, &isNaN); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		value := v.Float64
		if isNaN != 0 || !v.Valid {
			value = math.NaN()
		}
		points = append(points, schema.Metric{Key: key, Value: value, Step: step.Int64, Time: ts.Int64})
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	return points, nil
}

// Artifacts yields a run's files sorted by path, read from its artifact
// location when that is a folder on this machine (a local path or file:
// URI, or an mlflow-artifacts: URI under the artifacts option). A run
// whose location cannot be read here yields none and is counted by
// Omitted with the reason; a folder that does not exist holds no files
// (MLflow creates it with the first file).
func (s *Source) Artifacts(ctx context.Context, ref schema.Ref) iter.Seq2[schema.Artifact, error] {
	return func(yield func(schema.Artifact, error) bool) {
		info, err := s.runInfoOf(ref)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		dir, why := s.artifactDir(info.artifactURI)
		if why != "" {
			s.mu.Lock()
			s.noDir[info.id] = why
			s.mu.Unlock()
			dir = ""
		} else if _, err := os.Stat(dir); os.IsNotExist(err) {
			dir = "" // no files yet
		}
		var out []schema.Artifact
		if dir != "" {
			out, err = walkFiles(ctx, dir, "")
		}
		if err != nil {
			if ctx.Err() != nil {
				yield(schema.Artifact{}, ctx.Err())
				return
			}
			yield(schema.Artifact{}, fault.Permanent(fmt.Errorf("mlflow run %s: listing its files in %s: %w", info.id, dir, err)))
			return
		}
		models, err := s.loggedModelFiles(ctx, info)
		if err != nil {
			yield(schema.Artifact{}, err)
			return
		}
		out = append(out, models...)
		slices.SortFunc(out, func(a, b schema.Artifact) int { return strings.Compare(a.Path, b.Path) })
		for _, a := range out {
			if !yield(a, nil) {
				return
			}
		}
	}
}

// walkFiles lists the files under dir (following symbolic links, as
// MLflow's listing does), each under prefix + its path relative to dir.
func walkFiles(ctx context.Context, dir, prefix string) ([]schema.Artifact, error) {
	var out []schema.Artifact
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		file := p
		out = append(out, schema.Artifact{Path: prefix + filepath.ToSlash(rel), Size: fi.Size(),
			Open: func(context.Context) (io.ReadCloser, error) { return os.Open(file) }})
		return nil
	})
	return out, err
}

// artifactDir returns the local folder of an artifact URI, or why it has
// none here.
func (s *Source) artifactDir(uri string) (dir, why string) {
	switch {
	case uri == "":
		return "", "no artifact location"
	case strings.HasPrefix(uri, "/"):
		return filepath.FromSlash(uri), ""
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		if s.cfg.Artifacts == "" {
			return "", "mlflow-artifacts: locations, and no ?artifacts=FOLDER given (the server's --artifacts-destination)"
		}
		u, err := url.Parse(uri)
		if err != nil {
			return "", "bad artifact location"
		}
		dir := filepath.Join(s.cfg.Artifacts, filepath.FromSlash(path.Clean("/"+u.Path)))
		if rel, err := filepath.Rel(s.cfg.Artifacts, dir); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", "mlflow-artifacts: locations outside the artifacts folder"
		}
		return dir, ""
	case strings.HasPrefix(uri, "file:"):
		u, err := url.Parse(uri)
		if err != nil || (u.Host != "" && u.Host != "localhost") {
			return "", "file: locations on another host"
		}
		p := u.Path
		if u.Opaque != "" {
			p = u.Opaque
		}
		if len(p) > 2 && p[0] == '/' && p[2] == ':' { // file:///C:/...
			return "", "Windows paths"
		}
		return filepath.FromSlash(p), ""
	}
	if i := strings.Index(uri, ":"); i > 1 && !strings.ContainsAny(uri[:i], "/\\") {
		return "", uri[:i] + ": locations (only local folders are read directly)"
	}
	return "", "relative artifact locations (relative to where the server ran)"
}
