package wandbcloud_test

import (
	"context"
	"testing"

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
			var listed []schema.Run
			for r, err := range src.Runs(ctx, exp) {
				if err != nil {
					t.Fatal(err)
				}
				listed = append(listed, r)
			}
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
