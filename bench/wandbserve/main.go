// Command wandbserve serves generated W&B runs through the W&B API test
// server (internal/wandbapi/wandbtest) for the W&B cloud benchmark: one
// entity "bench", one project "bench", -runs finished runs of -steps
// history rows of -keys float metrics each, every run's history in one
// parquet export, the rows made on demand (wandbtest.Generated: the
// server's memory stays flat whatever -runs and -steps; an export file is
// encoded as it is sent), GraphQL rate-limited to -rate requests a second (a
// bucket of -rate, W&B's RateLimit headers) and every answer delayed by
// -latency.
//
// -events N gives each run N system-metrics rows (run.events: one
// GraphQL request a run to read them, as every run W&B's SDK writes with
// its default system monitor has), -event-keys K values in each row (2:
// system.cpu and system.memory; more: the keys W&B's SDK (wandb-core)
// writes on a machine without GPUs, as in testdata/wandb's fixtures: cpu,
// memory_percent, proc.memory.rssMB, …, up to 13), -event-interval D
// apart (the SDK samples every 15 s), made on demand
// (wandbtest.GeneratedEvents), -loglines N that many console lines
// (logLines: one request a run for up to 1,000): what makes the GraphQL
// rate limit bind on a copy, whose runs' histories, listed in export form,
// cost no request of their own. Their points and lines are counted in
// "points" and "lines" (system metrics: keys system.cpu, system.memory).
//
// -subset N adds a project "subset" holding the first N of those runs
// (the same ids and rows), so that a slow client (the wandb SDK) can be
// measured on part of the runs against the same server.
//
// It prints one JSON line {"url": ..., "key": ..., "points": N, "sum": S,
// "runs": R, "subset_points": ..., "subset_sum": ..., "subset_runs": ...}
// and serves until interrupted. GET /_bench/stats answers the server's
// counters as JSON; POST /_bench/reset zeroes them; POST
// /_bench/limit?rate=R&latency=D sets the rate limit and latency (0 and
// 0s: none), so that one server serves a copy with and without them.
//
// Like W&B, where the parquet exports and run files are objects in cloud
// storage behind signed URLs and not requests to the GraphQL API, the
// server's rate limit holds only POST /graphql: downloads are not counted
// by it (they wait the latency like every answer).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// Key is the benchmark server's API key.
const Key = "benchbenchbenchbenchbenchbenchbenchbench"

