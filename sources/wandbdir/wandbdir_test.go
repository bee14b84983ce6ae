package wandbdir_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/sourcetest"
	"github.com/runferry/runferry/sources/wandbdir"
)

const (
	fixtures = "../../testdata/wandb/fixtures"
	samples  = "../../../shared/samples/wandb"
	// judgeNow makes every run without an exit record count as crashed
	// whatever the files' modification times (a fresh clone has fresh ones),
	// so the tests that read fixtures and samples do not depend on the clock.
	judgeNow = "?crashed-after=1ns"
)

func openAt(root string) func(*testing.T) sources.Source {
	return func(t *testing.T) sources.Source {
		loc, err := location.Parse("wandb:"+root, func(string) (location.Kind, bool) { return location.PathKind, true })
		if err != nil {
			t.Fatal(err)
		}
		src, err := wandbdir.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
}

func readAll(t *testing.T, root string) *dataset.Dataset {
	t.Helper()
	src := openAt(root)(t)
	defer src.Close()
	d, err := dataset.Read(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// expectedFile is testdata/wandb/fixtures/expected.json (see generate.py).
type expectedFile struct {
	Project string                 `json:"project"`
	Runs    map[string]expectedRun `json:"runs"`
}

type expectedRun struct {
	Name, Status, Notes, Group string
	State                      string // wandb.state, where no exit record decides the status
	JobType                    string `json:"job_type"`
	ExitCode                   *int   `json:"exit_code"`
	HasExitRecord              *bool  `json:"has_exit_record"`
	Tags                       []string
	Config                     map[string]any
	Summary                    map[string]any
	History                    []struct {
		Step   int64          `json:"step"`
		Values map[string]any `json:"values"`
	}
	Media []struct {
		Step int64             `json:"step"`
		Keys map[string]string `json:"keys"`
	}
	Console *struct {
		Stdout, Stderr []string
	}
	ConsoleIsPrefix bool     `json:"console_is_prefix"`
	Files           []string `json:"files"`
	Segments        int      `json:"segments"`
}

// expectedValue decodes expected.json's encoding of non-finite floats.
func expectedValue(v any) (float64, bool) {
	switch v := v.(type) {
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	case string:
		switch v {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
	}
	return 0, false
}

// TestFixtures runs the conformance suite over the run folders made by the
// real wandb SDK and checks that every logged point, config and summary
// value, tag, note, console line and file reads back exactly.
func TestFixtures(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(fixtures, "expected.json"))
	if os.IsNotExist(err) {
		t.Skip("no generated fixtures: run `make fixtures` (testdata/wandb/generate.py)")
	}
	if err != nil {
		t.Fatal(err)
	}
	var exp expectedFile
	if err := json.Unmarshal(raw, &exp); err != nil {
		t.Fatal(err)
	}
	sourcetest.Run(t, sourcetest.Opt{Open: openAt(fixtures + judgeNow), Skip: map[string]string{
		"OriginsNameTheInstance": "the fixture runs name their entity (fixture-entity), which identifies them wherever their folder lies; TestResumedStepsGoBack and TestLegacyFolder cover runs without one"}})
	d := readAll(t, fixtures+judgeNow)
	if len(d.Runs) != len(exp.Runs) {
		t.Errorf("%d runs, expected.json has %d", len(d.Runs), len(exp.Runs))
	}
	for id, want := range exp.Runs {
		t.Run(id, func(t *testing.T) { checkFixtureRun(t, d, exp.Project, id, want) })
	}
}

func checkFixtureRun(t *testing.T, d *dataset.Dataset, project, id string, want expectedRun) {
	var rd *dataset.RunData
	for _, r := range d.Runs {
		if strings.HasSuffix(r.Run.Origin.ID, "/"+project+"/"+id) {
			rd = r
		}
	}
	if rd == nil {
		t.Fatalf("run %s not read", id)
	}
	r := rd.Run
	// A SIGKILLed process leaves no exit record; silent for longer than
	// crashed-after (pinned to 1ns), the run crashed as W&B would show it:
	// expected.json says FAILED and wandb.state crashed (doc.go).
	wantStatus := schema.RunStatus(want.Status)
	if got := tag(r, "wandb.state"); got != want.State {
		t.Errorf("wandb.state = %q, want %q", got, want.State)
	}
	str := func(field, got, want string) {
		if got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	str("name", r.Name, want.Name)
	str("status", string(r.Status), string(wantStatus))
	str("notes", r.Notes, want.Notes)
	str("group", r.Group, want.Group)
	str("job type", r.JobType, want.JobType)
	if tags := slices.Sorted(slices.Values(want.Tags)); !reflect.DeepEqual(r.Labels, tags) && len(tags)+len(r.Labels) > 0 {
		t.Errorf("labels %q, want %q", r.Labels, tags)
	}
	if want.Segments > 1 && tag(r, "wandb.segments") != "2" {
		t.Errorf("segments tag %q, want %d", tag(r, "wandb.segments"), want.Segments)
	}
	if r.Start.IsZero() || r.End.Before(r.Start) {
		t.Errorf("start %v end %v", r.Start, r.End)
	}
	var cfg map[string]any
	if len(r.Config) > 0 {
		if err := json.Unmarshal(r.Config, &cfg); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(cfg, want.Config) && len(cfg)+len(want.Config) > 0 {
		t.Errorf("config\n got  %s\n want %v", r.Config, want.Config)
	}
	var summ map[string]any
	if len(r.Summary) > 0 {
		if err := json.Unmarshal(r.Summary, &summ); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range want.Summary {
		if !reflect.DeepEqual(summ[k], v) {
			t.Errorf("summary %s = %v, want %v", k, summ[k], v)
		}
	}
	checkFixtureHistory(t, rd, want)
	if want.Console != nil {
		for stream, lines := range map[string][]string{schema.Stdout: want.Console.Stdout, schema.Stderr: want.Console.Stderr} {
			var got []string
			for _, l := range rd.Logs {
				if l.Stream == stream {
					got = append(got, l.Line)
					if l.Time == 0 {
						t.Errorf("console line %q has no time", l.Line)
					}
				}
			}
			if want.ConsoleIsPrefix && len(got) > len(lines) {
				got = got[:len(lines)]
			}
			if !slices.Equal(got, lines) {
				t.Errorf("%s lines %q, want %q", stream, got, lines)
			}
		}
	}
	for _, p := range want.Files {
		i := slices.IndexFunc(rd.Files, func(f dataset.File) bool { return f.Path == p })
		if i < 0 {
			t.Errorf("file %s not listed", p)
			continue
		}
		folder, _ := filepath.Glob(filepath.Join(fixtures, "wandb", "*-"+r.Origin.ID[strings.LastIndex(r.Origin.ID, "/")+1:], "files", p))
		disk, err := os.ReadFile(folder[len(folder)-1])
		if err != nil || string(disk) != string(rd.Files[i].Content) {
			t.Errorf("file %s content differs from disk (%v)", p, err)
		}
	}
}

// checkFixtureHistory compares the history points and rich values with
// what the script logged, point for point (system metrics aside).
func checkFixtureHistory(t *testing.T, rd *dataset.RunData, want expectedRun) {
	type point struct {
		key  string
		step int64
		bits uint64
	}
	canon := func(v float64) uint64 {
		if math.IsNaN(v) {
			return 0x7ff8000000000001
		}
		return math.Float64bits(v)
	}
	var wantPts, gotPts []point
	wantRich := map[string]string{}
	for _, row := range want.History {
		for k, v := range row.Values {
			if f, ok := expectedValue(v); ok {
				wantPts = append(wantPts, point{k, row.Step, canon(f)})
			} else {
				b, _ := json.Marshal(v)
				wantRich[k+"@"+itoa(row.Step)] = string(b)
			}
		}
	}
	for _, m := range want.Media {
		for k, typ := range m.Keys {
			wantRich[k+"@"+itoa(m.Step)] = "type:" + typ
		}
	}
	for _, m := range rd.Metrics {
		if strings.HasPrefix(m.Key, wandbdir.SystemPrefix) {
			continue
		}
		if m.Time == 0 {
			t.Errorf("point %+v has no time", m)
		}
		gotPts = append(gotPts, point{m.Key, m.Step, canon(m.Value)})
	}
	less := func(a, b point) int {
		return strings.Compare(a.key+"\x00"+itoa(a.step), b.key+"\x00"+itoa(b.step))
	}
	slices.SortFunc(wantPts, less)
	slices.SortFunc(gotPts, less)
	if !slices.Equal(gotPts, wantPts) {
		t.Errorf("history points differ:\n got  %v\n want %v", gotPts, wantPts)
	}
	gotRich := map[string]string{}
	for _, v := range rd.RichValues {
		k := v.Key + "@" + itoa(v.Step)
		if v.Type == "string" || v.Type == "list" {
			gotRich[k] = v.JSON
		} else {
			gotRich[k] = "type:" + v.Type
		}
		for _, f := range v.Files {
			if !slices.ContainsFunc(rd.Files, func(file dataset.File) bool { return file.Path == f }) {
				t.Errorf("rich value %s refers to %s, which is not among the run's files", v.Key, f)
			}
		}
	}
	if !reflect.DeepEqual(gotRich, wantRich) && len(gotRich)+len(wantRich) > 0 {
		t.Errorf("rich values\n got  %v\n want %v", gotRich, wantRich)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func tag(r schema.Run, key string) string {
	for _, t := range r.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// TestSamples runs the conformance suite over real-world run folders and
// checks the facts the samples README lists.
func TestSamples(t *testing.T) {
	if _, err := os.Stat(samples); err != nil {
		testenv.Unavailable(t, "the real-world samples at "+samples, err.Error())
	}
	sourcetest.Run(t, sourcetest.Opt{Open: openAt(samples + judgeNow), Skip: map[string]string{
		"OriginsNameTheInstance": "most real-world runs were synced to W&B and name their entity, which identifies them wherever their folder lies; TestFixtures covers runs without one"}})
	d := readAll(t, samples+judgeNow)
	runs := map[string]*dataset.RunData{}
	for _, r := range d.Runs {
		id := r.Run.Origin.ID[strings.LastIndex(r.Run.Origin.ID, "/")+1:]
		if runs[id] != nil {
			t.Errorf("run id %s read twice", id)
		}
		runs[id] = r
	}
	if len(d.Runs) != 8 {
		t.Errorf("%d runs, want 8 (klt5o1bl's 4 folders merged into one)", len(d.Runs))
	}

	kwt := runs["3ojed7lz"]
	steps := map[int64]bool{}
	for _, m := range kwt.Metrics {
		if !strings.HasPrefix(m.Key, wandbdir.SystemPrefix) {
			steps[m.Step] = true
		}
	}
	if len(steps) != 862 || !steps[0] || !steps[861] {
		t.Errorf("3ojed7lz: %d history steps, want 862 (0..861)", len(steps))
	}
	if kwt.Run.Status != schema.StatusFailed || tag(kwt.Run, "wandb.state") != "crashed" || len(kwt.Run.Damage) == 0 {
		t.Errorf("3ojed7lz: status %s state %q damage %q, want FAILED, crashed, with damage reported",
			kwt.Run.Status, tag(kwt.Run, "wandb.state"), kwt.Run.Damage)
	}
	for _, m := range runs["2zuxwf70"].Metrics {
		if !strings.HasPrefix(m.Key, wandbdir.SystemPrefix) {
			t.Errorf("2zuxwf70 is an empty run, but has point %+v", m)
			break
		}
	}
	if got := tag(runs["klt5o1bl"].Run, "wandb.segments"); got != "4" {
		t.Errorf("klt5o1bl: segments tag %q, want 4", got)
	}

	korean := func(s string) bool {
		return strings.ContainsFunc(s, func(r rune) bool { return unicode.Is(unicode.Hangul, r) })
	}
	for _, id := range []string{"1zzt5n2n", "28b1fgqy"} {
		rd := runs[id]
		var out []byte
		for _, f := range rd.Files {
			if f.Path == "output.log" {
				out = f.Content
			}
		}
		if !korean(string(out)) || !utf8.Valid(out) {
			t.Errorf("%s: output.log artifact lost its Korean text", id)
		}
		if !slices.ContainsFunc(rd.Logs, func(l schema.LogLine) bool { return korean(l.Line) }) {
			t.Errorf("%s: no console line holds Korean text", id)
		}
	}
	if !strings.Contains(string(runs["28b1fgqy"].Run.Summary), `"NaN"`) {
		t.Errorf("28b1fgqy: summary %s lacks its NaN", runs["28b1fgqy"].Run.Summary)
	}

	for _, id := range []string{"y0fap6xc", "sy502l8x"} {
		rd := runs[id]
		var summ map[string]any
		if err := json.Unmarshal(rd.Run.Summary, &summ); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		found := false
		for _, v := range summ {
			if m, ok := v.(map[string]any); ok && m["_type"] == "table-file" {
				p, _ := m["path"].(string)
				found = slices.ContainsFunc(rd.Files, func(f dataset.File) bool { return f.Path == p && len(f.Content) > 0 })
			}
		}
		if !found {
			t.Errorf("%s: the table file referenced from the summary is not among the artifacts", id)
		}
	}

	// y0fap6xc logged a job artifact whose staged files stayed on its
	// author's machine: its manifest travels, requirements.frozen.txt is
	// found among the run's files (same MD5), and the two entries found
	// nowhere are named (diff.patch was removed from the samples).
	rd := runs["y0fap6xc"]
	manifest := slices.IndexFunc(rd.Files, func(f dataset.File) bool {
		return strings.HasPrefix(f.Path, "wandb-artifacts/job-https___github.com_mozilla") && strings.HasSuffix(f.Path, "/0c99f14f8b705097201ef003bd8a38d4/manifest.json")
	})
	if manifest < 0 {
		t.Fatalf("y0fap6xc: no job artifact manifest among %d files", len(rd.Files))
	}
	m, err := schema.ParseManifest(rd.Files[manifest].Content)
	if err != nil || m.Type != "job" || len(m.Entries) != 3 {
		t.Errorf("y0fap6xc job manifest: %v %+v", err, m)
	}
	var missing []string
	for _, f := range rd.Files {
		if strings.HasPrefix(f.Path, "wandb-artifacts/job-") && strings.Contains(f.Problem, "content not found (staged copy /Users/") {
			missing = append(missing, f.Path)
		}
	}
	if len(missing) != 2 || !strings.HasSuffix(missing[0], "/diff.patch") || !strings.HasSuffix(missing[1], "/wandb-job.json") {
		t.Errorf("y0fap6xc: files with problems %q, want diff.patch and wandb-job.json named", missing)
	}
	req := strings.TrimSuffix(rd.Files[manifest].Path, "manifest.json") + "requirements.frozen.txt"
	if i := slices.IndexFunc(rd.Files, func(f dataset.File) bool { return f.Path == req }); i < 0 || len(rd.Files[i].Content) != int(m.Entries[1].Size) {
		t.Errorf("y0fap6xc: %s not carried from the run's files", req)
	}
}

// copyTree copies the regular files and folders under src to dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCrashedAfterSilence reads the run the real SDK wrote before its
// process was SIGKILLed (no exit record): silent for longer than
// crashed-after it is FAILED with wandb.state=crashed, as W&B shows a run
// whose heartbeat stopped; a run whose log and records are both within the
// threshold is a live run, RUNNING. The log's last record is days old: a
// log written a minute ago (a folder copied without its times) does not
// make it live (rev1); only a threshold longer than the records' age does.
func TestCrashedAfterSilence(t *testing.T) {
	folders, _ := filepath.Glob(filepath.Join(fixtures, "wandb", "offline-run-*-fxc00003"))
	if len(folders) != 1 {
		t.Fatalf("fixture run fxc00003: %d folders", len(folders))
	}
	root := t.TempDir()
	dir := filepath.Join(root, "wandb", filepath.Base(folders[0]))
	copyTree(t, folders[0], dir)
	logs, _ := filepath.Glob(filepath.Join(dir, "*.wandb"))
	if len(logs) != 1 {
		t.Fatalf("%d .wandb files", len(logs))
	}
	fingerprints := map[string]bool{}
	read := func(query string) schema.Run {
		d := readAll(t, root+query)
		if len(d.Runs) != 1 {
			t.Fatalf("%d runs, want 1", len(d.Runs))
		}
		r := d.Runs[0].Run
		src := openAt(root + query)(t)
		defer src.Close()
		fp, err := src.(sources.Fingerprinter).Fingerprint(context.Background(), r)
		if err != nil || fp == "" {
			t.Fatalf("fingerprint %q: %v", fp, err)
		}
		fingerprints[string(r.Status)+" "+fp] = true
		return r
	}
	cases := []struct {
		name   string
		age    time.Duration
		query  string
		status schema.RunStatus
		state  string
	}{
		{"silent an hour", time.Hour, "", schema.StatusFailed, "crashed"},
		{"silent six minutes", 6 * time.Minute, "", schema.StatusFailed, "crashed"},
		{"written a minute ago, records days old", time.Minute, "", schema.StatusFailed, "crashed"},
		{"silent an hour, threshold past the records' age", time.Hour, "?crashed-after=1000000h", schema.StatusRunning, "running"},
		{"written a minute ago, threshold 30s", time.Minute, "?crashed-after=30s", schema.StatusFailed, "crashed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			at := time.Now().Add(-c.age)
			if err := os.Chtimes(logs[0], at, at); err != nil {
				t.Fatal(err)
			}
			r := read(c.query)
			if r.Status != c.status || tag(r, "wandb.state") != c.state {
				t.Errorf("status %s, wandb.state %q; want %s, %q", r.Status, tag(r, "wandb.state"), c.status, c.state)
			}
			if tag(r, "wandb.exit_code") != "" {
				t.Errorf("exit code tag %q for a run without exit record", tag(r, "wandb.exit_code"))
			}
		})
	}
	// The same files judged live and crashed fingerprint differently, so a
	// run copied while live is copied again once it is judged crashed.
	if err := os.Chtimes(logs[0], time.Now().Add(-time.Hour), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	fingerprints = map[string]bool{}
	read("?crashed-after=1000000h")
	read("")
	if len(fingerprints) != 2 {
		t.Errorf("fingerprints by status %v: want a live and a crashed one that differ", fingerprints)
	}
	loc, _ := location.Parse("wandb:"+root+"?crashed-after=soon", func(string) (location.Kind, bool) { return location.PathKind, true })
	if _, err := wandbdir.Open(context.Background(), loc); err == nil || !strings.Contains(err.Error(), "crashed-after") {
		t.Errorf("crashed-after=soon: err %v, want it refused by name", err)
	}
}

// TestConsoleOfTruncatedLog reads a real SDK run whose `.wandb` file was
// cut short (a folder copied while its run was live) while its
// files/output.log is whole: the console comes from output.log, every line
// of it, and the run's damage notes name that choice.
func TestConsoleOfTruncatedLog(t *testing.T) {
	folders, _ := filepath.Glob(filepath.Join(fixtures, "wandb", "offline-run-*-fxc00003"))
	if len(folders) != 1 {
		t.Fatalf("fixture run fxc00003: %d folders", len(folders))
	}
	root := t.TempDir()
	dir := filepath.Join(root, "wandb", filepath.Base(folders[0]))
	copyTree(t, folders[0], dir)
	logs, _ := filepath.Glob(filepath.Join(dir, "*.wandb"))
	if err := os.Truncate(logs[0], 40003); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(dir, "files", "output.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")

	d := readAll(t, root+judgeNow)
	rd := d.Runs[0]
	var got []string
	for _, l := range rd.Logs {
		got = append(got, l.Line)
		if l.Stream != schema.Stdout || l.Time != 0 {
			t.Fatalf("line %+v: want stdout, time unknown (from output.log)", l)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%d console lines, want the %d of output.log", len(got), len(want))
	}
	prefix := "wandb/" + filepath.Base(dir) + "/files/output.log: console read from here (" + itoa(int64(len(want))) +
		" lines): the damaged wandb/" + filepath.Base(dir) + "/run-fxc00003.wandb holds "
	found := false
	for _, note := range rd.Run.Damage {
		if rest, ok := strings.CutPrefix(note, prefix); ok {
			var n int
			if err := json.Unmarshal([]byte(rest), &n); err != nil || n >= len(want) {
				t.Errorf("note %q: the log's count should be below %d", note, len(want))
			}
			found = true
		}
	}
	if !found {
		t.Errorf("damage %q: no note naming output.log as the console's source", rd.Run.Damage)
	}
}

// TestOpenFindsRunsInBackground: Open starts discovery at once. A source
// closed right after Open answers ErrClosed (its discovery stopped); a
// source opened with a context canceled at once (its discovery failed)
// still lists every run when asked with a live one, the same runs as a
// source whose discovery ran in the caller.
func TestOpenFindsRunsInBackground(t *testing.T) {
	loc, err := location.Parse("wandb:"+fixtures+judgeNow, func(string) (location.Kind, bool) { return location.PathKind, true })
	if err != nil {
		t.Fatal(err)
	}
	origins := func(src sources.Source) []string {
		var out []string
		for e, err := range src.Experiments(context.Background()) {
			if err != nil {
				t.Fatal(err)
			}
			for r, err := range src.(sources.HeaderLister).RunHeaders(context.Background(), e.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, r.Origin.String()+" "+string(r.Status))
			}
		}
		return out
	}
	src, err := wandbdir.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	for _, err := range src.Experiments(context.Background()) {
		if !errors.Is(err, wandbdir.ErrClosed) {
			t.Errorf("closed right after Open: %v, want ErrClosed", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src, err = wandbdir.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	want, err := wandbdir.New(wandbdir.Config{Root: fixtures, CrashedAfter: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	if got, w := origins(src), origins(want); !slices.Equal(got, w) || len(w) < 6 {
		t.Errorf("opened with a canceled context: %v\nwant %v", got, w)
	}
}
