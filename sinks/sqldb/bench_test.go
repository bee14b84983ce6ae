package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/sqlstore"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/sqldb"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// BenchmarkMetricsIntoPostgres compares, side by side on the same
// PostgreSQL cluster, the rate at which the SQL sink loads a run's metrics
// (runferry's engine copying one run from memory: run transaction, COPY
// per batch of 10,000, commit) with a bare COPY of the same rows into the
// same table in one transaction (pgx CopyFrom streaming them, nothing
// else). Target (issue 14): ours >= 80% of bare. Each side runs
// BENCH_SQL_REPEAT times (default 3), interleaved, each into a fresh
// PostgreSQL schema; medians are compared. BENCH_SQL_POINTS sets the
// points (default 300,000: 20 keys x 15,000 steps). Run by `make bench`.
func BenchmarkMetricsIntoPostgres(b *testing.B) {
	points := envInt("BENCH_SQL_POINTS", 300_000)
	repeat := envInt("BENCH_SQL_REPEAT", 3)
	ctx := context.Background()
	d := benchDataset(points)
	var ours, bare []float64 // points per second
	for b.Loop() {
		for rep := range repeat {
			sides := []func() float64{
				func() float64 { return benchOurs(b, ctx, d, points) },
				func() float64 { return benchBare(b, ctx, d, points) },
			}
			if rep%2 == 1 {
				slices.Reverse(sides)
			}
			o, r := sides[0](), sides[1]()
			if rep%2 == 1 {
				o, r = r, o
			}
			ours, bare = append(ours, o), append(bare, r)
		}
	}
	mo, mb := median(ours), median(bare)
	b.ReportMetric(mo, "ours-points/s")
	b.ReportMetric(mb, "bare-copy-points/s")
	b.ReportMetric(mo/mb, "ours/bare")
	b.Logf("metrics into PostgreSQL, %d points: ours %.0f points/s (runs %v), bare COPY %.0f points/s (runs %v): %.2fx of bare, target 0.80x",
		points, mo, rounded(ours), mb, rounded(bare), mo/mb)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func rounded(v []float64) []string {
	var out []string
	for _, x := range v {
		out = append(out, fmt.Sprintf("%.0f", x))
	}
	return out
}

// benchDataset is one experiment holding one finished run of n points over
// 20 keys.
func benchDataset(n int) *dataset.Dataset {
	exp := schema.Ref{System: "bench", ID: "exp"}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rd := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "bench", ID: "run"}, Experiment: exp,
		Name: "bench", Status: schema.StatusFinished, Start: t0, End: t0.Add(time.Hour)}}
	rd.Metrics = make([]schema.Metric, 0, n)
	steps := n / 20
	for k := range 20 {
		key := fmt.Sprintf("train/metric_%02d", k)
		for s := range steps {
			rd.Metrics = append(rd.Metrics, schema.Metric{Key: key, Step: int64(s), Value: float64(s*k) * 0.001, Time: t0.UnixMilli() + int64(s)*100})
		}
	}
	return &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "bench"}}, Runs: []*dataset.RunData{rd}}
}

// migrate creates runferry's schema at loc (the sink creates it with its
// first write; the benchmark leaves that out of the timing).
func migrate(b *testing.B, ctx context.Context, loc string) {
	st, err := sqlstore.Open(ctx, parse(b, loc), sqlstore.ForWriting)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
}

// benchOurs copies d into a fresh schema through the sink and returns
// points per second (the schema's creation is not timed).
func benchOurs(b *testing.B, ctx context.Context, d *dataset.Dataset, n int) float64 {
	loc := freshPostgresB(b)
	migrate(b, ctx, loc)
	dst := openSink(b, loc).(*sqldb.Sink)
	start := time.Now()
	rep, err := transfer.Copy(ctx, memsrc.New(d), dst, transfer.Options{})
	el := time.Since(start)
	if err != nil || rep.Totals.Committed != 1 || rep.Totals.Points != int64(n) {
		b.Fatalf("copy: %v %+v", err, rep.Totals)
	}
	dst.Close()
	return float64(n) / el.Seconds()
}

// benchBare COPYs the same rows into the metrics table of a fresh schema
// in one transaction and returns points per second (the schema, the
// experiment and the run row are made before the timing starts).
func benchBare(b *testing.B, ctx context.Context, d *dataset.Dataset, n int) float64 {
	loc := freshPostgresB(b)
	migrate(b, ctx, loc)
	db, err := sql.Open("pgx", loc)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var runID int64
	if err := conn.QueryRowContext(ctx, `WITH e AS (INSERT INTO experiments (origin, name, description, deleted) VALUES ('bench:exp', 'bench', '', 0) RETURNING id)
		INSERT INTO runs (origin, experiment_id, name, user_name, status, notes, group_name, job_type, host, program, git_commit, git_remote, deleted, points, fingerprint, written_ms)
		SELECT 'bench:run', id, 'bench', '', 'FINISHED', '', '', '', '', '', '', '', 0, 0, '', 0 FROM e RETURNING id`).Scan(&runID); err != nil {
		b.Fatal(err)
	}
	ms := d.Runs[0].Metrics
	start := time.Now()
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		i := 0
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"metrics"}, []string{"run_id", "name", "step", "seq", "time_ms", "value", "special"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == len(ms) {
					return nil, nil
				}
				m := ms[i]
				v, sp := sqlstore.EncodeValue(m.Value)
				i++
				return []any{runID, m.Key, m.Step, int64(i), m.Time, v, sp}, nil
			}))
		if err != nil {
			tx.Rollback(ctx)
			return err
		}
		return tx.Commit(ctx)
	})
	el := time.Since(start)
	if err != nil {
		b.Fatal(err)
	}
	return float64(n) / el.Seconds()
}
