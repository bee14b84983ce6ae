package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/sources/wandbdir"
)

// wandbServer serves the W&B fixtures through the W&B API test server.
func wandbServer(t *testing.T, key string) string {
	t.Helper()
	d := fixtureData(t)
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
}

// TestCopyWandbCloudToParquet: a W&B project read through the API is
// copied into an archive, check then passes, a second copy writes nothing
// twice, and the key is never printed nor stored.
func TestCopyWandbCloudToParquet(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef0123k3y9"
	t.Setenv("WANDB_API_KEY", key)
	loc := wandbServer(t, key)
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	report := filepath.Join(dir, "report.json")

	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, "parquet:"+archive, "--state", ledger, "--report", report)
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	all := out + errOut
	code, out, errOut = runCLI(t, "check", loc, "parquet:"+archive)
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	all += out + errOut
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", loc, "parquet:"+archive, "--state", ledger)
	if code != 0 || !strings.Contains(out, "copied 0 runs") {
		t.Fatalf("second copy: exit %d\n%s\n%s", code, out, errOut)
	}
	all += out + errOut
	for _, f := range []string{report, ledger} {
		b, _ := os.ReadFile(f)
		all += string(b)
	}
	if strings.Contains(all, key) {
		t.Fatal("the API key was printed or stored")
	}
}

// TestWandbCloudWrongKey: a refused key ends the job before any transfer,
// exit 1, with one line that does not show the key.
func TestWandbCloudWrongKey(t *testing.T) {
	loc := wandbServer(t, "0123456789abcdef0123456789abcdef01234567")
	const bad = "ffffffffffffffffffffffffffffffffffffbad1"
	t.Setenv("WANDB_API_KEY", bad)
	archive := filepath.Join(t.TempDir(), "archive")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, "parquet:"+archive, "--state", filepath.Join(t.TempDir(), "l.db"))
	if code != 1 || !strings.Contains(errOut, "refused the API key") || strings.Contains(out+errOut, bad) {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if n := strings.Count(strings.TrimSpace(errOut), "\n"); n > 0 {
		t.Errorf("error is %d lines: %q", n+1, errOut)
	}
	if _, err := os.Stat(archive); !os.IsNotExist(err) {
		t.Errorf("the archive was created (%v)", err)
	}
}

// TestCheckFolderAgainstCloud: check compares the fixtures' run folders
// with the same runs read through the API, both ways round. Names, config,
// summary, labels, notes, group, job type, status, the environment tags,
// program and exit code, every history point, system metric and rich value, the run
// files and the W&B Artifacts agree; what differs is only what W&B's API
// cannot give (wandbcloud.KnownGaps): sub-second times, the segments of a
// resumed run, the console lines' times (their text, streams and order
// agree), and on the
// folder's side the version number of an artifact logged offline. Check
// prints those as known differences, counts them, and exits 0; the same
// whether the cloud's history comes from the paged scan or from the
// parquet exports.
func TestCheckFolderAgainstCloud(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, exported := fixtureServer(t, key)
	for _, loc := range []string{wandbServer(t, key), exported} { // the paged scan, the parquet exports
		checkFolderAgainstCloud(t, fixtures, loc)
	}
	checkFolderAgainstCloud(t, exported, fixtures) // the cloud as the source

	// The lines' text is compared: one line changed on the server is a
	// difference, not a known one.
	var changed *wandbtest.Run
	for _, r := range srv.Data().Projects[0].Runs {
		if len(r.LogLines) > 1 && changed == nil {
			changed = r
			r.LogLines[1].Line += " (changed)"
		}
	}
	if changed == nil {
		t.Fatal("no fixture run has console lines")
	}
	for _, pair := range [][2]string{{fixtures, exported}, {exported, fixtures}} {
		code, out, errOut := runCLI(t, "check", pair[0], pair[1])
		if code == 0 || !strings.Contains(out, changed.ID+": console output: ") || !strings.Contains(out, `, line 2: std`) || !strings.Contains(out, ": 5 match, 1 difference") {
			t.Fatalf("check %s %s with a console line changed on the server: exit %d\n%s\n%s", pair[0], pair[1], code, out, errOut)
		}
	}
	// Times are compared line by line: a line the server holds as
	// received before the folder's run wrote it is no known gap, both
	// ways round; the other lines still are.
	changed.LogLines[1].Line = strings.TrimSuffix(changed.LogLines[1].Line, " (changed)")
	changed.LogLines[1].Time = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, pair := range [][2]string{{fixtures, exported}, {exported, fixtures}} {
		code, out, errOut := runCLI(t, "check", pair[0], pair[1])
		if code == 0 || !strings.Contains(out, changed.ID+": console output times: ") || !strings.Contains(out, "first line 2 at ") ||
			!strings.Contains(out, ": 5 match, 1 difference") || !strings.Contains(out, "known (the W&B server stamps console lines when it receives them)") {
			t.Fatalf("check %s %s with a console line received before it was written: exit %d\n%s\n%s", pair[0], pair[1], code, out, errOut)
		}
	}
}

