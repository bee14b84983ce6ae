package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestMLflowLsAndPlanAreLight: `ls` of an MLflow server, and the plan of a
// sync in which nothing changed, read no metric history (issue 12: "ls of
// an MLflow server with 87 runs took over 3 minutes"). Every request goes
// through a proxy that counts them by path: ls sends only experiment and
// run searches; the no-change sync adds one artifact listing per run (its
// fingerprint; through the artifact proxy, or artifacts/list for a run
// whose artifacts are not proxied), and copies nothing.
func TestMLflowLsAndPlanAreLight(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	prefix := uniquePrefix(t)
	expID, err := api.CreateExperiment(ctx, prefix+"exp", nil)
	if err != nil {
		t.Fatal(err)
	}
	const runs = 3
	for i := range runs {
		r, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: fmt.Sprintf("run%d", i), StartTime: 1_700_000_000_000})
		if err != nil {
			t.Fatal(err)
		}
		var ms []mlflowapi.Metric
		for s := range 50 {
			ms = append(ms, mlflowapi.Metric{Key: "loss", Value: 1, Step: int64(s), Timestamp: 1_700_000_000_000 + int64(s)})
		}
		if err := api.LogBatch(ctx, mlflowapi.LogBatch{RunID: r.Info.RunID, Metrics: ms}); err != nil {
			t.Fatal(err)
		}
		end := int64(1_700_000_100_000)
		if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: r.Info.RunID, Status: "FINISHED", EndTime: &end}); err != nil {
			t.Fatal(err)
		}
	}
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[strings.TrimPrefix(r.URL.Path, "/api/2.0/mlflow/")]++
		mu.Unlock()
		r.Host = target.Host // MLflow refuses a Host it does not serve
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	requests := func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		got := seen
		seen = map[string]int{}
		return got
	}
	src := "mlflow+" + proxy.URL + "?experiment-prefix=" + prefix

	code, out, errOut := runCLI(t, "ls", src)
	if code != 0 || !strings.Contains(out, "run0") || !strings.Contains(out, "run2") {
		t.Fatalf("ls: exit %d\n%s%s", code, out, errOut)
	}
	for path := range requests() {
		if !strings.HasSuffix(path, "/search") {
			t.Errorf("ls sent %s; want only experiment and run searches", path)
		}
	}

	state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
	dst := "parquet:" + filepath.Join(t.TempDir(), "archive")
	wantCounts(t, "first sync", syncReport(t, 0, "sync", src, dst, state), runs, 0)
	requests()
	wantCounts(t, "sync without change", syncReport(t, 0, "sync", src, dst, state), 0, runs)
	got := requests()
	for path, n := range got {
		switch {
		case strings.HasSuffix(path, "/search"):
		case path == "artifacts/list" || path == "/api/2.0/mlflow-artifacts/artifacts":
			// Listed through the artifact proxy for proxied runs
			// (mlflowapi.Client.ListArtifactDir), else artifacts/list.
			if n != runs {
				t.Errorf("the no-change plan listed artifacts (%s) %d times, want %d (one a run without subfolders)", path, n, runs)
			}
		default:
			t.Errorf("the no-change sync sent %s (%d times); want only searches and artifact listings", path, n)
		}
	}
	t.Logf("no-change sync requests: %v", got)
}
