package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowtest"
)

// TestMovedFolderSyncRewritesNoMLflowRun: the W&B fixtures synced into a
// real MLflow server, then copied to another path (new modification
// times, so new fingerprints; the same origins) and synced from there
// with a new ledger, twice: every run is read again and appended to with
// nothing new, so no run is written anew: the server holds the same runs
// under the same MLflow run ids with the same metric histories, params
// and tags (runferry's fingerprint and appending tags aside), no point is
// sent, and `check` finds no difference. (Before
// f1: the second sync said "copied 6 runs (25 points, 1 file, 1.9 KiB; 5
// runs appended to: ...)": one run was written whole again, under a new
// run id.)
func TestMovedFolderSyncRewritesNoMLflowRun(t *testing.T) {
	m, move := mlflowMovableFixtures(t, "f1")
	held := f1Runs(t, m.URL, m.Prefix)
	if len(held) != 6 {
		t.Fatalf("after the first sync the server holds %d runs, want 6", len(held))
	}
	moved := move()
	src, dst, ledger2 := "wandb:"+moved+"?crashed-after=1ns", m.Dst, m.Ledger2
	for i := 1; i <= 2; i++ {
		code, out, errOut := runCLI(t, "sync", src, dst, "--state", ledger2, "--accept-gaps")
		t.Logf("sync %d:\n%s%s", i, out, errOut)
		// The first sync reads every run again (new fingerprints) and
		// finds each equal to its copy, writing nothing (f1b); the second
		// finds them in its ledger.
		want := "copied 0 runs (0 points, 0 files, 0 B); 6 unchanged"
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("sync %d from the moved folder with a new ledger: exit %d, want 0 and %q", i, code, want)
		}
		got := f1Runs(t, m.URL, m.Prefix)
		if !slices.Equal(got, held) {
			t.Errorf("after sync %d from the moved folder the server holds other runs:\n%s", i, f1Diff(held, got))
		}
	}
	if code, out, errOut := runCLI(t, "check", src, dst); code != 0 || !strings.Contains(out, " 0 differences") {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}
}

// f1Runs returns, one string per active run in the experiments named with
// prefix, sorted: its experiment, run id, name, status, times, params,
// tags (but runferry's fingerprint and appending tags) and every metric's whole history.
func f1Runs(t *testing.T, base, prefix string) []string {
	t.Helper()
	api := mlflowtest.Client(t, base)
	ctx := context.Background()
	var runs []string
	for e, r := range mlflowtest.Runs(t, api, prefix, mlflowapi.ViewAll) {
		var b strings.Builder
		end := int64(-1)
		if r.Info.EndTime != nil {
			end = *r.Info.EndTime
		}
		fmt.Fprintf(&b, "%s run %s %q %s %s start %d end %d\n", e.Name, r.Info.RunID, r.Info.RunName, r.Info.Status, r.Info.LifecycleStage, r.Info.StartTime, end)
		var lines []string
		for _, p := range r.Data.Params {
			lines = append(lines, fmt.Sprintf("  param %s=%q", p.Key, p.Value))
		}
		for _, tag := range r.Data.Tags {
			if tag.Key == "mlflow.runferry.fingerprint" || tag.Key == "mlflow.runferry.appending" {
				// An append records the source's new fingerprint,
				// and the mark it appended from.
				continue
			}
			lines = append(lines, fmt.Sprintf("  tag %s=%q", tag.Key, tag.Value))
		}
		for _, m := range r.Data.Metrics {
			for page, err := range api.MetricHistory(ctx, r.Info.RunID, m.Key) {
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range page {
					lines = append(lines, fmt.Sprintf("  metric %s step %d time %d value %v", p.Key, p.Step, p.Timestamp, p.Value))
				}
			}
		}
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n"))
		runs = append(runs, b.String())
	}
	slices.Sort(runs)
	return runs
}

// f1Diff names the lines of the runs in was or is but not both.
func f1Diff(was, is []string) string {
	count := func(runs []string) map[string]int {
		m := map[string]int{}
		for _, r := range runs {
			for l := range strings.SplitSeq(r, "\n") {
				m[l]++
			}
		}
		return m
	}
	w, i := count(was), count(is)
	var out []string
	for l, n := range w {
		if i[l] < n {
			out = append(out, "- "+l)
		}
	}
	for l, n := range i {
		if w[l] < n {
			out = append(out, "+ "+l)
		}
	}
	slices.Sort(out)
	if len(out) > 60 {
		out = append(out[:60], fmt.Sprintf("... %d more", len(out)-60))
	}
	return strings.Join(out, "\n")
}