func checkFolderAgainstCloud(t *testing.T, src, dst string) {
	t.Helper()
	report := filepath.Join(t.TempDir(), "check.json")
	code, out, errOut := runCLI(t, "check", src, dst, "--report", report)
	if code != 0 || !strings.Contains(out, "checked 1 experiment, 6 runs, ") || !strings.Contains(out, ": 6 match, 0 differences, ") {
		t.Fatalf("check %s %s: exit %d\n%s\n%s", src, dst, code, out, errOut)
	}
	gaps := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if gap, ok := strings.CutPrefix(line, "known ("); ok {
			gaps[gap[:strings.Index(gap, ")")]]++
		}
	}
	for _, g := range []string{"the W&B API gives times to the second", "the W&B server merges a resumed run's segments",
		"a run folder has no version number for an artifact logged offline", "the W&B server stamps console lines when it receives them"} {
		if gaps[g] == 0 {
			t.Errorf("check %s %s: no known difference %q:\n%s", src, dst, g, out)
		}
	}
	n := 0
	for _, c := range gaps {
		n += c
	}
	if !strings.Contains(out, fmt.Sprintf(", %d known differences (", n)) {
		t.Errorf("the summary does not count the %d known differences:\n%s", n, out)
	}
	var rep struct {
		Differences []any `json:"differences"`
		Known       []struct {
			What string `json:"what"`
			Gap  string `json:"gap"`
		} `json:"known"`
	}
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rep); err != nil || len(rep.Differences) != 0 || len(rep.Known) != n || rep.Known[0].Gap == "" {
		t.Errorf("report: %v %d differences, %d known\n%s", err, len(rep.Differences), len(rep.Known), b)
	}
}

