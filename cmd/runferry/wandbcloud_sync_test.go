package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// cloudReads counts the requests that read a run's data from the W&B test
// server: history (paged or sampled), parquet exports asked for and
// downloaded, system metrics, console-line pages and run files.
func cloudReads(srv *wandbtest.Server) map[string]int64 {
	return map[string]int64{"history": srv.HistoryReads.Load(), "parquetHistory": srv.ParquetQueries.Load(),
		"export downloads": srv.ExportDownloads.Load(), "events": srv.EventsReads.Load(),
		"logLines": srv.LogLinePages.Load(), "files": srv.FileDownloads.Load()}
}

// readsSince is what cloudReads counts now beyond before, the counters
// that did not move left out.
func readsSince(srv *wandbtest.Server, before map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range cloudReads(srv) {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// cloudSync runs sync with args and returns its report; the exit code
// must be 0.
func cloudSync(t *testing.T, args ...string) transfer.Report {
	t.Helper()
	rep := filepath.Join(t.TempDir(), "report.json")
	code, out, errOut := runCLI(t, append(append([]string{"sync", "--accept-gaps"}, args...), "--report", rep)...)
	if code != 0 {
		t.Fatalf("sync %v: exit %d\n%s%s", args, code, out, errOut)
	}
	return readReport(t, rep)
}

// outcomes lists the report's runs by outcome, each by its name.
func outcomes(r transfer.Report) map[string][]string {
	out := map[string][]string{}
	for _, run := range r.Runs {
		out[string(run.Outcome)] = append(out[string(run.Outcome)], run.Name)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// TestWandbCloudSyncNoChange: a sync from the W&B cloud in which nothing
// changed calls every run unchanged from the listing alone: no history,
// export, system-metrics, console or file request reaches the server.
// A running run whose listing stands still is unchanged too. A finished
// run that gained a console line (only its logLineCount moved), then the
// running run, whose heartbeat moved and that logged two more steps, are
// each seen as changed, the others stay unchanged without a read of
// theirs; the grown run gets only its two new points. With
// --lookback, the runs whose heartbeat is within the window of the
// previous sync's start are compared with the destination in full
// (verified) and the older ones are not read.
func TestWandbCloudSyncNoChange(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, loc := fixtureServer(t, key)
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	var grown, logged *wandbtest.Run
	for _, r := range srv.Data().Projects[0].Runs {
		r.HeartbeatAt = old
		switch r.ID {
		case "fxb00002":
			grown = r
			r.State = "running" // still logging: it grows below
		case "fxa00001":
			logged = r
		}
	}
	if grown == nil || len(grown.History) == 0 || logged == nil {
		t.Fatal("fixture runs fxb00002 (with history) and fxa00001 missing")
	}
	dir := t.TempDir()
	arch, ledger := "parquet:"+filepath.Join(dir, "archive"), filepath.Join(dir, "ledger.db")
	first := cloudSync(t, loc, arch, "--state", ledger)
	n := len(outcomes(first)["committed"])
	if n != 6 || len(outcomes(first)) != 1 {
		t.Fatalf("first sync: %v", outcomes(first))
	}
	for range 2 {
		before := cloudReads(srv)
		r := cloudSync(t, loc, arch, "--state", ledger)
		if got := outcomes(r); len(got["unchanged"]) != n || len(got) != 1 || r.Totals.Points != 0 {
			t.Fatalf("sync without a change: %v, %d points", got, r.Totals.Points)
		}
		if got := readsSince(srv, before); len(got) != 0 {
			t.Fatalf("sync without a change read run data: %v", got)
		}
	}

	// A finished run gains a console line (nothing else in its listing
	// moves but logLineCount): it alone is transferred.
	logged.LogLines = append(logged.LogLines, wandbtest.LogLine{Time: time.Now().UTC(), Line: "one more line"})
	r := cloudSync(t, loc, arch, "--state", ledger)
	if got := outcomes(r); !slices.Equal(got["committed"], []string{logged.DisplayName}) || len(got["unchanged"]) != n-1 {
		t.Fatalf("sync after a console line was added to %s: %v", logged.DisplayName, got)
	}

	// The running run logs two more steps: it alone is transferred.
	last := grown.History[len(grown.History)-1]
	step, ts := last["_step"].(float64), last["_timestamp"].(float64)
	rows := []map[string]any{{"_step": step + 1, "_timestamp": ts + 1, "late": 1.5}, {"_step": step + 2, "_timestamp": ts + 2, "late": 2.5}}
	if err := srv.Grow("runferry-fixtures", "fxb00002", rows, time.Now().UTC().Truncate(time.Second)); err != nil {
		t.Fatal(err)
	}
	before := cloudReads(srv)
	r = cloudSync(t, loc, arch, "--state", ledger)
	if got := outcomes(r); !slices.Equal(got["committed"], []string{grown.DisplayName}) || len(got["unchanged"]) != n-1 || r.Totals.Points != 2 {
		t.Fatalf("sync after one run grew: %v, %d points (want the 2 new ones)", got, r.Totals.Points)
	}
	if got := readsSince(srv, before); got["events"] > 1 || got["parquetHistory"] > 1 {
		t.Fatalf("sync after one run grew read more than that run: %v", got)
	}
	if code, out, errOut := runCLI(t, "check", loc, arch); code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}

	// --lookback: the grown run's heartbeat is recent, the others' two
	// days old.
	before = cloudReads(srv)
	r = cloudSync(t, loc, arch, "--state", ledger, "--lookback", "1h")
	got := outcomes(r)
	if !slices.Equal(got["verified"], []string{grown.DisplayName}) || len(got["unchanged"]) != n-1 || len(got) != 2 || r.Totals.Points != 0 {
		t.Fatalf("sync --lookback 1h: %v, %d points; want %s verified, %d unchanged", got, r.Totals.Points, grown.DisplayName, n-1)
	}
	// Reading the recent run whole asks for its listing page again in
	// export form, which answers parquetHistory for the page's n runs;
	// only the recent run's exports are downloaded.
	if got := readsSince(srv, before); got["events"] > 1 || got["export downloads"] > 1 || got["parquetHistory"] > int64(n) {
		t.Fatalf("sync --lookback read more than the recent run: %v", got)
	}
	for _, run := range r.Runs {
		if run.Outcome == transfer.Verified && !strings.Contains(run.Reason, "--lookback") {
			t.Errorf("verified run's reason %q does not name --lookback", run.Reason)
		}
	}
}

// growingCloudRun is a W&B server holding one running run of 1,500 steps
// (loss and acc at every step, a sparse eval key every 100 steps), three
// system-metrics rows and two console lines, its history exported in one
// parquet file.
func growingCloudRun(t *testing.T, key string) (*wandbtest.Server, *wandbtest.Run, string) {
	t.Helper()
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	r := &wandbtest.Run{ID: "grow0001", DisplayName: "growing", State: "running", User: "tester",
		Config: map[string]any{"lr": 0.01}, CreatedAt: start, HeartbeatAt: start.Add(time.Hour),
		Export: &wandbtest.Export{Files: 1}, Summary: map[string]any{}}
	for i := range 1500 {
		r.History = append(r.History, growRow(start, i))
	}
	for i := range 3 {
		r.Events = append(r.Events, map[string]any{"system.cpu": float64(10 + i), "_timestamp": float64(start.Unix() + int64(30*i)), "_runtime": float64(30 * i)})
	}
	r.LogLines = []wandbtest.LogLine{{Time: start, Line: "starting"}, {Time: start.Add(time.Second), Line: "epoch 1"}}
	d := &wandbtest.Data{Entity: "grow-entity", Username: "tester", SyncedAt: start,
		Projects: []*wandbtest.Project{{Name: "grow-project", CreatedAt: start, Runs: []*wandbtest.Run{r}}}}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return srv, r, "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/grow-entity/grow-project"
}

// growRow is row i of growingCloudRun's history.
func growRow(start time.Time, i int) map[string]any {
	row := map[string]any{"_step": float64(i), "_timestamp": float64(start.Unix() + int64(i)),
		"loss": 1 / float64(i+1), "acc": float64(i%97) / 97}
	if i%100 == 0 {
		row["eval"] = float64(i) / 1000
	}
	return row
}

// TestWandbCloudSyncAppendsTail: a running W&B cloud run synced into
// Parquet and into MLflow, then grown on the server by 25 steps (one with
// the sparse eval key) and a system-metrics row: the second sync appends
// only the new points (the report's points count them, kept_points the
// points held), asks the server for only the history from the last step
// held (one paged history request, no parquet export read), and keeps
// the MLflow run id; check then passes, and a sync after it moves nothing
// and reads no history. Rewound on the server, the run is written whole
// and the report says why.
func TestWandbCloudSyncAppendsTail(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	mlf := testenv.SharedMLflow(t)
	start := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	for _, dst := range []string{"parquet", "mlflow"} {
		t.Run(dst, func(t *testing.T) {
			srv, run, loc := growingCloudRun(t, key)
			dir := t.TempDir()
			arch := "parquet:" + filepath.Join(dir, "archive")
			if dst == "mlflow" {
				arch = "mlflow+" + mlf.URL + "?experiment-prefix=" + uniquePrefix(t)
			}
			ledger := filepath.Join(dir, "ledger.db")
			first := cloudSync(t, loc, arch, "--state", ledger)
			if len(first.Runs) != 1 || first.Runs[0].Outcome != transfer.Committed {
				t.Fatalf("first sync: %+v", first.Runs)
			}
			held := first.Runs[0].Points
			if want := int64(1500*2 + 15 + 3); held != want {
				t.Fatalf("first sync copied %d points, want %d", held, want)
			}

			var rows []map[string]any
			for i := 1500; i < 1525; i++ {
				rows = append(rows, growRow(start, i))
			}
			if err := srv.Grow("grow-project", run.ID, rows, start.Add(2*time.Hour)); err != nil {
				t.Fatal(err)
			}
			run.Events = append(run.Events, map[string]any{"system.cpu": 13.0, "_timestamp": float64(start.Unix() + 90), "_runtime": 90.0})
			before := cloudReads(srv)
			r := cloudSync(t, loc, arch, "--state", ledger)
			got := r.Runs[0]
			if want := int64(25*2 + 1 + 1); got.Outcome != transfer.Committed || !got.Appended || got.Points != want || got.KeptPoints != held {
				t.Fatalf("sync after the run grew: %s appended=%v points=%d kept=%d (%s); want %d new, %d kept",
					got.Outcome, got.Appended, got.Points, got.KeptPoints, got.Reason, want, held)
			}
			if got.DestID != first.Runs[0].DestID {
				t.Errorf("destination id %q, was %q", got.DestID, first.Runs[0].DestID)
			}
			reads := readsSince(srv, before)
			if reads["history"] != 1 || reads["parquetHistory"] != 0 || reads["export downloads"] != 0 || reads["events"] != 1 {
				t.Errorf("the append read %v; want one history request (the tail), one events request, no export", reads)
			}
			if code, out, errOut := runCLI(t, "check", loc, arch); code != 0 {
				t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
			}
			before = cloudReads(srv)
			r = cloudSync(t, loc, arch, "--state", ledger)
			if r.Runs[0].Outcome != transfer.Unchanged {
				t.Fatalf("sync without a change: %+v", r.Runs[0])
			}
			if reads := readsSince(srv, before); len(reads) != 0 {
				t.Errorf("sync without a change read %v", reads)
			}

			// Rewound (W&B's resume_from): the history from step 1000 on
			// is logged again with other values. The tail no longer
			// continues what was copied: the run is written whole, the
			// report says why, and check passes.
			run.History = run.History[:1000]
			run.Export = &wandbtest.Export{Files: 1}
			rows = nil
			for i := 1000; i < 1010; i++ {
				row := growRow(start, i)
				row["loss"], row["_timestamp"] = 5.0, row["_timestamp"].(float64)+3600
				rows = append(rows, row)
			}
			if err := srv.Grow("grow-project", run.ID, rows, start.Add(3*time.Hour)); err != nil {
				t.Fatal(err)
			}
			r = cloudSync(t, loc, arch, "--state", ledger)
			got = r.Runs[0]
			if got.Outcome != transfer.Committed || got.Appended || !strings.Contains(got.Reason, "written whole") || !strings.Contains(got.Reason, "history changed") {
				t.Fatalf("sync after a rewind: %s appended=%v (%s); want written whole, saying the history changed", got.Outcome, got.Appended, got.Reason)
			}
			if code, out, errOut := runCLI(t, "check", loc, arch); code != 0 {
				t.Fatalf("check after the rewind: exit %d\n%s%s", code, out, errOut)
			}
		})
	}
}
