package wandbcloud_test

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// TestMetricsPages: a run of more than two pages of points, read from its
// parquet exports (two files), yields every point once, in step order and
// key order within a step, in pages of at least PageSize points (the last
// one excepted) that do not overrun PageSize by more than a row.
func TestMetricsPages(t *testing.T) {
	const rows = 2*wandbcloud.PageSize/7 + 123
	keys := []string{"z", "loss", "acc", "b", "lr", "n", "m"}
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	g := &wandbtest.Generated{Rows: rows, Keys: keys,
		Time:  func(r int) float64 { return 1.7e9 + float64(r)/4 },
		Value: func(r, k int) float64 { return math.Sin(float64(r*7 + k)) }}
	run := &wandbtest.Run{ID: "big", State: "finished", CreatedAt: start, HeartbeatAt: start,
		Generated: g, Export: &wandbtest.Export{Files: 2}}
	d := &wandbtest.Data{Entity: "fixture-entity", Username: "tester", SyncedAt: start,
		Projects: []*wandbtest.Project{{Name: "p", CreatedAt: start, Runs: []*wandbtest.Run{run}}}}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)

	sorted := slices.Sorted(slices.Values(keys))
	var want []schema.Metric
	for r := range rows {
		at, _ := wandbfile.TimestampMillis(g.Time(r))
		for _, name := range sorted {
			want = append(want, schema.Metric{Key: name, Value: g.Value(r, slices.Index(keys, name)), Step: int64(r), Time: at})
		}
	}
	var got []schema.Metric
	var sizes []int
	ref := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p/big"}
	for page, err := range listed(t, srv).Metrics(context.Background(), ref) {
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(page))
		got = append(got, page...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%d points read, want %d (first %v, want %v)", len(got), len(want), got[:min(len(got), 2)], want[:2])
	}
	if len(sizes) != 3 {
		t.Fatalf("pages of %v points, want 3 pages", sizes)
	}
	for _, n := range sizes[:len(sizes)-1] {
		if n < wandbcloud.PageSize || n >= wandbcloud.PageSize+len(keys) {
			t.Errorf("pages of %v points, want at least %d and less than a row more", sizes, wandbcloud.PageSize)
		}
	}
}
