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

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/sqldb"
)

// BenchmarkMappedReadPostgres compares, side by side on the same
// PostgreSQL database, the rate at which the mapped source reads a run's
// metrics through the example mapping (docs/examples/sql-mapping: its
// metrics query, streamed, each row converted and checked, handed on in
// pages of 10,000) with a bare streamed SELECT of the same query (rows
// scanned into typed variables, nothing else). Target (issue 14): ours >=
// 80% of bare. BENCH_SQL_POINTS sets the run's points (default 1,000,000:
// 20 keys); the sides run BENCH_SQL_REPEAT times (default 3), interleaved,
// and medians are compared. Run by `make bench`.
func BenchmarkMappedReadPostgres(b *testing.B) {
	points := envInt("BENCH_SQL_POINTS", 1_000_000)
	repeat := envInt("BENCH_SQL_REPEAT", 3)
	ctx := context.Background()
	dsn := testenv.SharedPostgres(b).CreateDatabase(b, "bench_mapped_read")
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	loadExample(b, db)
	fillMetrics(b, ctx, db, points)
	src, err := sqldb.Open(ctx, parse(b, withMapping(dsn, example(b, "mapping.yaml"))))
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	base, _, _ := cutQuery(dsn)
	run := schema.Ref{System: "mytracker", ID: base + "/run/1"}
	var ours, bare []float64
	for b.Loop() {
		for rep := range repeat {
			sides := []func() float64{
				func() float64 { return benchMappedOurs(b, ctx, src, run, points) },
				func() float64 { return benchMappedBare(b, ctx, db, points) },
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
	b.ReportMetric(mb, "bare-select-points/s")
	b.ReportMetric(mo/mb, "ours/bare")
	b.Logf("reading metrics through a mapping from PostgreSQL, %d points: ours %.0f points/s (runs %v), bare SELECT %.0f points/s (runs %v): %.2fx of bare, target 0.80x",
		points, mo, rounded(ours), mb, rounded(bare), mo/mb)
}

func cutQuery(dsn string) (string, string, bool) {
	for i := range dsn {
		if dsn[i] == '?' {
			return trimScheme(dsn[:i]), dsn[i+1:], true
		}
	}
	return trimScheme(dsn), "", false
}

func trimScheme(s string) string {
	const p = "postgres://postgres@"
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// fillMetrics replaces run 1's metrics with n points over 20 keys (COPY).
func fillMetrics(b testing.TB, ctx context.Context, db *sql.DB, n int) {
	if _, err := db.Exec("DELETE FROM metrics WHERE run_id = 1"); err != nil {
		b.Fatal(err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	steps := n / 20
	i := 0
	err = conn.Raw(func(dc any) error {
		_, err := dc.(*stdlib.Conn).Conn().CopyFrom(ctx, pgx.Identifier{"metrics"}, []string{"run_id", "metric", "step", "value", "logged_at"},
			pgx.CopyFromFunc(func() ([]any, error) {
				if i == steps*20 {
					return nil, nil
				}
				k, s := i/steps, i%steps
				i++
				return []any{1, fmt.Sprintf("train/metric_%02d", k), s, float64(s*k) * 0.001, int64(1709294400000 + s*100)}, nil
			}))
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := db.Exec("ANALYZE metrics"); err != nil {
		b.Fatal(err)
	}
}

func benchMappedOurs(b *testing.B, ctx context.Context, src sources.Source, run schema.Ref, n int) float64 {
	start := time.Now()
	got := 0
	for page, err := range src.Metrics(ctx, run) {
		if err != nil {
			b.Fatal(err)
		}
		got += len(page)
	}
	el := time.Since(start)
	if got != n {
		b.Fatalf("read %d points through the mapping, want %d", got, n)
	}
	return float64(n) / el.Seconds()
}

func benchMappedBare(b *testing.B, ctx context.Context, db *sql.DB, n int) float64 {
	start := time.Now()
	rows, err := db.QueryContext(ctx, "SELECT metric, step, value, logged_at FROM metrics WHERE run_id = $1 ORDER BY metric, step", 1)
	if err != nil {
		b.Fatal(err)
	}
	got := 0
	var key string
	var step, at int64
	var v float64
	for rows.Next() {
		if err := rows.Scan(&key, &step, &v, &at); err != nil {
			b.Fatal(err)
		}
		got++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	rows.Close()
	el := time.Since(start)
	if got != n {
		b.Fatalf("read %d points with a bare SELECT, want %d", got, n)
	}
	return float64(n) / el.Seconds()
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