func main() {
	runs := flag.Int("runs", 100, "runs")
	steps := flag.Int("steps", 2000, "history rows per run")
	keys := flag.Int("keys", 10, "metrics per row")
	rate := flag.Float64("rate", 10, "GraphQL requests per second the server allows (0: no limit)")
	latency := flag.Duration("latency", 100*time.Millisecond, "delay of every answer")
	subset := flag.Int("subset", 0, "also serve project \"subset\" with the first N runs")
	events := flag.Int("events", 0, "system-metrics rows per run")
	eventKeys := flag.Int("event-keys", 2, "values per system-metrics row (2 to 13)")
	eventInterval := flag.Duration("event-interval", 2*time.Second, "time between system-metrics rows")
	loglines := flag.Int("loglines", 0, "console lines per run")
	flag.Parse()
	if *eventKeys < 2 || *eventKeys > len(sdkEventKeys) {
		fmt.Fprintf(os.Stderr, "wandbserve: -event-keys %d: want 2 to %d\n", *eventKeys, len(sdkEventKeys))
		os.Exit(2)
	}

	created := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &wandbtest.Project{Name: "bench", CreatedAt: created}
	var points, subPoints, lines int64
	var sum, subSum float64
	sub := &wandbtest.Project{Name: "subset", CreatedAt: created}
	var names []string
	for k := range *keys {
		names = append(names, fmt.Sprintf("m%02d", k))
	}
	for i := range *runs {
		g := wandbtest.BenchRun(i, *steps, names, created)
		r := &wandbtest.Run{ID: fmt.Sprintf("run%05d", i), DisplayName: fmt.Sprintf("bench-%d", i), State: "finished",
			User: "bench", CreatedAt: created.Add(time.Duration(i) * time.Minute), HeartbeatAt: created.Add(time.Duration(i)*time.Minute + 30*time.Second),
			Config: map[string]any{"lr": 0.001 * float64(i+1), "seed": float64(i)}, Export: &wandbtest.Export{Files: 1}, Generated: g}
		var evPoints int64
		var evSum float64
		if *events > 0 {
			ev := benchEvents(i, *events, *eventKeys, *eventInterval, created)
			r.EventsGenerated = ev
			r.SystemMetrics = map[string]any{}
			for e := range *events {
				for k, v := range ev.Row(e) {
					if strings.HasPrefix(k, "system.") {
						evPoints++
						evSum += v.(float64)
						if e == *events-1 {
							r.SystemMetrics[k] = v
						}
					}
				}
			}
		}
		points += evPoints
		sum += evSum
		for l := range *loglines {
			r.LogLines = append(r.LogLines, wandbtest.LogLine{Time: created.Add(time.Duration(i)*time.Minute + time.Duration(l)*time.Second),
				Line: fmt.Sprintf("run %d line %d", i, l)})
		}
		lines += int64(*loglines)
		var runSum float64
		for s := range *steps {
			for k := range *keys {
				runSum += g.Value(s, k)
			}
		}
		points += int64(*steps * *keys)
		sum += runSum
		if *steps > 0 {
			r.Summary = map[string]any{"m00": g.Value(*steps-1, 0)}
		}
		p.Runs = append(p.Runs, r)
		if i < *subset {
			c, e := *r, *r.Export
			c.Export = &e
			sub.Runs = append(sub.Runs, &c)
			subPoints += int64(*steps)*int64(*keys) + evPoints
			subSum += runSum + evSum
		}
	}
	projects := []*wandbtest.Project{p}
	if *subset > 0 {
		projects = append(projects, sub)
	}
	srv := wandbtest.New(&wandbtest.Data{Entity: "bench", Username: "bench", Projects: projects}, Key)
	defer srv.Close()
	srv.SetLimit(*rate, *latency)
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/_bench/stats":
			json.NewEncoder(w).Encode(map[string]int64{
				"graphql": srv.Requests.Load(), "limited": srv.Limited.Load(), "downloads": srv.ExportDownloads.Load(),
				"parquet_history": srv.ParquetQueries.Load(), "history_pages": srv.HistoryReads.Load(), "runs_listed": srv.RunsListed.Load(),
			})
			return true
		case "/_bench/limit":
			q := r.URL.Query()
			perSecond, err1 := strconv.ParseFloat(q.Get("rate"), 64)
			delay, err2 := time.ParseDuration(q.Get("latency"))
			if err1 != nil || err2 != nil || perSecond < 0 || delay < 0 {
				http.Error(w, "want rate=N&latency=DURATION", http.StatusBadRequest)
				return true
			}
			srv.SetLimit(perSecond, delay)
			return true
		case "/_bench/reset":
			srv.Requests.Store(0)
			srv.Limited.Store(0)
			srv.ExportDownloads.Store(0)
			srv.ParquetQueries.Store(0)
			srv.HistoryReads.Store(0)
			srv.RunsListed.Store(0)
			return true
		}
		return false
	})
	json.NewEncoder(os.Stdout).Encode(map[string]any{"url": srv.URL, "key": Key, "points": points, "sum": sum, "runs": *runs, "lines": lines,
		"subset_points": subPoints, "subset_sum": subSum, "subset_runs": len(sub.Runs)})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
}

// sdkEventKeys are the system metrics W&B's SDK (wandb-core's system
// monitor) writes for a machine without GPUs: the keys of the stats records
// in testdata/wandb's fixtures, and "cpu".
var sdkEventKeys = []string{"cpu", "memory_percent", "proc.memory.rssMB", "proc.memory.availableMB", "proc.memory.percent",
	"proc.cpu.threads", "disk./.usagePercent", "disk./.usageGB", "disk.vda.in", "disk.vda.out",
	"network.sent", "network.recv", "network.tcpRetransmits"}

// benchEvents is run i's rows system-metrics rows of keys values each,
// interval apart from the run's start: with 2 keys system.cpu and
// system.memory, as before -event-keys; with more, the first keys of
// sdkEventKeys, each a deterministic value of the run, row and key.
func benchEvents(i, rows, keys int, interval time.Duration, created time.Time) *wandbtest.GeneratedEvents {
	step := interval.Seconds()
	return &wandbtest.GeneratedEvents{Rows: rows, Row: func(e int) map[string]any {
		m := map[string]any{"_timestamp": float64(created.Unix()) + float64(i*60) + float64(e)*step,
			"_runtime": float64(e) * step, "_wandb": true}
		if keys == 2 {
			m["system.cpu"] = float64(e%100) / 2
			m["system.memory"] = float64(1000 + i + e)
			return m
		}
		for k, name := range sdkEventKeys[:keys] {
			m["system."+name] = float64((i*31+e*7+k*13)%1000) / 8
		}
		return m
	}}
}