// TestLsWandbEntity: `ls` of a W&B entity lists its projects with their
// run counts (the server's runCount, one request per project, no run
// listed), narrowed by --include and --run; --runs lists the runs; a
// location naming one project lists its runs.
func TestLsWandbEntity(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	d := fixtureData(t)
	// A second project holding two of the runs, created a day later.
	p := d.Projects[0]
	d.Projects = append(d.Projects, &wandbtest.Project{Name: "b-small", CreatedAt: p.CreatedAt.Add(24 * time.Hour), Runs: p.Runs[:2]})
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

	code, out, errOut := runCLI(t, "ls", loc)
	want := fmt.Sprintf(`EXPERIMENT                        ORIGIN                                  CREATED           RUNS
fixture-entity/b-small            wandb:fixture-entity/b-small            %s  2
fixture-entity/runferry-fixtures  wandb:fixture-entity/runferry-fixtures  %s  6
2 experiments, 8 runs
`, day(p.CreatedAt.Add(24*time.Hour)), day(p.CreatedAt))
	if code != 0 || out != want || srv.RunsListed.Load() != 0 {
		t.Fatalf("ls: exit %d, %d runs listed\n%s\nwant\n%s\n%s", code, srv.RunsListed.Load(), out, want, errOut)
	}

	first := p.Runs[0].ID
	code, out, errOut = runCLI(t, "ls", loc, "--json", "--include", "runferry-*", "--run", first)
	want = fmt.Sprintf(`[
  {
    "experiment": "fixture-entity/runferry-fixtures",
    "origin": "wandb:fixture-entity/runferry-fixtures",
    "created": %q,
    "runs": 1
  }
]
`, day(p.CreatedAt))
	if code != 0 || out != want || srv.RunsListed.Load() != 0 {
		t.Fatalf("ls --json --include --run: exit %d, %d runs listed\n%s\nwant\n%s\n%s", code, srv.RunsListed.Load(), out, want, errOut)
	}

	for _, args := range [][]string{{"ls", loc, "--runs", "--no-count"}, {"ls", loc + "/b-small", "--no-count"}} {
		code, out, errOut = runCLI(t, args...)
		if code != 0 || !strings.Contains(out, "wandb:fixture-entity/b-small/"+first) || !strings.HasSuffix(out, "runs (points not counted: --count counts them)\n") {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	if code, _, errOut = runCLI(t, "ls", loc, "--runs", "--experiments"); code != 2 {
		t.Fatalf("--runs --experiments: exit %d\n%s", code, errOut)
	}
}

// TestDryRunWandbCloudEstimates: a dry run from the W&B cloud plans every
// run from the listing alone (no history read, no export downloaded), each
// run's points the source's estimate, marked so, never below what the
// copy then writes; its bytes those of its files and logged artifact
// versions as its listing page in export form tells them: a run that
// writes bytes is estimated to, and the estimate is within 10% of what
// the copy writes in all.
func TestDryRunWandbCloudEstimates(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	d := fixtureData(t)
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "archive")
	readReport := func(path string) map[string]transfer.RunResult {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rep transfer.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		out := map[string]transfer.RunResult{}
		for _, r := range rep.Runs {
			out[r.Origin] = r
		}
		return out
	}

	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--dry-run", "--report", filepath.Join(dir, "plan.json"), "--state", filepath.Join(dir, "l.db"))
	if code != 0 || !strings.Contains(out, "would copy 6 runs (about ") || strings.Count(out, ", estimated)") != 6 || srv.HistoryReads.Load() != 0 || srv.ExportDownloads.Load() != 0 {
		t.Fatalf("dry run: exit %d, %d history reads, %d export downloads\n%s\n%s", code, srv.HistoryReads.Load(), srv.ExportDownloads.Load(), out, errOut)
	}
	plan := readReport(filepath.Join(dir, "plan.json"))
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", loc, archive, "--report", filepath.Join(dir, "copy.json"), "--state", filepath.Join(dir, "l.db"))
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	copied := readReport(filepath.Join(dir, "copy.json"))
	var exact, exactBytes int
	var planned, written int64
	for origin, c := range copied {
		p, ok := plan[origin]
		if !ok || !p.Estimated || p.Outcome != transfer.Planned || p.Points < c.Points || c.Estimated {
			t.Errorf("%s: planned %+v, copied %+v", origin, p, c)
		}
		if p.Points == c.Points {
			exact++
		}
		// Bytes: the run's files and logged artifact versions as the
		// listing page in export form tells them; a run that writes
		// bytes is estimated to.
		if (p.Bytes > 0) != (c.Bytes > 0) {
			t.Errorf("%s: estimated %d bytes, copied %d", origin, p.Bytes, c.Bytes)
		}
		if p.Bytes == c.Bytes {
			exactBytes++
		}
		planned += p.Bytes
		written += c.Bytes
		t.Logf("%s: estimated %d points, %d bytes; copied %d points, %d bytes", origin, p.Points, p.Bytes, c.Points, c.Bytes)
	}
	if len(plan) != 6 || exact == 0 || exactBytes == 0 || written == 0 || planned < written*9/10 || planned > written*11/10 {
		t.Errorf("%d runs planned, %d points and %d bytes estimated exactly; %d bytes estimated in all, %d copied", len(plan), exact, exactBytes, planned, written)
	}
}

// TestWandbCloudStepAxisInMLflow: a run read through W&B's API and its
// run folder, copied into MLflow, get the same x axis: define_metric's
// step metrics reach the cloud source (config _wandb.m) as they reach the
// folder source, so every metric has the same MLflow steps and both runs
// carry the same wandb.step_metric tag.
func TestWandbCloudStepAxisInMLflow(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	cloud := wandbServer(t, key)
	srv := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	p := uniquePrefix(t)
	axes := map[string]map[string][]int64{} // source → metric key → MLflow steps
	tags := map[string]string{}
	for i, src := range []string{fixtures, cloud} {
		prefix := fmt.Sprintf("%s%d/", p, i)
		if code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, "mlflow+"+srv.URL+"?experiment-prefix="+prefix, "--no-state", "--run", "fxd00004"); code != 0 {
			t.Fatalf("copy %s: exit %d\n%s\n%s", src, code, out, errOut)
		}
		exp, err := api.GetExperimentByName(ctx, prefix+"fixture-entity/runferry-fixtures")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for r, err := range api.SearchRuns(ctx, []string{exp.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			tags[src], _ = r.Tag("wandb.step_metric")
			steps := map[string][]int64{}
			for _, m := range r.Data.Metrics {
				if strings.HasPrefix(m.Key, "system/") {
					continue
				}
				for page, err := range api.MetricHistory(ctx, r.Info.RunID, m.Key) {
					if err != nil {
						t.Fatal(err)
					}
					for _, pt := range page {
						steps[m.Key] = append(steps[m.Key], pt.Step)
					}
				}
				slices.Sort(steps[m.Key])
			}
			axes[src] = steps
		}
		if n != 1 {
			t.Fatalf("%s: %d runs copied, want 1", src, n)
		}
	}
	if tags[fixtures] == "" || tags[fixtures] != tags[cloud] {
		t.Errorf("wandb.step_metric: folder %q, cloud %q", tags[fixtures], tags[cloud])
	}
	if len(axes[fixtures]) == 0 || !reflect.DeepEqual(axes[fixtures], axes[cloud]) {
		t.Errorf("MLflow steps differ:\nfolder %v\ncloud  %v", axes[fixtures], axes[cloud])
	}
}

// TestWandbCloudBadLocations: an entity or project that does not exist, a
// host that has no W&B API at /graphql (a self-hosted URL missing its API
// path answers 404) and a proxy's HTML page each end the job before any
// transfer, exit 1, with one line naming the problem, never a page dump.
func TestWandbCloudBadLocations(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	loc := wandbServer(t, key)
	notFound := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notFound.Close)
	page := "<!DOCTYPE html>\n<html><head><title>Corporate SSO</title></head>\n<body>" + strings.Repeat("<p>sign in</p>\n", 500) + "</body></html>"
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	}))
	t.Cleanup(proxy.Close)
	host := func(u string) string { return "wandb+http://" + strings.TrimPrefix(u, "http://") }
	for _, c := range []struct {
		loc  string
		want []string
	}{
		{loc + "/nope", []string{"project fixture-entity/nope not found"}},
		{strings.TrimSuffix(loc, "/fixture-entity") + "/nobody", []string{`entity "nobody" has no project`}},
		{host(notFound.URL) + "/acme", []string{"/graphql answered 404", "not JSON", "is this a W&B API URL?"}},
		{host(proxy.URL) + "/acme/vision", []string{"/graphql answered 200", "text/html", "Corporate SSO"}},
	} {
		archive := filepath.Join(t.TempDir(), "archive")
		code, out, errOut := runCLI(t, "copy", "--accept-gaps", c.loc, "parquet:"+archive, "--state", filepath.Join(t.TempDir(), "l.db"))
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s\n%s", c.loc, code, out, errOut)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%s: error lacks %q: %q", c.loc, w, errOut)
			}
		}
		if n := strings.Count(strings.TrimSpace(errOut), "\n"); n > 0 || len(errOut) > 400 {
			t.Errorf("%s: error is %d lines, %d bytes: %q", c.loc, n+1, len(errOut), errOut)
		}
		if _, err := os.Stat(archive); !os.IsNotExist(err) {
			t.Errorf("%s: the archive was created (%v)", c.loc, err)
		}
	}
}

