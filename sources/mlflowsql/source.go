package mlflowsql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// System is the origin system of native MLflow entities, the REST
// source's.
const System = "mlflow"

// Source reads one MLflow SQL store. It is safe for concurrent use.
type Source struct {
	st       *sqlstore.Store
	cfg      Config
	revision string // the store's alembic revision
	rev      int    // its index in revisions

	mu      sync.Mutex
	exps    map[schema.Ref]string   // experiment origin -> MLflow experiment id
	runs    map[schema.Ref]*runInfo // run origin -> what Runs found
	listed  map[string]bool         // experiment ids whose runs were listed
	noDir   map[string]string       // run id -> why its files were not read
	noSpans map[string]string       // trace id -> why its spans were not read
	closed  bool
}

// runInfo is what the source keeps about a run it listed.
type runInfo struct {
	id, artifactURI, experimentID string
}

var (
	_ sources.Source         = (*Source)(nil)
	_ sources.ArtifactLister = (*Source)(nil)
	_ sources.Checker        = (*Source)(nil)
	_ sources.Omitter        = (*Source)(nil)
	_ sources.FormerOriginer = (*Source)(nil)
)

// New connects to the store cfg names and reads its alembic revision,
// refusing one it does not know. Errors are fatal and show no password.
func New(ctx context.Context, cfg Config) (*Source, error) {
	st, err := sqlstore.Open(ctx, cfg.DB, sqlstore.ForForeignReading)
	if err != nil {
		return nil, err
	}
	s := &Source{st: st, cfg: cfg, exps: map[schema.Ref]string{}, runs: map[schema.Ref]*runInfo{},
		listed: map[string]bool{}, noDir: map[string]string{}, noSpans: map[string]string{}}
	if s.revision, s.rev, err = readRevision(ctx, st); err != nil {
		st.Close()
		return nil, fault.Fatal(err)
	}
	return s, nil
}

// readRevision returns the store's alembic revision and its index in
// revisions; a database without one, or at one runferry does not know, is
// an error naming it.
func readRevision(ctx context.Context, st *sqlstore.Store) (string, int, error) {
	rows, err := st.DB.QueryContext(ctx, "SELECT version_num FROM alembic_version")
	if err != nil {
		return "", 0, fmt.Errorf("not an MLflow tracking store: no alembic_version table (%v)", err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return "", 0, err
		}
		got = append(got, v)
	}
	if err := rows.Err(); err != nil {
		return "", 0, err
	}
	if len(got) != 1 {
		return "", 0, fmt.Errorf("MLflow store: alembic_version holds %d revisions %q, want exactly one", len(got), got)
	}
	for i, r := range revisions {
		if r.id == got[0] {
			return got[0], i, nil
		}
	}
	last := revisions[len(revisions)-1].id
	return "", 0, fmt.Errorf("MLflow store at alembic revision %q, which this runferry does not know (it reads revisions up to %s, MLflow 3.17): written by a newer MLflow? refusing to guess its schema; read it through a tracking server (mlflow+http://) or upgrade runferry", got[0], last)
}

// has reports whether the store's revision includes revision id.
func (s *Source) has(id string) bool {
	for i, r := range revisions {
		if r.id == id {
			return s.rev >= i
		}
	}
	panic("mlflowsql: unknown revision " + id)
}

// Revisions that added what the source reads.
const (
	revIsNaN        = "181f10493468" // metrics.is_nan
	revExpTags      = "df50e92ffc5e" // experiment_tags
	revRegistry     = "2b4d017a5e9b" // registered_models, model_versions
	revCreationTime = "97727af70f4d" // experiments.creation_time, last_update_time
	revInputs       = "7f2a7d5fae7d" // datasets, inputs, input_tags
	revTraces       = "867495a8f9d4" // trace_info
	revLoggedModels = "400f98739977" // logged_models
)

