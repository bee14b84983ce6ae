package wandbtest_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/sources/wandbdir"
)

// Key is a dummy API key of W&B's format.
const Key = "0123456789abcdef0123456789abcdef01234567"

// fixtures loads the W&B fixtures into a test server's data.
func fixtures(t *testing.T) *wandbtest.Data {
	t.Helper()
	root := filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures")
	src, err := wandbdir.New(wandbdir.Config{Root: root, Entity: "acme", CrashedAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := wandbtest.Load(context.Background(), src, "acme", "tester")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

type expectedRun struct {
	Name    string         `json:"name"`
	Config  map[string]any `json:"config"`
	Summary map[string]any `json:"summary"`
	Tags    []string       `json:"tags"`
	Notes   string         `json:"notes"`
	Group   string         `json:"group"`
	JobType string         `json:"job_type"`
	Status  string         `json:"status"`
	State   string         `json:"state"` // W&B's state where no exit record decides the status
	History []historyRow   `json:"history"`
	Media   []struct {
		Step int64             `json:"step"`
		Keys map[string]string `json:"keys"`
	} `json:"media"`
	Console struct {
		Stdout []string `json:"stdout"`
		Stderr []string `json:"stderr"`
	} `json:"console"`
	ConsoleIsPrefix bool `json:"console_is_prefix"` // the run was killed: its console was cut off
}

type historyRow struct {
	Step   int64          `json:"step"`
	Values map[string]any `json:"values"`
}

// TestRealSDKReadsFixtures runs the real wandb SDK (wandb.Api) against the
// test server and requires it to read back what the fixtures hold
// (expected.json, written by the script that made them): the project, every
// run, config, summary, tags, notes, group, job type, and the full history
// through run.scan_history() (wandb-core's reader: the parquet exports and
// their live tail for the runs that have them, see ExportFixtures, the paged
// history query for the others), with sparse steps and pages smaller than
// the runs.
func TestRealSDKReadsFixtures(t *testing.T) {
	py := testenv.Python(t)
	d := fixtures(t)
	wandbtest.ExportFixtures(d)
	srv := wandbtest.New(d, Key)
	defer srv.Close()

	home := t.TempDir()
	cmd := exec.Command(py, "testdata/sdk_read.py", "acme")
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WANDB_") && !strings.HasPrefix(strings.ToLower(e), "http") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "WANDB_BASE_URL="+srv.URL, "WANDB_API_KEY="+Key, "HOME="+home,
		"WANDB_CONFIG_DIR="+home, "WANDB_CACHE_DIR="+home, "WANDB_DATA_DIR="+home, "WANDB_DIR="+home,
		"WANDB_SILENT=true", "WANDB__SERVICE_WAIT=300", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdk: %v\n%s", err, stderr.String())
	}
	var got map[string]map[string]struct {
		Name     string           `json:"name"`
		State    string           `json:"state"`
		Config   map[string]any   `json:"config"`
		Summary  map[string]any   `json:"summary"`
		Tags     []string         `json:"tags"`
		Notes    *string          `json:"notes"`
		Group    *string          `json:"group"`
		JobType  *string          `json:"job_type"`
		LastStep int64            `json:"last_step"`
		History  []map[string]any `json:"history"`
		Sampled  int              `json:"sampled"`
		System   []map[string]any `json:"system"`
		Console  [][]any          `json:"console"`
		Tail     [][]any          `json:"console_tail"`
		Files    map[string]struct {
			Size    int64  `json:"size"`
			MD5     string `json:"md5"`
			GotSize int64  `json:"got_size"`
			GotMD5  string `json:"got_md5"`
		} `json:"files"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("sdk output: %v\n%s", err, stdout.String())
	}
	var want struct {
		Project string                 `json:"project"`
		Runs    map[string]expectedRun `json:"runs"`
	}
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures/expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[want.Project] == nil {
		t.Fatalf("projects: got %v, want only %s", keys(got), want.Project)
	}
	runs := got[want.Project]
	if !reflect.DeepEqual(keys(runs), keys(want.Runs)) {
		t.Fatalf("runs: got %v, want %v", keys(runs), keys(want.Runs))
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	states := map[string]string{"FINISHED": "finished", "FAILED": "failed"}
	files, systemRows, consoleLines := 0, 0, 0
	for id, w := range want.Runs {
		g := runs[id]
		if g.Name != w.Name || str(g.Notes) != w.Notes || str(g.Group) != w.Group || str(g.JobType) != w.JobType {
			t.Errorf("%s: name/notes/group/job type: got %q %q %q %q, want %q %q %q %q", id,
				g.Name, str(g.Notes), str(g.Group), str(g.JobType), w.Name, w.Notes, w.Group, w.JobType)
		}
		// The fixture run without an exit record counts as crashed
		// (crashed-after=1ns): expected.json names its state.
		if want := cmp.Or(w.State, states[w.Status]); g.State != want {
			t.Errorf("%s: state %q, want %q (status %s)", id, g.State, want, w.Status)
		}
		if len(g.Tags) != 0 || len(w.Tags) != 0 {
			if !reflect.DeepEqual(g.Tags, w.Tags) {
				t.Errorf("%s: tags %v, want %v", id, g.Tags, w.Tags)
			}
		}
		if w.Config == nil {
			w.Config = map[string]any{}
		}
		if !reflect.DeepEqual(g.Config, w.Config) {
			t.Errorf("%s: config\n got %v\nwant %v", id, g.Config, w.Config)
		}
		for k, v := range w.Summary {
			if !reflect.DeepEqual(g.Summary[k], v) {
				t.Errorf("%s: summary %s = %v, want %v", id, k, g.Summary[k], v)
			}
		}
		// History: every row the script logged, by step, with its values;
		// the SDK adds _step, _timestamp (and _runtime when the server has it).
		var gotRows []map[string]any
		for _, row := range g.History {
			vals := map[string]any{}
			for k, v := range row {
				if v == nil {
					continue // a parquet export's null: the row lacks the key
				}
				if s, ok := v.(string); ok && strings.HasPrefix(s, "{") {
					// a parquet export's JSON column: the SDK gives its text
					var m map[string]any
					if json.Unmarshal([]byte(s), &m) == nil && m["_type"] != nil {
						v = m
					}
				}
				if m, ok := v.(map[string]any); ok && m["_type"] != nil {
					v = m["_type"] // media: expected.json names only the kind
				}
				if !strings.HasPrefix(k, "_") {
					vals[k] = v
				}
			}
			gotRows = append(gotRows, map[string]any{"step": row["_step"], "values": vals})
		}
		var wantRows []map[string]any
		for _, m := range w.Media {
			vals := map[string]any{}
			for k, kind := range m.Keys {
				vals[k] = kind
			}
			w.History = append(w.History, historyRow{Step: m.Step, Values: vals})
		}
		sort.SliceStable(w.History, func(i, j int) bool { return w.History[i].Step < w.History[j].Step })
		for _, h := range w.History {
			vals := map[string]any{}
			for k, v := range h.Values {
				if b, ok := v.(bool); ok { // the fixtures' booleans are numbers once read as metrics
					v = map[bool]float64{false: 0, true: 1}[b]
				}
				vals[k] = v
			}
			wantRows = append(wantRows, map[string]any{"step": float64(h.Step), "values": vals})
		}
		if !reflect.DeepEqual(norm(gotRows), norm(wantRows)) {
			t.Errorf("%s: history\n got %s\nwant %s", id, js(gotRows), js(wantRows))
		}
		if n := min(3, len(g.History)); g.Sampled != n {
			t.Errorf("%s: history(samples=3) gave %d rows, want %d", id, g.Sampled, n)
		}
		// Run files: the SDK lists every file the server holds (run.files(),
		// pages of 2) and downloads each whole, matching the listing's size
		// and MD5 and the bytes the fixtures hold.
		var held *wandbtest.Run
		for _, r := range d.Projects[0].Runs {
			if r.ID == id {
				held = r
			}
		}
		if len(g.Files) != len(held.Files) {
			t.Errorf("%s: the SDK listed %d files, the server holds %d", id, len(g.Files), len(held.Files))
		}
		for _, f := range held.Files {
			sum := md5.Sum(f.Content)
			want := base64.StdEncoding.EncodeToString(sum[:])
			gf, ok := g.Files[f.Name]
			if !ok || gf.Size != int64(len(f.Content)) || gf.GotSize != gf.Size || gf.MD5 != want || gf.GotMD5 != want {
				t.Errorf("%s: file %s: SDK %+v, want size %d md5 %s", id, f.Name, gf, len(f.Content), want)
			}
		}
		files += len(g.Files)
		// System metrics: run.history(stream="system") reads every
		// events row the server holds, whole.
		if !reflect.DeepEqual(norm(g.System), norm(held.Events)) || len(held.Events) == 0 {
			t.Errorf("%s: system metrics\n got %s\nwant %s", id, js(g.System), js(held.Events))
		}
		systemRows += len(g.System)
		// Console output: run.console_logs() (wandb-core's forward pages,
		// 2 lines each) reads every line the server holds, in order, with
		// its number, time, level and label; console_logs(last=2) the
		// newest two. Each stream's lines are those the script wrote
		// (expected.json; a prefix of them for the run killed mid-way).
		heldLines := [][]any{}
		var stdout, stderr []string
		for i, l := range held.LogLines {
			level := ""
			if l.Stderr {
				level = "error"
				stderr = append(stderr, l.Line)
			} else {
				stdout = append(stdout, l.Line)
			}
			heldLines = append(heldLines, []any{i, l.Time.UTC().Format("2006-01-02T15:04:05.000000"), level, l.Label, l.Line})
		}
		tail := heldLines[max(0, len(heldLines)-2):]
		if !reflect.DeepEqual(norm(g.Console), norm(heldLines)) || !reflect.DeepEqual(norm(g.Tail), norm(tail)) {
			t.Errorf("%s: console logs\n got %s\n tail %s\nwant %s", id, js(g.Console), js(g.Tail), js(heldLines))
		}
		for _, c := range []struct {
			name      string
			got, want []string
		}{{"stdout", stdout, w.Console.Stdout}, {"stderr", stderr, w.Console.Stderr}} {
			if len(c.got) < len(c.want) || !w.ConsoleIsPrefix && len(c.got) != len(c.want) || !slices.Equal(c.got[:len(c.want)], c.want) {
				t.Errorf("%s: %s lines %q, want %q", id, c.name, c.got, c.want)
			}
		}
		consoleLines += len(g.Console)
	}
	if consoleLines < 8 || srv.LogLinePages.Load() < int64(consoleLines/2) {
		t.Errorf("the SDK read %d console lines in %d logLines requests", consoleLines, srv.LogLinePages.Load())
	}
	if systemRows == 0 {
		t.Error("the SDK read no system metrics")
	}
	if files < 10 {
		t.Errorf("the SDK downloaded %d run files", files)
	}
	if srv.ParquetQueries.Load() == 0 || srv.ExportDownloads.Load() < 5 {
		t.Errorf("the SDK asked parquetHistory %d times and downloaded %d export files, want the parquet path (5 files)",
			srv.ParquetQueries.Load(), srv.ExportDownloads.Load())
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slicesSort(out)
	return out
}

func js(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// norm round-trips v through JSON so that numbers compare alike.
func norm(v any) any {
	var out any
	json.Unmarshal([]byte(js(v)), &out)
	return out
}

func slicesSort(s []string) { sort.Strings(s) }

// sdkRead runs testdata/sdk_read.py (the real wandb SDK) against srv for
// entity and returns its output.
func sdkRead(t *testing.T, srv *wandbtest.Server, entity string, args ...string) []byte {
	t.Helper()
	py := testenv.Python(t)
	home := t.TempDir()
	cmd := exec.Command(py, append([]string{"testdata/sdk_read.py", entity}, args...)...)
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WANDB_") && !strings.HasPrefix(strings.ToLower(e), "http") {
			env = append(env, e)
		}
	}
	cmd.Env = append(env, "WANDB_BASE_URL="+srv.URL, "WANDB_API_KEY="+Key, "HOME="+home,
		"WANDB_CONFIG_DIR="+home, "WANDB_CACHE_DIR="+home, "WANDB_DATA_DIR="+home, "WANDB_DIR="+home,
		"WANDB_SILENT=true", "WANDB__SERVICE_WAIT=300", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sdk: %v\n%s", err, stderr.String())
	}
	return stdout.Bytes()
}

// TestRealSDKReadsArtifacts: the W&B Artifacts of a run made by the real
// SDK (generate_artifacts.py), served by the test server, read back by the
// real SDK through wandb.Api(): run.logged_artifacts() lists every version
// with the name, type, digest, description and metadata the run logged,
// versions v0, v1, … and the aliases it gave (latest on the newest version
// of a name); artifact.manifest (downloaded from its signed URL) holds the
// entries of expected.json; artifact.download() fetches every file whose
// content the server holds with the right bytes (the SDK checks nothing:
// the test does), and not the one lost before upload;
// run.used_artifacts() of a second run lists the versions it used.
func TestRealSDKReadsArtifacts(t *testing.T) {
	out := testenv.WandbArtifactRun(t)
	src, err := wandbdir.New(wandbdir.Config{Root: out, Entity: "art", ArtifactCache: filepath.Join(out, "cache", "artifacts")})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	d, err := wandbtest.Load(context.Background(), src, "art", "tester")
	if err != nil {
		t.Fatal(err)
	}
	p := d.Projects[0]
	prod := p.Runs[0]
	p.Runs = append(p.Runs, &wandbtest.Run{ID: "artcons1", State: "finished", CreatedAt: prod.CreatedAt, HeartbeatAt: prod.HeartbeatAt,
		Used: []*wandbtest.Artifact{p.Artifacts[1]}})
	srv := wandbtest.New(d, Key)
	defer srv.Close()

	type sdkArtifact struct {
		Name        string         `json:"name"`
		Type        string         `json:"type"`
		Version     string         `json:"version"`
		Digest      string         `json:"digest"`
		Aliases     []string       `json:"aliases"`
		Description *string        `json:"description"`
		Metadata    map[string]any `json:"metadata"`
		Entries     map[string]struct {
			Digest string  `json:"digest"`
			Size   int64   `json:"size"`
			Ref    *string `json:"ref"`
		} `json:"entries"`
		Downloaded map[string]string `json:"downloaded"`
	}
	var got map[string]map[string]struct {
		Logged []sdkArtifact `json:"logged"`
		Used   []sdkArtifact `json:"used"`
	}
	b := sdkRead(t, srv, "art", "--artifacts")
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("sdk output: %v\n%s", err, b)
	}
	var want struct {
		Artifacts []struct {
			Name        string         `json:"name"`
			Type        string         `json:"type"`
			Digest      string         `json:"digest"`
			Aliases     []string       `json:"aliases"`
			Description string         `json:"description"`
			Metadata    map[string]any `json:"metadata"`
			Entries     []struct {
				Path   string `json:"path"`
				Size   int64  `json:"size"`
				Digest string `json:"digest"`
				Ref    string `json:"ref"`
			} `json:"entries"`
			Missing []string `json:"missing"`
		} `json:"artifacts"`
	}
	b, err = os.ReadFile(filepath.Join(out, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	runs := got["runferry-artifacts"]
	logged := runs["artprod1"].Logged
	if len(logged) != len(want.Artifacts) {
		t.Fatalf("the SDK listed %d logged versions, want %d", len(logged), len(want.Artifacts))
	}
	count, last := map[string]int{}, map[string]int{}
	for i, w := range want.Artifacts {
		last[w.Name] = i
	}
	files := 0
	for i, w := range want.Artifacts {
		g := logged[i]
		version := "v" + strconv.Itoa(count[w.Name])
		count[w.Name]++
		var aliases []string
		for _, a := range w.Aliases {
			if a != "latest" || last[w.Name] == i {
				aliases = append(aliases, a)
			}
		}
		sort.Strings(aliases)
		desc := ""
		if g.Description != nil {
			desc = *g.Description
		}
		if g.Name != w.Name+":"+version || g.Type != w.Type || g.Version != version || g.Digest != w.Digest ||
			desc != w.Description || !reflect.DeepEqual(g.Aliases, aliases) || (len(g.Metadata) > 0 || len(w.Metadata) > 0) && !reflect.DeepEqual(norm(g.Metadata), norm(w.Metadata)) {
			t.Errorf("version %d: SDK %s %s %s %s %v %q %v, want %s:%s %s %s %v %q %v", i, g.Name, g.Type, g.Version, g.Digest, g.Aliases, desc, g.Metadata,
				w.Name, version, w.Type, w.Digest, aliases, w.Description, w.Metadata)
		}
		if len(g.Entries) != len(w.Entries) {
			t.Errorf("%s: %d manifest entries, want %d", g.Name, len(g.Entries), len(w.Entries))
		}
		for _, e := range w.Entries {
			ge, ok := g.Entries[e.Path]
			ref := ""
			if ok && ge.Ref != nil {
				ref = *ge.Ref
			}
			if !ok || ge.Digest != e.Digest || ge.Size != e.Size || ref != e.Ref {
				t.Errorf("%s: entry %s: SDK %+v, want %+v", g.Name, e.Path, ge, e)
			}
			lost := slices.Contains(w.Missing, e.Path)
			switch d, ok := g.Downloaded[e.Path]; {
			case e.Ref != "" || lost:
				if ok {
					t.Errorf("%s: %s downloaded", g.Name, e.Path)
				}
			case d != e.Digest:
				t.Errorf("%s: %s downloaded with MD5 %q, want %s", g.Name, e.Path, d, e.Digest)
			default:
				files++
			}
		}
	}
	if files < 5 {
		t.Errorf("the SDK downloaded %d artifact files", files)
	}
	used := runs["artcons1"].Used
	if len(used) != 1 || used[0].Name != want.Artifacts[1].Name+":v0" || used[0].Digest != want.Artifacts[1].Digest || len(used[0].Downloaded) != 2 {
		t.Errorf("used: %+v", used)
	}
}