// TestWandbCloudRateLimited: against a server that rate-limits (a bucket
// of 6 requests refilled at 6/s), a copy with --rate 30 says on stderr
// that it waits on the server and why, and arrives whole (check passes);
// against a server that does not, a copy with --rate 10 is held by the cap
// alone. In both, the server never receives requests faster than the cap
// from the copy's start (paced).
func TestWandbCloudRateLimited(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	d := fixtureData(t)
	wandbtest.ExportFixtures(d)
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	srv.SetLimit(6, 0)
	var mu sync.Mutex
	var times []time.Time
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		return false
	})
	arrivals := func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		out := times
		times = nil
		return out
	}
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	start := time.Now()
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--rate", "30", "--state", filepath.Join(t.TempDir(), "l.db"))
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	// The server's limit is met either by RateLimit-Remaining 0 or, when
	// requests were already in flight, by a 429; waits are logged at most
	// every 5 s, so which reason shows depends on timing.
	if !strings.Contains(errOut, "waiting on the server") || !(strings.Contains(errOut, "RateLimit-Remaining 0") || strings.Contains(errOut, "429 Too Many Requests")) {
		t.Errorf("stderr does not say it waits on the server and why:\n%s", errOut)
	}
	if n := checkPaced(t, start, arrivals(), 30); n < 15 {
		t.Errorf("only %d requests", n)
	}
	code, out, errOut = runCLI(t, "check", loc, archive, "--rate", "30")
	if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
		t.Fatalf("check: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut = runCLI(t, "ls", loc, "--rate", "-1"); code != 2 {
		t.Errorf("--rate -1: exit %d\n%s", code, errOut)
	}

	// The cap alone: a server without limits, a copy whose requests
	// (queries and downloads) would come much faster than 10 a second.
	srv.SetLimit(0, 0)
	arrivals()
	start = time.Now()
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", loc, "parquet:"+filepath.Join(t.TempDir(), "capped"), "--rate", "10", "--no-state")
	if code != 0 || !strings.Contains(out, "copied 6 runs") {
		t.Fatalf("copy --rate 10: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := checkPaced(t, start, arrivals(), 10); n < 25 {
		t.Errorf("only %d requests under --rate 10", n)
	}
}