// q rewrites the ? placeholders for the dialect and quotes the identifiers
// written {name} (key, value, timestamp, step, name and status are
// keywords somewhere).
func (s *Source) q(query string) string {
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

// ref returns the origin of a native id: mlflow:INSTANCE/ID.
func (s *Source) ref(id string) schema.Ref {
	return schema.Ref{System: System, ID: s.cfg.Instance + "/" + id}
}

// FormerOrigins returns, as the REST source does, mlflow:ID for the origin
// mlflow:INSTANCE/ID of a native experiment or run.
func (s *Source) FormerOrigins(ref schema.Ref) []schema.Ref {
	if ref.System != System {
		return nil
	}
	id, ok := strings.CutPrefix(ref.ID, s.cfg.Instance+"/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil
	}
	return []schema.Ref{{System: System, ID: id}}
}

// Check proves the database reachable; errors are fatal.
func (s *Source) Check(ctx context.Context) error {
	if err := s.open(); err != nil {
		return err
	}
	if err := s.st.DB.PingContext(ctx); err != nil {
		return fault.Fatal(fmt.Errorf("%s: %w", s.st.Where(), err))
	}
	return nil
}

// Close closes the connection pool; later calls fail. It is idempotent.
func (s *Source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.st.Close()
}

func (s *Source) open() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fault.Fatal(errors.New("mlflow store source: closed"))
	}
	return nil
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

// Experiments yields the store's experiments ordered by id (deleted ones
// only with the deleted option; only those whose name starts with the
// experiment-prefix option, which is removed), mapped as the REST source
// maps them.
func (s *Source) Experiments(ctx context.Context) iter.Seq2[schema.Experiment, error] {
	return func(yield func(schema.Experiment, error) bool) {
		if err := s.open(); err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		exps, err := s.experiments(ctx)
		if err != nil {
			yield(schema.Experiment{}, err)
			return
		}
		for _, e := range exps {
			if !s.cfg.Deleted && e.LifecycleStage == mlflowapi.StageDeleted {
				continue
			}
			name, ok := strings.CutPrefix(e.Name, s.cfg.ExperimentPrefix)
			if !ok {
				continue
			}
			if name == "" {
				name = e.Name
			}
			x := mlflowconv.NativeExperiment(e, name, s.ref(e.ExperimentID))
			s.mu.Lock()
			s.exps[x.Origin] = e.ExperimentID
			s.mu.Unlock()
			if !yield(x, nil) {
				return
			}
		}
	}
}

// experiments reads every experiment with its tags, as the REST API would
// return them.
func (s *Source) experiments(ctx context.Context) ([]mlflowapi.Experiment, error) {
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

// stageOf reads a lifecycle stage; MLflow's default is active.
func stageOf(v sql.NullString) string {
	if !v.Valid || v.String == "" {
		return mlflowapi.StageActive
	}
	return v.String
}

type keyValue struct{ Key, Value string }

// keyValues runs a query yielding (key, value) rows; a NULL value reads as
// "" (MLflow's tags allow NULL values in early revisions).
func (s *Source) keyValues(ctx context.Context, query, what string, args ...any) ([]keyValue, error) {
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

// experimentID returns the MLflow id of the experiment with origin exp.
func (s *Source) experimentID(ctx context.Context, exp schema.Ref) (string, error) {
	s.mu.Lock()
	id, ok := s.exps[exp]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	for e, err := range s.Experiments(ctx) {
		if err != nil {
			return "", err
		}
		if e.Origin == exp {
			s.mu.Lock()
			id = s.exps[exp]
			s.mu.Unlock()
			return id, nil
		}
	}
	return "", fault.Permanent(fmt.Errorf("mlflow store: no experiment %s", exp))
}

// Omitted counts what the source leaves out: deleted experiments and the
// deleted runs of listed experiments (without the deleted option), and the
// runs (and logged models) whose files and the traces whose spans it could
// not read here, each kind named.
func (s *Source) Omitted(ctx context.Context) map[string]int64 {
	if s.open() != nil {
		return nil
	}
	out := map[string]int64{}
	s.mu.Lock()
	ids := slices.Sorted(maps.Keys(s.listed))
	for _, why := range s.noDir {
		out["runs whose files were not read: "+why]++
	}
	for _, why := range s.noSpans {
		out["traces whose spans were not read: "+why]++
	}
	s.mu.Unlock()
	count := func(what, query string, args ...any) {
		var n int64
		if err := s.st.DB.QueryRowContext(ctx, s.q(query), args...).Scan(&n); err == nil && n > 0 {
			out[what] += n
		}
	}
	if !s.cfg.Deleted {
		exps, err := s.experiments(ctx)
		if err == nil {
			for _, e := range exps {
				if e.LifecycleStage == mlflowapi.StageDeleted && strings.HasPrefix(e.Name, s.cfg.ExperimentPrefix) {
					out["deleted experiments left out (add ?deleted=true to copy them)"]++
				}
			}
		}
		for _, id := range ids {
			count("deleted runs left out (add ?deleted=true to copy them)",
				"SELECT COUNT(*) FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'deleted'", id)
		}
	}
	return out
}
