package wandbcloud_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/wandbcloud"
)

// tailServer holds run "num" (50 steps: a at every step, b at even ones;
// three system-metrics rows) and run "rich" (one image among its values).
func tailServer(t *testing.T) (*wandbtest.Server, *wandbtest.Run) {
	t.Helper()
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	num := &wandbtest.Run{ID: "num", State: "running", CreatedAt: start, HeartbeatAt: start}
	for i := range 50 {
		num.History = append(num.History, tailRow(i))
	}
	for i := range 3 {
		num.Events = append(num.Events, map[string]any{"system.cpu": float64(i), "_timestamp": float64(start.Unix() + int64(i))})
	}
	rich := &wandbtest.Run{ID: "rich", State: "finished", CreatedAt: start, HeartbeatAt: start,
		History: []map[string]any{{"_step": 0.0, "_timestamp": 1e9, "a": 1.0, "img": map[string]any{"_type": "image-file", "path": "media/x.png"}}}}
	d := &wandbtest.Data{Entity: "fixture-entity", Username: "tester", SyncedAt: start,
		Projects: []*wandbtest.Project{{Name: "p", CreatedAt: start, Runs: []*wandbtest.Run{num, rich}}}}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return srv, num
}

func tailRow(i int) map[string]any {
	row := map[string]any{"_step": float64(i), "_timestamp": float64(1_700_000_000 + i), "a": float64(i) / 7}
	if i%2 == 0 {
		row["b"] = float64(i)
	}
	return row
}

// listed opens the source on project p and lists its runs (the tail
// needs the listing).
func listed(t *testing.T, srv *wandbtest.Server) *wandbcloud.Source {
	t.Helper()
	src := open(t, srv.URL, "p").(*wandbcloud.Source)
	t.Cleanup(func() { src.Close() })
	for _, err := range src.Runs(context.Background(), schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p"}) {
		if err != nil {
			t.Fatal(err)
		}
	}
	return src
}

func collect(t *testing.T, seq func(func([]schema.Metric, error) bool)) ([]schema.Metric, error) {
	t.Helper()
	var out []schema.Metric
	for page, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, page...)
	}
	return out, nil
}

// TestMetricsTail: the tail of a grown run, read with one history
// request from the last step held, holds every point a whole read has
// after the held ones, and the held last points again; a run with a rich
// value has no tail; a history that lost the held steps, or whose held
// row gained a key, is ErrTailChanged.
func TestMetricsTail(t *testing.T) {
	ctx := context.Background()
	srv, num := tailServer(t)
	ref := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p/num"}
	whole, err := collect(t, listed(t, srv).Metrics(ctx, ref))
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]sources.HeldKey{}
	for _, m := range whole {
		held[m.Key] = sources.HeldKey{LastStep: m.Step, LastTime: m.Time}
	}
	if held["a"].LastStep != 49 || held["b"].LastStep != 48 || held["system/cpu"].LastStep != 2 {
		t.Fatalf("held %v", held)
	}
	if _, ok := listed(t, srv).MetricsTail(ctx, schema.Ref{System: wandbcloud.System, ID: "fixture-entity/p/rich"}, nil); ok {
		t.Error("a run with an image among its history values has a tail")
	}

	var rows []map[string]any
	for i := 50; i < 60; i++ {
		rows = append(rows, tailRow(i))
	}
	if err := srv.Grow("p", "num", rows, time.Now()); err != nil {
		t.Fatal(err)
	}
	num.Events = append(num.Events, map[string]any{"system.cpu": 9.0, "_timestamp": 1.8e9})
	grown, err := collect(t, listed(t, srv).Metrics(ctx, ref))
	if err != nil {
		t.Fatal(err)
	}
	reads := srv.HistoryReads.Load()
	seq, ok := listed(t, srv).MetricsTail(ctx, ref, held)
	if !ok {
		t.Fatal("no tail for a numeric run")
	}
	tail, err := collect(t, seq)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.HistoryReads.Load() - reads; n != 1 {
		t.Errorf("the tail took %d history requests, want 1", n)
	}
	var want []schema.Metric
	for _, m := range grown {
		if h := held[m.Key]; m.Step > h.LastStep || (m.Step == h.LastStep && (m.Key == "a" || m.Key == "system/cpu")) {
			want = append(want, m)
		}
	}
	if got, w := sortedPoints(tail), sortedPoints(want); len(got) != len(w) || len(got) != 10+5+1+2 {
		t.Fatalf("tail of %d points, want %d (18):\n%v\n%v", len(got), len(w), got, w)
	} else {
		for i := range got {
			if got[i] != w[i] {
				t.Fatalf("tail point %d: %+v, want %+v", i, got[i], w[i])
			}
		}
	}

	// The held row gained a key: the history changed before the tail.
	num.History[49]["c"] = 1.0
	seq, _ = listed(t, srv).MetricsTail(ctx, ref, held)
	if _, err := collect(t, seq); !errors.Is(err, sources.ErrTailChanged) {
		t.Errorf("held row with a new key: %v, want ErrTailChanged", err)
	}
	delete(num.History[49], "c")
	// Shortened (a rewind): the held steps are gone.
	num.History = num.History[:30]
	seq, _ = listed(t, srv).MetricsTail(ctx, ref, held)
	if _, err := collect(t, seq); !errors.Is(err, sources.ErrTailChanged) {
		t.Errorf("shortened history: %v, want ErrTailChanged", err)
	}
}