// checkPaced requires that requests arriving at times (as the server saw
// them) were paced at rate a second from start, the moment before the
// client was started: the k-th arrival (from 0) no earlier than k times
// the cap's spacing after start. A pacer sends the k-th request no
// earlier than that, and a loaded machine only delays a request between
// the pacer and the server, never advances it, so the bound holds
// whatever the load. A pacer faster than the cap by a factor f is caught
// when the copy was held by the cap enough: with s the time it was not
// (its work before its first request and between requests), the k-th
// request then arrives at about s + k/(f rate), before the bound once
// k/rate (1 - 1/f) > s; the highest rate reached from start, which it
// logs, tells how much room there was (above 83% of the cap, a pacer off
// by 1.25x fails). It returns the number of requests.
func checkPaced(t *testing.T, start time.Time, times []time.Time, rate float64) int {
	t.Helper()
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	gap := time.Duration(float64(time.Second) / rate)
	most := 0.0 // the highest rate from start to an arrival, as a fraction of the cap
	for k, tm := range times {
		bound := time.Duration(k) * gap
		if tm.Sub(start) < bound {
			t.Errorf("under --rate %v: request %d of %d arrived %v after the copy started, before %v (%d x 1/%v s)",
				rate, k+1, len(times), tm.Sub(start), bound, k, rate)
			return len(times)
		}
		if k > 0 {
			most = max(most, float64(bound)/float64(tm.Sub(start)))
		}
	}
	if len(times) > 0 {
		t.Logf("under --rate %v: %d requests in %v, at most %.0f%% of the cap's rate from the start to a request",
			rate, len(times), times[len(times)-1].Sub(start), 100*most)
	}
	return len(times)
}

