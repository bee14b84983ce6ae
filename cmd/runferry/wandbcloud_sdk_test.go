package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// TestWandbCloudFiltersMatchRealSDK: the run filters runferry pushes down
// for --run, --since and --until (W&B's `name` with `$in`, `createdAt`
// with `$gte`/`$lt`, several under `$and`) are sent by the real wandb SDK
// too, as a user writes them for wandb.Api().runs(path, filters=...), and
// both clients, against the same W&B API test server, list the same runs
// in the same order, which are the runs the filter selects from the
// server's data. The request bodies the server received are recorded: the
// `filters` variable of every runs query each client sent for a case is
// the same JSON (compared parsed: the SDK writes Python's json.dumps, runferry
// Go's compact encoding), so the test server parses one JSON for both.
func TestWandbCloudFiltersMatchRealSDK(t *testing.T) {
	py := testenv.Python(t)
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	d := fixtureData(t)
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	var sent []string // the filters variable of each runs query, in arrival order
	srv.Before(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/graphql" {
			return false
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("request body: %v", err)
		}
		r.Body = io.NopCloser(bytes.NewReader(b))
		var body struct {
			Query     string         `json:"query"`
			Variables map[string]any `json:"variables"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("request body: %v: %s", err, b)
		}
		if strings.Contains(body.Query, "runs(") {
			f, _ := body.Variables["filters"].(string)
			mu.Lock()
			sent = append(sent, f)
			mu.Unlock()
		}
		return false
	})
	take := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := sent
		sent = nil
		return out
	}
	runs := d.Projects[0].Runs
	if len(runs) != 6 {
		t.Fatalf("fixtures: %d runs", len(runs))
	}
	// Whole seconds between runs (the API's times are whole seconds;
	// runferry asks for whole seconds).
	sec := func(i int) time.Time { return runs[i].CreatedAt.UTC().Truncate(time.Second) }
	iso := func(tm time.Time) string { return tm.Format(time.RFC3339) }
	since, until := sec(2), sec(4)
	if !runs[1].CreatedAt.Before(since) || !runs[4].CreatedAt.After(until) {
		t.Fatalf("fixture runs' times do not straddle whole seconds: %v %v", runs[1].CreatedAt, runs[4].CreatedAt)
	}
	type filterCase struct {
		args []string       // runferry's flags
		sdk  map[string]any // the same filter as a W&B user writes it for the SDK
		want func(*wandbtest.Run) bool
	}
	in := func(ids ...string) func(*wandbtest.Run) bool {
		return func(r *wandbtest.Run) bool { return slices.Contains(ids, r.ID) }
	}
	gte := map[string]any{"createdAt": map[string]any{"$gte": iso(since)}}
	lt := map[string]any{"createdAt": map[string]any{"$lt": iso(until)}}
	cases := []filterCase{
		{[]string{"--run", runs[1].ID, "--run", runs[3].ID}, map[string]any{"name": map[string]any{"$in": []any{runs[1].ID, runs[3].ID}}},
			in(runs[1].ID, runs[3].ID)},
		{[]string{"--since", iso(since)}, gte, func(r *wandbtest.Run) bool { return !r.CreatedAt.Before(since) }},
		{[]string{"--until", iso(until)}, lt, func(r *wandbtest.Run) bool { return r.CreatedAt.Before(until) }},
		{[]string{"--since", iso(since), "--until", iso(until)}, map[string]any{"$and": []any{gte, lt}},
			func(r *wandbtest.Run) bool { return !r.CreatedAt.Before(since) && r.CreatedAt.Before(until) }},
		{[]string{"--run", runs[0].ID + "," + runs[5].ID, "--since", iso(since)},
			map[string]any{"$and": []any{map[string]any{"name": map[string]any{"$in": []any{runs[0].ID, runs[5].ID}}}, gte}},
			in(runs[5].ID)},
	}
	loc := "wandb+http://" + strings.TrimPrefix(srv.URL, "http://") + "/fixture-entity/runferry-fixtures"
	var ferried [][]string
	var ferrySent []string
	for _, c := range cases {
		code, out, errOut := runCLI(t, append([]string{"ls", loc, "--json"}, c.args...)...)
		if code != 0 {
			t.Fatalf("ls %v: exit %d\n%s\n%s", c.args, code, out, errOut)
		}
		var listed []struct {
			Origin string `json:"origin"`
		}
		if err := json.Unmarshal([]byte(out), &listed); err != nil {
			t.Fatalf("ls %v: %v\n%s", c.args, err, out)
		}
		ids := []string{}
		for _, l := range listed {
			ids = append(ids, l.Origin[strings.LastIndexByte(l.Origin, '/')+1:])
		}
		ferried = append(ferried, ids)
		fs := slices.Compact(take())
		if len(fs) != 1 {
			t.Fatalf("ls %v sent %d different filters in its runs queries: %q", c.args, len(fs), fs)
		}
		ferrySent = append(ferrySent, fs[0])
	}

	var sdkFilters []any
	for _, c := range cases {
		sdkFilters = append(sdkFilters, c.sdk)
	}
	in2, err := json.Marshal(sdkFilters)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, filepath.Join(testenv.RepoRoot(t), "internal/wandbapi/wandbtest/testdata/sdk_filters.py"), "fixture-entity/runferry-fixtures")
	cmd.Env = sdkEnv(t, srv.URL, key)
	cmd.Stdin = bytes.NewReader(in2)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdk: %v\n%s", err, stderr.String())
	}
	var sdkListed [][]string
	if err := json.Unmarshal(stdout.Bytes(), &sdkListed); err != nil || len(sdkListed) != len(cases) {
		t.Fatalf("sdk output (%v): %s", err, stdout.String())
	}
	// The SDK's runs queries, case after case; each case sends its filter
	// with every page (pages of 2).
	sdkSent := slices.Compact(take())
	if len(sdkSent) != len(cases) {
		t.Fatalf("the SDK sent %d different filters in a row, want %d (one a case): %q", len(sdkSent), len(cases), sdkSent)
	}
	parse := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("filters %q: %v", s, err)
		}
		return v
	}
	for i, c := range cases {
		want := []string{}
		for _, r := range runs {
			if c.want(r) {
				want = append(want, r.ID)
			}
		}
		if len(want) == 0 || len(want) == len(runs) {
			t.Fatalf("case %v selects %d of %d runs: not a filter test", c.args, len(want), len(runs))
		}
		if !reflect.DeepEqual(ferried[i], want) || !reflect.DeepEqual(sdkListed[i], want) {
			t.Errorf("%v: runferry listed %v, the SDK %v, want %v", c.args, ferried[i], sdkListed[i], want)
		}
		if !reflect.DeepEqual(parse(ferrySent[i]), parse(sdkSent[i])) {
			t.Errorf("%v: runferry sent filters %s, the SDK %s", c.args, ferrySent[i], sdkSent[i])
		}
		t.Logf("%v: runferry sent %s, the SDK %s; both listed %v", c.args, ferrySent[i], sdkSent[i], want)
	}
}

// sdkEnv is the environment for the real wandb SDK talking to the W&B API
// test server at url with key: no other WANDB_ or proxy variable, its
// home and folders in a temporary directory, no proxy for 127.0.0.1.
func sdkEnv(t *testing.T, url, key string) []string {
	home := t.TempDir()
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WANDB_") && !strings.HasPrefix(strings.ToLower(e), "http") {
			env = append(env, e)
		}
	}
	return append(env, "WANDB_BASE_URL="+url, "WANDB_API_KEY="+key, "HOME="+home,
		"WANDB_CONFIG_DIR="+home, "WANDB_CACHE_DIR="+home, "WANDB_DATA_DIR="+home, "WANDB_DIR="+home,
		"WANDB_SILENT=true", "WANDB__SERVICE_WAIT=300", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
}
