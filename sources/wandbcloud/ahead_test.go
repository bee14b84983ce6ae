package wandbcloud_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// TestExportsDownloadedAhead: when runs are read in listing order, reading
// the first run starts the downloads of the next ExportsAhead runs' exports
// (32: with 4, a copy of 1,000 small runs at 100 ms a download waited 20 s
// on latency, docs/BENCHMARKS.md), no more than AheadPoints allows, and
// every run then reads its own points, each export downloaded once.
func TestExportsDownloadedAhead(t *testing.T) {
	const nruns, rows = 60, 5
	keys := []string{"loss", "acc"}
	srv := generatedProject(t, nruns, rows, keys, true)
	exp := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p"}

	for _, tc := range []struct {
		name        string
		aheadPoints int64
		want        int64 // runs downloaded ahead when the first is read
	}{
		{"by runs", wandbcloud.AheadPoints, 32},
		{"by points", 5 * rows * int64(len(keys)), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := wandbcloud.AheadPoints
			wandbcloud.AheadPoints = tc.aheadPoints
			t.Cleanup(func() { wandbcloud.AheadPoints = old })
			src, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", Project: "p", APIKey: key})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			src.ReadsEveryRun()
			ctx := context.Background()
			listed := listRuns(t, src, exp)
			if len(listed) != nruns {
				t.Fatalf("%d runs listed, want %d", len(listed), nruns)
			}
			d0 := srv.ExportDownloads.Load()
			for i, r := range listed {
				var got []schema.Metric
				for page, err := range src.Metrics(ctx, r.Origin) {
					if err != nil {
						t.Fatalf("run %s: %v", r.Origin.ID, err)
					}
					got = append(got, page...)
				}
				if i == 0 {
					if n := src.FetchedAhead.Load(); n != tc.want {
						t.Errorf("after the first run, %d runs' exports downloaded ahead, want %d", n, tc.want)
					}
				}
				if len(got) != rows*len(keys) {
					t.Fatalf("run %s: %d points, want %d", r.Origin.ID, len(got), rows*len(keys))
				}
				for _, m := range got {
					if want := float64(i*100) + float64(m.Step*10) + map[string]float64{"loss": 0, "acc": 1}[m.Key]; m.Value != want {
						t.Fatalf("run %s: %s at step %d is %v, want %v", r.Origin.ID, m.Key, m.Step, m.Value, want)
					}
				}
			}
			if n := srv.ExportDownloads.Load() - d0; n != nruns {
				t.Errorf("%d exports downloaded for %d runs, want one each", n, nruns)
			}
		})
	}
}