// fixtureData reads the W&B fixture folders (testdata/wandb/fixtures) into
// the W&B API test server's data, as the entity fixture-entity.
func fixtureData(t *testing.T) *wandbtest.Data {
	t.Helper()
	src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures"), CrashedAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := wandbtest.Load(context.Background(), src, "fixture-entity", "tester")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// fixtureServer serves the W&B fixtures, with parquet history exports
// (wandbtest.ExportFixtures), through the W&B API test server.
func fixtureServer(t *testing.T, key string) (*wandbtest.Server, string) {
	t.Helper()
	d := fixtureData(t)
	wandbtest.ExportFixtures(d)
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return srv, "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity"
}

// TestWandbCloudRunDeletedMidExport: a run deleted on the server after the
// runs were listed fails by name (exit 3), the others arrive; once the run
// is gone, a re-run has nothing left to do for it and check compares the
// rest.
func TestWandbCloudRunDeletedMidExport(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, loc := fixtureServer(t, key)
	var once sync.Once
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/exports/") {
			once.Do(func() { srv.Delete("fxd00004") }) // first download: the listing is done
		}
		return false
	})
	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "archive")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--state", filepath.Join(dir, "l.db"), "--retries", "0", "--concurrency", "1")
	if code != exitRunsFailed || !strings.Contains(out, "copied 5 runs") || !strings.Contains(out+errOut, "fxd00004") ||
		!strings.Contains(out+errOut, "run fixture-entity/runferry-fixtures/fxd00004 not found") {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", loc, archive, "--state", filepath.Join(dir, "l.db"))
	if code != 0 || !strings.Contains(out, "copied 0 runs") {
		t.Fatalf("re-run: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestWandbCloudKillThenResume: the real binary copying from the W&B test
// server (exports, a latency of 20 ms a request) is SIGKILLed at seeded
// random moments (the first at a random download of run data), at least
// one of them while runs were being copied; a final re-run completes and
// check passes.
func TestWandbCloudKillThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, loc := fixtureServer(t, key)
	srv.SetLimit(0, 20*time.Millisecond)
	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "archive")
	killCopiesThenCheck(t, srv, loc, archive, "parquet:"+filepath.Join(dir, "probe"), 6)
}

// killCopiesThenCheck times one copy of the W&B cloud location loc
// (served by srv) into probe, counting the downloads of run data
// (exports, run files, artifacts) it asks srv for; then copies loc into
// dst n times with one ledger, each SIGKILLed: the first when srv is asked
// for the k-th download of that copy (k drawn within the probe's count),
// the others at a moment drawn within the probe's time (testenv.Rand);
// then copies once more to the end and requires check of loc against dst
// to find the six fixture runs matching. It requires that at least one
// kill landed while runs were being copied: the process died of the
// signal (it had not ended), srv had been asked for run data by that
// copy, and the ledger held fewer than the six runs committed after it.
func killCopiesThenCheck(t *testing.T, srv *wandbtest.Server, loc, dst, probe string, n int) {
	t.Helper()
	bin := testenv.BuildOnce(t, ".")
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	var fetched, trip atomic.Int64 // run-data downloads asked of srv; the one to kill at (0: none)
	var running atomic.Pointer[os.Process]
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && r.URL.Path != "/graphql" {
			if k := fetched.Add(1); k == trip.Load() {
				if p := running.Load(); p != nil {
					p.Signal(syscall.SIGKILL)
				}
			}
		}
		return false
	})
	start := time.Now()
	if out, err := exec.Command(bin, "copy", "--accept-gaps", loc, probe, "--no-state", "-q").CombinedOutput(); err != nil {
		t.Fatalf("probe copy: %v\n%s", err, out)
	}
	full := time.Since(start)
	downloads := fetched.Load()
	if downloads < 2 {
		t.Fatalf("the probe copy asked for %d downloads of run data", downloads)
	}
	rng := testenv.Rand(t)
	kills, midCopy := 0, 0
	for i := range n {
		fetched.Store(0)
		trip.Store(0)
		if i == 0 {
			trip.Store(1 + rng.Int64N(downloads))
		}
		cmd := exec.Command(bin, "copy", "--accept-gaps", loc, dst, "--state", ledger, "-q", "--concurrency", "2")
		var output bytes.Buffer
		cmd.Stdout, cmd.Stderr = &output, &output
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		running.Store(cmd.Process)
		if i > 0 {
			time.Sleep(time.Duration(rng.Int64N(int64(full))))
			cmd.Process.Signal(syscall.SIGKILL)
		}
		_ = cmd.Wait()
		running.Store(nil)
		ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
		committed := committedRuns(t, ledger)
		mid := ws.Signaled() && fetched.Load() > 0 && committed >= 0 && committed < 6
		if ws.Signaled() {
			kills++
		}
		if mid {
			midCopy++
		}
		t.Logf("copy %d: killed %v (after %d of the probe's %d downloads; at download %d when set), %d runs committed after it: mid-copy %v",
			i+1, ws.Signaled(), fetched.Load(), downloads, trip.Load(), committed, mid)
		if !ws.Signaled() {
			t.Logf("copy %d ended by itself, exit %d:\n%s", i+1, ws.ExitStatus(), output.Bytes())
		}
	}
	if midCopy == 0 {
		t.Errorf("none of the %d kills landed while runs were being copied", kills)
	}
	if out, err := exec.Command(bin, "copy", "--accept-gaps", loc, dst, "--state", ledger, "-q").CombinedOutput(); err != nil {
		t.Fatalf("final copy: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "check", loc, dst).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "6 match, 0 differences") {
		t.Fatalf("check after %d kills: %v\n%s", kills, err, out)
	}
	t.Logf("%d kills (%d mid-copy), the timed ones within %v each", kills, midCopy, full)
}

