package sqlstore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// BenchmarkNamesMariaDB compares, side by side on one MariaDB server,
// writing and reading one run's metric points in schema version 3 (main's:
// VARCHAR(700) names, primary key (run_id, name, step, seq)) and version
// 4 (LONGTEXT names, primary key (run_id, name_hash, step, seq)). Each
// iteration writes then reads the run in a fresh database of each version,
// the two interleaved (3 4 3 4 ...), and reports per version the wall time
// and the CPU time (user+sys) of this process and of the server, in
// seconds per run (means over the iterations), and the wall and server CPU
// time of upgrading the version 3 database, holding the run, to version 4
// in place. Knobs:
// RUNFERRY_BENCH_KEYS (100), RUNFERRY_BENCH_STEPS (2000).
func BenchmarkNamesMariaDB(b *testing.B) {
	m := testenv.SharedMariaDB(b)
	b.Setenv(MySQLPasswordEnv, m.Password)
	keys, steps := envInt("RUNFERRY_BENCH_KEYS", 100), envInt("RUNFERRY_BENCH_STEPS", 2000)
	pidText, err := os.ReadFile(filepath.Join(m.Dir, "mariadb.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid := strings.TrimSpace(string(pidText))
	points := make([]schema.Metric, 0, keys*steps)
	for k := range keys {
		key := fmt.Sprintf("train/layer_%03d/grad_norm", k)
		for s := range steps {
			points = append(points, schema.Metric{Key: key, Step: int64(s), Time: 1_700_000_000_000 + int64(s), Value: float64(k*s) / 7})
		}
	}
	type total struct{ wall, self, server [2]time.Duration } // [write, read]
	totals := map[int]*total{3: {}, 4: {}}
	var upgrade [3]time.Duration // wall, client CPU, server CPU
	saved := migrations
	b.Cleanup(func() { migrations = saved })
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		for _, v := range []int{3, 4} {
			migrations = saved[:v]
			benchDBs++
			name := fmt.Sprintf("bench_names_%d", benchDBs)
			s := mustOpenB(b, m.CreateDatabase(b, name))
			if err := s.Migrate(ctx); err != nil {
				b.Fatal(err)
			}
			expID, err := s.PutExperiment(ctx, schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "e"})
			if err != nil {
				b.Fatal(err)
			}
			t := totals[v]
			measure(b, pid, &t.wall[0], &t.self[0], &t.server[0], func() {
				tx, err := s.BeginRun(ctx, expID, schema.Run{Origin: schema.Ref{System: "memory", ID: "r"}, Experiment: schema.Ref{System: "memory", ID: "e"}, Name: "r", Status: schema.StatusFinished}, nil)
				if err != nil {
					b.Fatal(err)
				}
				for rest := points; len(rest) > 0; {
					n := min(10_000, len(rest))
					if err := tx.Metrics(ctx, rest[:n]); err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := tx.Commit(ctx, "fp"); err != nil {
					b.Fatal(err)
				}
			})
			rid, err := s.RunID(ctx, "memory:r")
			if err != nil {
				b.Fatal(err)
			}
			read := 0
			measure(b, pid, &t.wall[1], &t.self[1], &t.server[1], func() {
				if err := s.Metrics(ctx, rid, 10_000, func(p []schema.Metric) error { read += len(p); return nil }); err != nil {
					b.Fatal(err)
				}
			})
			if read != len(points) {
				b.Fatalf("version %d: read %d points, wrote %d", v, read, len(points))
			}
			if v == 3 {
				// The upgrade of this database to version 4 in place.
				migrations = saved
				s.Dialect.nopad = ""
				measure(b, pid, &upgrade[0], &upgrade[1], &upgrade[2], func() {
					if err := s.Migrate(ctx); err != nil {
						b.Fatal(err)
					}
				})
			}
			s.Close()
			if err := m.Exec("", "DROP DATABASE "+name); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(upgrade[0].Seconds()/float64(b.N), "v3to4-upgrade-wall-s")
	b.ReportMetric(upgrade[2].Seconds()/float64(b.N), "v3to4-upgrade-server-cpu-s")
	for _, v := range []int{3, 4} {
		t := totals[v]
		for j, op := range []string{"write", "read"} {
			n := float64(b.N)
			b.ReportMetric(t.wall[j].Seconds()/n, fmt.Sprintf("v%d-%s-wall-s", v, op))
			b.ReportMetric(t.self[j].Seconds()/n, fmt.Sprintf("v%d-%s-client-cpu-s", v, op))
			b.ReportMetric(t.server[j].Seconds()/n, fmt.Sprintf("v%d-%s-server-cpu-s", v, op))
		}
	}
}

// benchDBs numbers the benchmark's databases (b.N grows between calls).
var benchDBs int

func mustOpenB(b *testing.B, raw string) *Store {
	b.Helper()
	s, err := Open(context.Background(), parse(b, raw), ForWriting)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// measure runs f and adds its wall time, this process's CPU time and the
// CPU time of process pid (the server) to wall, self and server.
func measure(b *testing.B, pid string, wall, self, server *time.Duration, f func()) {
	s0, p0 := selfCPU(), procCPU(b, pid)
	t0 := time.Now()
	f()
	*wall += time.Since(t0)
	*self += selfCPU() - s0
	*server += procCPU(b, pid) - p0
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU returns the user+sys time of process pid (/proc/PID/stat, clock
// ticks of 1/100 s).
func procCPU(b *testing.B, pid string) time.Duration {
	raw, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