// TestEventsAskedAhead: in a first job (ReadsEveryRun) reading runs in
// listing order, reading the first run asks for the system metrics of the
// runs with them among the next EventsAhead (the requests the API's rate
// limit holds then go while the runs before them are read, not one after
// each run's history: docs/BENCHMARKS.md, "W&B cloud"); every run then
// reads its own system metrics, each run's asked for once. A job that is
// not a first job asks for none ahead.
func TestEventsAskedAhead(t *testing.T) {
	const nruns, rows, events = 60, 3, 4
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	var runs []*wandbtest.Run
	withEvents := 0
	for i := range nruns {
		at := start.Add(time.Duration(i) * time.Second)
		g := &wandbtest.Generated{Rows: rows, Keys: []string{"loss"},
			Time:  func(r int) float64 { return float64(at.Unix()) + float64(r) },
			Value: func(r, k int) float64 { return float64(i*100 + r) }}
		run := &wandbtest.Run{ID: fmt.Sprintf("r%04d", i), State: "finished", CreatedAt: at, HeartbeatAt: at,
			Generated: g, Export: &wandbtest.Export{Files: 1}}
		if i%2 == 0 { // every other run has system metrics
			withEvents++
			run.EventsGenerated = &wandbtest.GeneratedEvents{Rows: events, Row: func(e int) map[string]any {
				return map[string]any{"system.cpu": float64(i*10 + e), "_timestamp": float64(at.Unix() + int64(e)), "_runtime": float64(e), "_wandb": true}
			}}
		}
		runs = append(runs, run)
	}
	srv := wandbtest.New(&wandbtest.Data{Entity: "fixture-entity", Username: "tester", SyncedAt: start,
		Projects: []*wandbtest.Project{{Name: "p", CreatedAt: start, Runs: runs}}}, key)
	defer srv.Close()
	exp := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p"}
	for _, firstJob := range []bool{true, false} {
		src, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", Project: "p", APIKey: key})
		if err != nil {
			t.Fatal(err)
		}
		if firstJob {
			src.ReadsEveryRun()
		}
		ctx := context.Background()
		listed := listRuns(t, src, exp)
		e0 := srv.EventsReads.Load()
		for i, r := range listed {
			var got []float64
			for page, err := range src.Metrics(ctx, r.Origin) {
				if err != nil {
					t.Fatalf("run %s: %v", r.Origin.ID, err)
				}
				for _, m := range page {
					if m.Key == "system/cpu" {
						got = append(got, m.Value)
					}
				}
			}
			if i == 0 {
				// Run 0's own, and those of runs 2, 4, …, 32 ahead.
				want, ahead := int64(1+wandbcloud.EventsAhead/2), int64(wandbcloud.EventsAhead/2)
				if !firstJob {
					want, ahead = 1, 0
				}
				// The requests ahead are sent in the background: wait
				// for them to reach the server (at most 10 s).
				for deadline := time.Now().Add(10 * time.Second); srv.EventsReads.Load()-e0 < want && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				if n, a := srv.EventsReads.Load()-e0, src.EventsAskedAhead.Load(); n != want || a != ahead {
					t.Errorf("first job %v: after the first run, the server was asked %d runs' events (%d by the source ahead), want %d (%d)", firstJob, n, a, want, ahead)
				}
			}
			var want []float64
			if i%2 == 0 {
				for e := range events {
					want = append(want, float64(i*10+e))
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("first job %v: run %s: system/cpu %v, want %v", firstJob, r.Origin.ID, got, want)
			}
		}
		if n := srv.EventsReads.Load() - e0; n != int64(withEvents) {
			t.Errorf("first job %v: %d runs' events asked for, want %d: once a run with them", firstJob, n, withEvents)
		}
		src.Close()
	}
}

// TestReleasedRunFreesDownloadsAhead: a run whose exports were downloaded
// ahead and that the job then releases without reading it (the plan
// skipped it: unchanged, filtered, another shard's) gives back its share
// of AheadPoints, so downloads ahead go on for the runs after it. Before,
// its points stayed counted to the end of the job and its files stayed
// until Close: with AheadPoints at five runs, three released runs left
// room for one more run ahead instead of four.
func TestReleasedRunFreesDownloadsAhead(t *testing.T) {
	const nruns, rows = 20, 5
	keys := []string{"loss", "acc"}
	srv := generatedProject(t, nruns, rows, keys, true)
	exp := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p"}
	old := wandbcloud.AheadPoints
	wandbcloud.AheadPoints = 5 * rows * int64(len(keys))
	t.Cleanup(func() { wandbcloud.AheadPoints = old })
	src, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", Project: "p", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.ReadsEveryRun()
	ctx := context.Background()
	listed := listRuns(t, src, exp)
	read := func(i int) {
		t.Helper()
		n := 0
		for page, err := range src.Metrics(ctx, listed[i].Origin) {
			if err != nil {
				t.Fatalf("run %s: %v", listed[i].Origin.ID, err)
			}
			n += len(page)
		}
		if n != rows*len(keys) {
			t.Fatalf("run %s: %d points, want %d", listed[i].Origin.ID, n, rows*len(keys))
		}
	}
	read(0)
	if n := src.FetchedAhead.Load(); n != 5 {
		t.Fatalf("after the first run, %d runs downloaded ahead, want 5 (AheadPoints)", n)
	}
	for _, i := range []int{3, 4, 5} { // skipped by the plan
		src.ReleaseRun(listed[i].Origin)
	}
	read(1)
	if n := src.FetchedAhead.Load(); n < 5+3 {
		t.Errorf("after three runs fetched ahead were released and the next read, %d runs downloaded ahead in all, want at least 8", n)
	}
	for i := 2; i < nruns; i++ {
		if i >= 3 && i <= 5 {
			continue
		}
		read(i)
	}
}

// listRuns returns the runs src lists in exp, in listing order; an error
// fails the test.
func listRuns(t *testing.T, src *wandbcloud.Source, exp schema.Ref) []schema.Run {
	t.Helper()
	var listed []schema.Run
	for r, err := range src.Runs(context.Background(), exp) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, r)
	}
	return listed
}
