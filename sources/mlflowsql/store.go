package mlflowsql

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowlocal"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/sources/mlflow"
)

// store reads one MLflow SQL store and answers in the REST API's terms, as
// a server serving that store would (sources/mlflow.Backend): rows are
// assembled into internal/mlflowapi's wire types; everything made of them
// (origins, fields, runferry's sidecars) is the MLflow source's.
type store struct {
	st        *sqlstore.Store
	rev       int    // the store's alembic revision, its index in revisions
	artifacts string // where mlflow-artifacts: URIs point; "" when not given

	mu      sync.Mutex
	uris    map[string]string // run id -> artifact_uri, as listed
	noDir   map[string]string // run id (or logged model location) -> why its files were not read
	noSpans map[string]string // trace id -> why its spans were not read
}

var _ mlflow.Backend = (*store)(nil)

func newStore(st *sqlstore.Store, rev int, artifacts string) *store {
	return &store{st: st, rev: rev, artifacts: artifacts, uris: map[string]string{},
		noDir: map[string]string{}, noSpans: map[string]string{}}
}

// Revisions that added what the store reads.
const (
	revIsNaN         = "181f10493468" // metrics.is_nan
	revExpTags       = "df50e92ffc5e" // experiment_tags
	revLatestMetrics = "89d4b8295536" // latest_metrics
	revRegistry      = "2b4d017a5e9b" // registered_models, model_versions
	revCreationTime  = "97727af70f4d" // experiments.creation_time, last_update_time
	revInputs        = "7f2a7d5fae7d" // datasets, inputs, input_tags
	revTraces        = "867495a8f9d4" // trace_info
	revLoggedModels  = "400f98739977" // logged_models
)

// has reports whether the store's revision includes revision id.
func (s *store) has(id string) bool {
	for i, r := range revisions {
		if r.id == id {
			return s.rev >= i
		}
	}
	panic("mlflowsql: unknown revision " + id)
}