// committedRuns is the number of runs the ledger file at path holds as
// committed (it holds one job), 0 when the file or its table is not
// there yet (a copy killed before it made them), -1 when it cannot be
// read.
func committedRuns(t *testing.T, path string) int {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return 0
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Logf("ledger %s: %v", path, err)
		return -1
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type='table' AND name='runs'`).Scan(&tables); err != nil || tables == 0 {
		return 0
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM runs WHERE status='committed'`).Scan(&n); err != nil {
		t.Logf("ledger %s: %v", path, err)
		return -1
	}
	return n
}

// TestWandbCloudArtifacts: a W&B project whose run logged W&B Artifacts
// (the real SDK's artifact run, served as W&B holds it once synced) is
// copied from the cloud into an archive: the entry the server does not
// hold is named as a file not copied, everything else arrives, and check
// of the cloud against the archive finds no difference at all; check of
// the run folder against the cloud passes with the known gaps of the
// pair only (versions, ids and the alias latest the server assigns, times
// to the second, the entry neither holds).
func TestWandbCloudArtifacts(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	dir := testenv.WandbArtifactRun(t)
	folder := "wandb:" + filepath.Join(dir, "wandb") + "?entity=art&artifact-cache=" + filepath.Join(dir, "cache", "artifacts")
	src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(dir, "wandb"), Entity: "art", ArtifactCache: filepath.Join(dir, "cache", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := wandbtest.Load(context.Background(), src, "art", "tester")
	if err != nil {
		t.Fatal(err)
	}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/art"
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")

	code, out, errOut := runCLI(t, "copy", "--accept-gaps", loc, archive, "--state", filepath.Join(t.TempDir(), "l.db"))
	if code != 0 || !strings.Contains(out, "copied 1 run (") || !strings.Contains(errOut+out, "wandb-artifacts/lost-data/") ||
		!strings.Contains(errOut+out, "content not stored on the server") {
		t.Fatalf("copy: exit %d, want 0 naming the entry not stored\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, "check", loc, archive); code != 0 || !strings.Contains(out, "1 match, 0 differences\n") {
		t.Fatalf("check the cloud against the archive: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "check", folder, loc)
	if code != 0 || !strings.Contains(out, "1 match, 0 differences, ") {
		t.Fatalf("check the folder against the cloud: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, g := range []string{"a run folder has no version number for an artifact logged offline",
		"the W&B server moves the alias latest to the newest version",
		"the W&B server names an artifact version by its own id, a run folder by the SDK's client id",
		"an artifact file whose content neither side holds"} {
		if !strings.Contains(out, "known ("+g+"): ") {
			t.Errorf("no known difference %q:\n%s", g, out)
		}
	}
}
