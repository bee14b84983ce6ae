package mlflow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sources/dataset"
)

// TestChildDeletedWhileParentLinks: a child run deleted in the source is
// deleted by its own commit, as the last step, and its parent, committing
// at the same time, lists its children first and links them second. A
// proxy in front of a real server holds the parent's set-tag of
// mlflow.parentRunId on the child until the child's own commit has
// deleted the child: the order in which TestFileStoreSamples (sources/mlflow)
// once failed under load with "must be in the 'active' state". The parent
// commits, the child is linked to it and stays deleted, and the server
// holds exactly the two runs.
func TestChildDeletedWhileParentLinks(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var (
		childCommit func() error
		held        atomic.Bool
		heldErr     error
		heldRun     string
	)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/runs/set-tag") {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
			var req struct {
				RunID string `json:"run_id"`
				Key   string `json:"key"`
			}
			if json.Unmarshal(body, &req) == nil && req.Key == mlflowapi.TagParentRunID && held.CompareAndSwap(false, true) {
				heldRun = req.RunID
				heldErr = childCommit() // the child's commit overtakes the parent's link
			}
		}
		rp.ServeHTTP(w, r)
	}))
	defer ps.Close()

	s, read, _ := pair(t, ps.URL)
	exp := schema.Experiment{Origin: schema.Ref{System: "memory", ID: "e"}, Name: "race"}
	start := time.Unix(1_700_000_000, 0).UTC()
	parent := schema.Run{Origin: schema.Ref{System: "memory", ID: "parent"}, Experiment: exp.Origin, Name: "parent",
		Status: schema.StatusFinished, Start: start, End: start.Add(time.Minute)}
	child := schema.Run{Origin: schema.Ref{System: "memory", ID: "child"}, Experiment: exp.Origin, Name: "child",
		Status: schema.StatusFinished, Start: start, End: start.Add(time.Minute), Parent: parent.Origin, Deleted: true}
	id, err := s.PutExperiment(ctx, exp)
	if err != nil {
		t.Fatal(err)
	}
	cw, err := s.OpenRun(ctx, id, child) // before the parent: it cannot link itself
	if err != nil {
		t.Fatal(err)
	}
	childCommit = func() error { return cw.Commit(ctx) }
	pw, err := s.OpenRun(ctx, id, parent)
	if err != nil {
		t.Fatal(err)
	}
	if err := pw.Commit(ctx); err != nil {
		t.Fatalf("the parent's commit, its child deleted meanwhile: %v", err)
	}
	if !held.Load() {
		t.Fatal("the parent never linked its child: the race was not staged")
	}
	if heldErr != nil {
		t.Fatalf("the child's commit: %v", heldErr)
	}

	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	c, err := api.GetRun(ctx, heldRun)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := c.Tag(mlflowapi.TagParentRunID)
	var parentID string
	for r, err := range api.SearchRuns(ctx, []string{id}, "attributes.run_name = 'parent'", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		parentID = r.Info.RunID
	}
	if c.Info.RunName != "child" || c.Info.LifecycleStage != mlflowapi.StageDeleted || parentID == "" || p != parentID {
		t.Fatalf("child run %s (%q): stage %q, parent run id %q; want deleted, linked to the parent %q",
			heldRun, c.Info.RunName, c.Info.LifecycleStage, p, parentID)
	}
	for _, r := range []schema.Run{parent, child} {
		if state, _, err := s.FindRun(ctx, r.Origin); err != nil || state != sinks.RunComplete {
			t.Fatalf("run %s: state %v, %v; want complete", r.Name, state, err)
		}
	}
	want := &dataset.Dataset{Experiments: []schema.Experiment{exp}, Runs: []*dataset.RunData{{Run: parent}, {Run: child}}}
	got, err := dataset.Read(ctx, read())
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(want, got, dataset.DiffOptions{}); diff != nil {
		t.Fatalf("the server differs:\n%s", strings.Join(diff, "\n"))
	}
}
