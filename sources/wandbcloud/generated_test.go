package wandbcloud_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// generatedProject serves (closed when t ends) the project
// fixture-entity/p of nruns finished runs r0000, r0001, …, created a
// second apart, each with a one-file export and rows rows of the metrics
// keys: run i's key k at row r is i*100 + r*10 + k, logged r seconds after
// the run's creation. With summary, a run's summary holds its last row.
func generatedProject(t *testing.T, nruns, rows int, keys []string, summary bool) *wandbtest.Server {
	t.Helper()
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	var runs []*wandbtest.Run
	for i := range nruns {
		at := start.Add(time.Duration(i) * time.Second)
		g := &wandbtest.Generated{Rows: rows, Keys: keys,
			Time:  func(r int) float64 { return float64(at.Unix()) + float64(r) },
			Value: func(r, k int) float64 { return float64(i*100 + r*10 + k) }}
		run := &wandbtest.Run{ID: fmt.Sprintf("r%04d", i), State: "finished", CreatedAt: at, HeartbeatAt: at,
			Generated: g, Export: &wandbtest.Export{Files: 1}}
		if summary {
			run.Summary = map[string]any{}
			for k, name := range keys {
				run.Summary[name] = g.Value(rows-1, k)
			}
		}
		runs = append(runs, run)
	}
	d := &wandbtest.Data{Entity: "fixture-entity", Username: "tester", SyncedAt: start,
		Projects: []*wandbtest.Project{{Name: "p", CreatedAt: start, Runs: runs}}}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return srv
}