// q rewrites the ? placeholders for the dialect and quotes the identifiers
// written {name} (key, value, timestamp, step, name and status are
// keywords somewhere).
func (s *store) q(query string) string {
	open, closing := `"`, `"`
	if s.st.Dialect.Name == sqlstore.MySQL.Name {
		open, closing = "`", "`"
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		switch c := query[i]; {
		case c == '?' && s.st.Dialect.Name == sqlstore.Postgres.Name:
			n++
			b.WriteString("$" + strconv.Itoa(n))
		case c == '{':
			b.WriteString(open)
		case c == '}':
			b.WriteString(closing)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// dbErr classifies a database error met while reading: the context's own
// end as is, anything else retryable (a dropped connection), naming what
// was being read.
func dbErr(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fault.Retryable(fmt.Errorf("mlflow store: reading %s: %w", what, err), 0)
}

// notFound is an error mlflowapi.IsNotFound reports, as the server's 404.
func notFound(format string, args ...any) error {
	return fault.Permanent(&mlflowapi.APIError{Status: http.StatusNotFound, Code: mlflowapi.CodeDoesNotExist,
		Message: fmt.Sprintf(format, args...)})
}

// Ping proves the database reachable.
func (s *store) Ping(ctx context.Context) error {
	if err := s.st.DB.PingContext(ctx); err != nil {
		return fault.Fatal(fmt.Errorf("%s: %w", s.st.Where(), err))
	}
	return nil
}

type keyValue struct{ Key, Value string }

// keyValues runs a query yielding (key, value) rows; a NULL value reads as
// "" (MLflow's tags allow NULL values in early revisions).
func (s *store) keyValues(ctx context.Context, query, what string, args ...any) ([]keyValue, error) {
	rows, err := s.st.DB.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	var out []keyValue
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, dbErr(ctx, what, err)
		}
		out = append(out, keyValue{k.String, v.String})
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	return out, nil
}

// stageOf reads a lifecycle stage; MLflow's default is active.
func stageOf(v sql.NullString) string {
	if !v.Valid || v.String == "" {
		return mlflowapi.StageActive
	}
	return v.String
}

// SearchExperiments yields the experiments in view ordered by id, with
// their tags. filter must be "".
func (s *store) SearchExperiments(ctx context.Context, filter, view string) iter.Seq2[mlflowapi.Experiment, error] {
	return func(yield func(mlflowapi.Experiment, error) bool) {
		if filter != "" {
			yield(mlflowapi.Experiment{}, fault.Permanent(errors.New("mlflow store: filters are not supported")))
			return
		}
		exps, err := s.experiments(ctx)
		if err != nil {
			yield(mlflowapi.Experiment{}, err)
			return
		}
		for _, e := range exps {
			if mlflowlocal.InView(e.LifecycleStage, view) && !yield(e, nil) {
				return
			}
		}
	}
}

// experiments reads every experiment with its tags, ordered by id.
func (s *store) experiments(ctx context.Context) ([]mlflowapi.Experiment, error) {
	cols := "experiment_id, {name}, artifact_location, lifecycle_stage"
	if s.has(revCreationTime) {
		cols += ", creation_time, last_update_time"
	} else {
		cols += ", NULL, NULL"
	}
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT "+cols+" FROM experiments ORDER BY experiment_id"))
	if err != nil {
		return nil, dbErr(ctx, "experiments", err)
	}
	defer rows.Close()
	var out []mlflowapi.Experiment
	for rows.Next() {
		var (
			id           int64
			name         string
			loc, stage   sql.NullString
			created, upd sql.NullInt64
		)
		if err := rows.Scan(&id, &name, &loc, &stage, &created, &upd); err != nil {
			return nil, dbErr(ctx, "experiments", err)
		}
		out = append(out, mlflowapi.Experiment{ExperimentID: strconv.FormatInt(id, 10), Name: name, ArtifactLocation: loc.String,
			LifecycleStage: stageOf(stage), CreationTime: created.Int64, LastUpdateTime: upd.Int64})
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, "experiments", err)
	}
	rows.Close()
	if s.has(revExpTags) {
		for i := range out {
			tags, err := s.keyValues(ctx, "SELECT {key}, {value} FROM experiment_tags WHERE experiment_id = ?", "experiment "+out[i].ExperimentID+" tags", out[i].ExperimentID)
			if err != nil {
				return nil, err
			}
			for _, t := range tags {
				out[i].Tags = append(out[i].Tags, mlflowapi.Tag(t))
			}
		}
	}
	return out, nil
}

const runColumns = "run_uuid, experiment_id, {name}, user_id, {status}, start_time, end_time, artifact_uri, lifecycle_stage"

// scanRunInfos reads rows of runColumns.
func (s *store) scanRunInfos(rows *sql.Rows) ([]mlflowapi.RunInfo, error) {
	var out []mlflowapi.RunInfo
	for rows.Next() {
		var (
			id                                  string
			exp                                 int64
			name, user, status, artifact, stage sql.NullString
			start, end                          sql.NullInt64
		)
		if err := rows.Scan(&id, &exp, &name, &user, &status, &start, &end, &artifact, &stage); err != nil {
			return nil, err
		}
		info := mlflowapi.RunInfo{RunID: id, ExperimentID: strconv.FormatInt(exp, 10), RunName: name.String, UserID: user.String,
			Status: status.String, StartTime: start.Int64, ArtifactURI: artifact.String, LifecycleStage: stageOf(stage)}
		if end.Valid {
			info.EndTime = &end.Int64
		}
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, info := range out {
		s.uris[info.RunID] = info.ArtifactURI
	}
	s.mu.Unlock()
	return out, nil
}

// SearchRuns yields the runs in view of the experiments, ordered by start
// time then run id, each with its params, tags, latest metrics and
// dataset inputs. filter must be "".
func (s *store) SearchRuns(ctx context.Context, experimentIDs []string, filter, view string) iter.Seq2[mlflowapi.Run, error] {
	return func(yield func(mlflowapi.Run, error) bool) {
		if filter != "" {
			yield(mlflowapi.Run{}, fault.Permanent(errors.New("mlflow store: filters are not supported")))
			return
		}
		var infos []mlflowapi.RunInfo
		for _, expID := range experimentIDs {
			what := "the runs of experiment " + expID
			rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT "+runColumns+" FROM runs WHERE experiment_id = ? ORDER BY start_time, run_uuid"), expID)
			if err != nil {
				yield(mlflowapi.Run{}, dbErr(ctx, what, err))
				return
			}
			got, err := s.scanRunInfos(rows)
			rows.Close()
			if err != nil {
				yield(mlflowapi.Run{}, dbErr(ctx, what, err))
				return
			}
			infos = append(infos, got...)
		}
		if len(experimentIDs) > 1 {
			slices.SortStableFunc(infos, func(a, b mlflowapi.RunInfo) int {
				return cmp.Or(cmp.Compare(a.StartTime, b.StartTime), strings.Compare(a.RunID, b.RunID))
			})
		}
		for _, info := range infos {
			if !mlflowlocal.InView(info.LifecycleStage, view) {
				continue
			}
			r, err := s.runData(ctx, info)
			if err != nil {
				yield(r, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// GetRun returns run id with its params, tags, latest metrics and inputs.
func (s *store) GetRun(ctx context.Context, id string) (mlflowapi.Run, error) {
	what := "run " + id
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT "+runColumns+" FROM runs WHERE run_uuid = ?"), id)
	if err != nil {
		return mlflowapi.Run{}, dbErr(ctx, what, err)
	}
	infos, err := s.scanRunInfos(rows)
	rows.Close()
	if err != nil {
		return mlflowapi.Run{}, dbErr(ctx, what, err)
	}
	if len(infos) == 0 {
		return mlflowapi.Run{}, notFound("run %s not found", id)
	}
	return s.runData(ctx, infos[0])
}

// runData reads a run's params, tags, latest metrics and dataset inputs
// into the REST API's form.
func (s *store) runData(ctx context.Context, info mlflowapi.RunInfo) (mlflowapi.Run, error) {
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
	if r.Data.Metrics, err = s.latestMetrics(ctx, info.RunID); err != nil {
		return r, err
	}
	if s.has(revInputs) {
		if r.Inputs.DatasetInputs, err = s.datasetInputs(ctx, info.RunID); err != nil {
			return r, err
		}
	}
	return r, nil
}

// nanColumn is the column expression that is 1 for a point MLflow stored
// as NaN.
func (s *store) nanColumn() string {
	if s.has(revIsNaN) {
		return "CASE WHEN is_nan THEN 1 ELSE 0 END"
	}
	return "0"
}

// latestMetrics returns each metric key's latest point, sorted by key:
// latest_metrics, as the server returns it; before that table (MLflow
// 1.x revisions) the greatest point by (step, timestamp, value) of each
// key's history, as the migration that made it picks it.
func (s *store) latestMetrics(ctx context.Context, runID string) ([]mlflowapi.Metric, error) {
	what := "latest metrics of run " + runID
	table := "metrics"
	if s.has(revLatestMetrics) {
		table = "latest_metrics"
	}
	rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT {key}, {value}, {timestamp}, {step}, "+s.nanColumn()+" FROM "+table+" WHERE run_uuid = ?"), runID)
	if err != nil {
		return nil, dbErr(ctx, what, err)
	}
	defer rows.Close()
	latest := map[string]mlflowapi.Metric{}
	for rows.Next() {
		m, err := scanMetric(rows, nil)
		if err != nil {
			return nil, dbErr(ctx, what, err)
		}
		if old, ok := latest[m.Key]; !ok || mlflowlocal.Later(m, old) {
			latest[m.Key] = m
		}
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(ctx, what, err)
	}
	out := make([]mlflowapi.Metric, 0, len(latest))
	for _, k := range slices.Sorted(maps.Keys(latest)) {
		out = append(out, latest[k])
	}
	return out, nil
}

// scanMetric reads a row of value, timestamp, step and the NaN flag, and
// of the key when key is nil.
func scanMetric(rows *sql.Rows, key *string) (mlflowapi.Metric, error) {
	var (
		k     string
		v     sql.NullFloat64
		ts    sql.NullInt64
		step  sql.NullInt64
		isNaN int64
	)
	dst := []any{&v, &ts, &step, &isNaN}
	if key == nil {
		dst = append([]any{&k}, dst...)
	} else {
		k = *key
	}
	if err := rows.Scan(dst...); err != nil {
		return mlflowapi.Metric{}, err
	}
	value := v.Float64
	if isNaN != 0 || !v.Valid {
		value = math.NaN()
	}
	return mlflowapi.Metric{Key: k, Value: mlflowapi.Float(value), Timestamp: ts.Int64, Step: step.Int64}, nil
}

// MetricHistory yields every point of one key of a run, in pages, in the
// database's order (the MLflow source sorts them): NaN where MLflow stored
// is_nan, infinities as the ±1.7976931348623157e308 MLflow stored (as its
// server returns them). An error names the run and the key.
func (s *store) MetricHistory(ctx context.Context, runID, key string) iter.Seq2[[]mlflowapi.Metric, error] {
	return func(yield func([]mlflowapi.Metric, error) bool) {
		what := fmt.Sprintf("metric %q of run %s", key, runID)
		rows, err := s.st.DB.QueryContext(ctx, s.q("SELECT {value}, {timestamp}, {step}, "+s.nanColumn()+" FROM metrics WHERE run_uuid = ? AND {key} = ?"), runID, key)
		if err != nil {
			yield(nil, dbErr(ctx, what, err))
			return
		}
		defer rows.Close()
		var page []mlflowapi.Metric
		for rows.Next() {
			m, err := scanMetric(rows, &key)
			if err != nil {
				yield(nil, dbErr(ctx, what, err))
				return
			}
			if page = append(page, m); len(page) == mlflowapi.HistoryPageSize {
				if !yield(page, nil) {
					return
				}
				page = nil
			}
		}
		if err := rows.Err(); err != nil {
			yield(nil, dbErr(ctx, what, err))
			return
		}
		if len(page) > 0 {
			yield(page, nil)
		}
	}
}

// datasetInputs reads a run's dataset inputs as MLflow's SQL store
// assembles them: one per dataset, with the tags of its inputs.
func (s *store) datasetInputs(ctx context.Context, runID string) ([]mlflowapi.DatasetInput, error) {
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
