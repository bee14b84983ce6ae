package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
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
	code, out, errOut := runCLI(t, append(append([]string{"sync"}, args...), "--report", rep)...)
	if code != 0 {
		t.Fatalf("sync %v: exit %d\n%s%s", args, code, out, errOut)
	}
	b, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	var r transfer.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
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
	if got := readsSince(srv, before); got["events"] > 1 || got["parquetHistory"] > 1 {
		t.Fatalf("sync --lookback read more than the recent run: %v", got)
	}
	for _, run := range r.Runs {
		if run.Outcome == transfer.Verified && !strings.Contains(run.Reason, "--lookback") {
			t.Errorf("verified run's reason %q does not name --lookback", run.Reason)
		}
	}
}
