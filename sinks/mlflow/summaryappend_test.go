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

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks/sinktest"
	"github.com/runferry/runferry/sources/dataset"
	memsrc "github.com/runferry/runferry/sources/memory"
)

// summaryAhead returns a W&B-like run copied while it was writing (early)
// and as it finished (grown): W&B logs a step's summary before its history
// row, so a log cut between the two holds the summary of step 5 and the
// history up to step 4. Steps 4 and 5 were logged within the same
// millisecond, and the early run's end is its last activity (step 4): the
// summary point the sink writes for the early run (step 5, the summary's
// value, the run's last time) is, in MLflow's primary key, the history
// point of step 5 appended later.
func summaryAhead() (early, grown *dataset.Dataset) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	ms := func(step int64) int64 {
		if step >= 5 {
			step-- // step 5 in step 4's millisecond
		}
		return t0.UnixMilli() + 1000 + step
	}
	loss := func(step int64) float64 { return 1 / float64(step+1) }
	acc := func(step int64) float64 { return float64(step) / 10 }
	summary := func(step int64) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"loss": loss(step), "acc": acc(step), "_step": step})
		return b
	}
	build := func(upTo int64, status schema.RunStatus, end time.Time, summaryStep int64) *dataset.Dataset {
		exp := schema.Ref{System: "memory", ID: "exp-summary-ahead"}
		rd := &dataset.RunData{Run: schema.Run{Origin: schema.Ref{System: "memory", ID: "run-summary-ahead"}, Experiment: exp,
			Name: "summary-ahead", Status: status, Start: t0, End: end, Summary: summary(summaryStep)}}
		for step := range upTo + 1 {
			rd.Metrics = append(rd.Metrics,
				schema.Metric{Key: "acc", Value: acc(step), Step: step, Time: ms(step)},
				schema.Metric{Key: "loss", Value: loss(step), Step: step, Time: ms(step)})
		}
		schema.SortMetrics(rd.Metrics)
		return &dataset.Dataset{Experiments: []schema.Experiment{{Origin: exp, Name: "summary-ahead", CreatedAt: t0}}, Runs: []*dataset.RunData{rd}}
	}
	early = build(4, schema.StatusFailed, time.UnixMilli(ms(4)).UTC(), 5)
	grown = build(9, schema.StatusFinished, time.UnixMilli(ms(9)+500).UTC(), 9)
	return early, grown
}

// TestAppendOntoSummaryPoint: a run copied with a summary value ahead of
// its history (summaryAhead), then appended to once it finished, reads
// back from MLflow as a fresh copy, every point once: the history point of
// step 5, stored by MLflow as the same row as the summary point held
// (exact duplicates collapse), was left out by the source as a summary
// point (799 of 800 points in TestSyncTruncatedFolderThenFinished, when a
// W&B log was cut inside a history row logged in the same millisecond as
// the one before). Also when the append's first batch of points is
// answered 500 after the server applied it: the append is continued in
// place (no run written whole), the summary point not taken for a point
// the cut-short append wrote.
func TestAppendOntoSummaryPoint(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	for _, fail := range []bool{false, true} {
		early, grown := summaryAhead()
		target, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// failNext answers the next log-batch with metrics 500 after
		// forwarding it.
		var failNext, failed atomic.Bool
		rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) }}
		proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/runs/log-batch") && failNext.Load() {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				if bytes.Contains(body, []byte(`"metrics"`)) && failNext.CompareAndSwap(true, false) {
					rec := httptest.NewRecorder()
					rp.ServeHTTP(rec, r)
					if rec.Code != http.StatusOK {
						t.Errorf("log-batch failed at the server: %d %s", rec.Code, rec.Body)
					}
					failed.Store(true)
					http.Error(w, `{"error_code":"INTERNAL_ERROR","message":"injected after the server applied the batch"}`, http.StatusInternalServerError)
					return
				}
			}
			rp.ServeHTTP(w, r)
		}))
		dst, read, _ := pair(t, proxy.URL)
		opt := transfer.Options{Ledger: &sinktest.MemLedger{}, Attempts: 3, Backoff: func(int) time.Duration { return time.Millisecond }}
		first, err := transfer.Copy(ctx, memsrc.New(early), dst, opt)
		if err != nil || first.Totals.Committed != 1 {
			t.Fatalf("first copy: %v %+v", err, first.Runs)
		}
		failNext.Store(fail)
		rep, err := transfer.Copy(ctx, memsrc.New(grown), dst, opt)
		if err != nil || len(rep.Runs) != 1 || rep.Totals.Committed != 1 {
			t.Fatalf("second copy (fault %v): %v %+v", fail, err, rep.Runs)
		}
		r := rep.Runs[0]
		if !r.Appended || r.KeptPoints != 10 || r.DestID != first.Runs[0].DestID || failed.Load() != fail || fail != (r.Attempts == 2) {
			t.Errorf("fault %v: second copy: appended %v, %d points kept, run %s (first %s), %d attempts, fault injected %v (%s); want appended to the same run, 10 points kept",
				fail, r.Appended, r.KeptPoints, r.DestID, first.Runs[0].DestID, r.Attempts, failed.Load(), r.Reason)
		}
		got, err := dataset.Read(ctx, read())
		if err != nil {
			t.Fatal(err)
		}
		if diff := dataset.Diff(grown, got, dataset.DiffOptions{}); diff != nil {
			t.Errorf("fault %v: read back differs from a fresh copy:\n%s", fail, strings.Join(diff, "\n"))
		}
		proxy.Close()
	}
}
