package wandbcloud_test

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/dataset"
	"github.com/runferry/runferry/sources/sourcetest"
	"github.com/runferry/runferry/sources/wandbcloud"
	"github.com/runferry/runferry/sources/wandbdir"
)

const key = "0123456789abcdef0123456789abcdef01234567"

// fixtureSource is the wandb: folder source over the W&B fixtures, as
// entity acme; runs without an exit record count as crashed.
func fixtureSource(t *testing.T) *wandbdir.Source {
	t.Helper()
	src, err := wandbdir.New(wandbdir.Config{Root: filepath.Join(testenv.RepoRoot(t), "testdata/wandb/fixtures"), Entity: "fixture-entity", CrashedAfter: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// server serves the fixtures as W&B's cloud would hold them once synced,
// changed by the functions given.
func server(t *testing.T, change ...func(*wandbtest.Data)) *wandbtest.Server {
	t.Helper()
	d, err := wandbtest.Load(context.Background(), fixtureSource(t), "fixture-entity", "tester")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range change {
		f(d)
	}
	srv := wandbtest.New(d, key)
	t.Cleanup(srv.Close)
	return srv
}

// want is what the folder source reads from the fixtures, less what W&B's
// API does not give (see the package doc): the segments and storage id
// tags, sub-second start and end times (the API's times are whole
// seconds), the console lines' times (the server stamps each line when
// it receives it: from synced on, one microsecond apart), the
// damage notes, and the files the folder lists without their content
// (but see cloudFiles for artifacts). The run files come whole,
// downloaded from the server.
func want(t *testing.T, synced time.Time) *dataset.Dataset {
	t.Helper()
	d, err := dataset.Read(context.Background(), fixtureSource(t))
	if err != nil {
		t.Fatal(err)
	}
	drop := map[string]bool{"segments": true, "storage_id": true} // what the API does not give
	versions := map[string]int{}
	for _, rd := range d.Runs {
		r := &rd.Run
		var tags []schema.Tag
		for _, tg := range r.Tags {
			if k := strings.TrimPrefix(tg.Key, wandbdir.TagPrefix); !drop[k] {
				tags = append(tags, tg)
			}
		}
		r.Tags, r.Damage = tags, nil
		r.Start, r.End = schema.CanonicalTime(r.Start.Truncate(time.Second)), schema.CanonicalTime(r.End.Truncate(time.Second))
		for i := range rd.Logs {
			rd.Logs[i].Time = synced.Add(time.Duration(i) * time.Microsecond).UnixMilli()
		}
		rd.Files = cloudFiles(t, rd.Files, versions)
		var rv []schema.RichValue
		for _, v := range rd.RichValues {
			if !strings.HasPrefix(v.Key, "system/") {
				rv = append(rv, v)
			}
		}
		rd.RichValues = rv
	}
	return d
}

// cloudFiles is what the cloud holds of a run folder's files: those it
// has content for, and of the W&B Artifacts the run logged, the manifests
// with the version and id the server gave (v0, v1, … per name, counted in
// versions) and the entries without content listed with the cloud's
// problem (the server holds only what was uploaded).
func cloudFiles(t *testing.T, files []dataset.File, versions map[string]int) []dataset.File {
	t.Helper()
	label := map[string]string{} // version folder -> name:vN
	var out []dataset.File
	for _, f := range files {
		if !schema.IsManifestPath(f.Path) {
			continue
		}
		m, err := schema.ParseManifest(f.Content)
		if err != nil {
			t.Fatal(err)
		}
		m.Version, m.ID = fmt.Sprintf("v%d", versions[m.Name]), wandbtest.ArtifactID(m.Name, versions[m.Name])
		versions[m.Name]++
		label[m.Folder()] = m.Name + ":" + m.Version
		b, err := schema.MarshalManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		f.Content = b
		out = append(out, f)
	}
	for _, f := range files {
		switch {
		case schema.IsManifestPath(f.Path):
		case f.Problem == "":
			out = append(out, f)
		case strings.HasPrefix(f.Path, schema.ArtifactFolder+"/"):
			v := label[path.Dir(f.Path)]
			f.Problem = "artifact " + v + ": content not stored on the server (the version's files do not list it)"
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(a, b dataset.File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func open(t *testing.T, url, path string) sources.Source {
	t.Helper()
	src, err := wandbcloud.New(wandbcloud.Config{BaseURL: url, Entity: "fixture-entity", Project: path, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// TestConformance runs the suite on the cloud source over the fixtures,
// requiring it to read what the folder source reads from the same runs
// (less what the API cannot give), with history windows smaller than the
// runs so that paging and empty windows (sparse steps) are exercised.
func TestConformance(t *testing.T) {
	old := wandbcloud.HistoryWindow
	wandbcloud.HistoryWindow = 3
	t.Cleanup(func() { wandbcloud.HistoryWindow = old })
	srv := server(t)
	w := want(t, srv.Data().SyncedAt)
	var points, rich, lines, stderr int
	for _, rd := range w.Runs {
		points += len(rd.Metrics)
		rich += len(rd.RichValues)
		lines += len(rd.Logs)
		for _, l := range rd.Logs {
			if l.Stream == schema.Stderr {
				stderr++
			}
		}
	}
	if len(w.Runs) != 6 || points < 40 || rich < 4 || lines < 4 || stderr == 0 {
		t.Fatalf("fixtures read as %d runs, %d points, %d rich values, %d console lines (%d stderr)", len(w.Runs), points, rich, lines, stderr)
	}
	sourcetest.Run(t, sourcetest.Opt{
		Open: func(t *testing.T) sources.Source { return open(t, srv.URL, "") },
		Want: w,
		Skip: map[string]string{"OriginsNameTheInstance": "W&B origins are ENTITY/PROJECT/RUN_ID on the cloud as in a run folder, " +
			"so that a run copied once from its folder and once from the cloud is one run; the entity names the instance's data"},
	})
	// The same with the project named in the location.
	got, err := dataset.Read(context.Background(), open(t, srv.URL, "runferry-fixtures"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(w, got, dataset.DiffOptions{}); diff != nil {
		t.Fatal(strings.Join(diff, "\n"))
	}
}

// TestConformanceExports is TestConformance with parquet history exports
// (wandbtest.ExportFixtures: three files with sparse steps, one file with
// a live tail, a live tail only, and runs without, read by the paged
// scan): the same runs, read from the exports, and the paged query asked
// only for the live tails and the runs without exports.
func TestConformanceExports(t *testing.T) {
	old := wandbcloud.HistoryWindow
	wandbcloud.HistoryWindow = 3
	t.Cleanup(func() { wandbcloud.HistoryWindow = old })
	srv := server(t, wandbtest.ExportFixtures)
	w := want(t, srv.Data().SyncedAt)
	tmp := t.TempDir()
	src, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", APIKey: key, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	// As a copy reads them: every run listed first, then read one after
	// the other.
	got := &dataset.Dataset{}
	var runs []schema.Run
	for e, err := range src.Experiments(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		got.Experiments = append(got.Experiments, e)
		for r, err := range src.Runs(context.Background(), e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, r)
		}
	}
	for _, r := range runs {
		rd, err := dataset.ReadRun(context.Background(), src, r)
		if err != nil {
			t.Fatal(err)
		}
		got.Runs = append(got.Runs, rd)
	}
	if diff := dataset.Diff(w, got, dataset.DiffOptions{}); diff != nil {
		t.Fatal(strings.Join(diff, "\n"))
	}
	// Read in listing order, the runs after the first had their exports
	// downloaded ahead; nothing is left in the temporary folder after
	// Close.
	if n := src.FetchedAhead.Load(); n == 0 {
		t.Error("no run's exports were downloaded ahead")
	}
	src.Close()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in the temporary folder after Close: %v", left)
	}
	// The console log is asked for only for the 4 runs whose listing
	// shows console lines, one page each.
	if n := srv.LogLinePages.Load(); n != 4 {
		t.Errorf("%d logLines requests, want 4", n)
	}
	// One read of the history serves metrics and rich values: each of the
	// 5 files downloaded once, and no run asked for again after the
	// listing. The one listing page, asked for again in export form when
	// the first run is read, carries every run's parquetHistory (6: the
	// run without history too) and its files and artifact versions, so
	// that besides the paged history, events and console lines counted
	// here, the read asks only for the projects, that page twice (plain,
	// then in export form), and the files of the one artifact version.
	if n := srv.ExportDownloads.Load(); n != 5 {
		t.Errorf("%d export files downloaded, want 5", n)
	}
	if n := srv.ParquetQueries.Load(); n != 6 {
		t.Errorf("%d parquetHistory fields answered, want 6", n)
	}
	if n, per := srv.Requests.Load(), srv.HistoryReads.Load()+srv.EventsReads.Load()+srv.LogLinePages.Load(); n != per+4 {
		t.Errorf("%d GraphQL requests, %d of them history, events and console pages: want 4 more", n, per)
	}
	// Paged windows of 3 steps: fxc00003's live tail (steps 0-4: 2),
	// fxd00004's (steps 3-4: 1), fxe00005 without exports (steps 0-1: 1).
	if n := srv.HistoryReads.Load(); n != 4 {
		t.Errorf("%d paged history requests, want 4", n)
	}
	// With no budget to keep what the listing carried, each run asks for
	// its exports and contents when read: the same runs.
	oldBudget := wandbcloud.ListedExtrasBudget
	wandbcloud.ListedExtrasBudget = 0
	t.Cleanup(func() { wandbcloud.ListedExtrasBudget = oldBudget })
	q := srv.ParquetQueries.Load()
	got, err = dataset.Read(context.Background(), open(t, srv.URL, ""))
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(w, got, dataset.DiffOptions{}); diff != nil {
		t.Fatal(strings.Join(diff, "\n"))
	}
	if n := srv.ParquetQueries.Load() - q; n != 6+5 {
		t.Errorf("without a budget: %d parquetHistory fields answered, want 6 listed and 5 asked by runs with history", n)
	}
	wandbcloud.ListedExtrasBudget = oldBudget
	// Without the exports, the paged scan reads the same.
	paged, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", APIKey: key, PagedHistory: true})
	if err != nil {
		t.Fatal(err)
	}
	got, err = dataset.Read(context.Background(), paged)
	if err != nil {
		t.Fatal(err)
	}
	if diff := dataset.Diff(w, got, dataset.DiffOptions{}); diff != nil {
		t.Fatal(strings.Join(diff, "\n"))
	}
}

// TestExpiredExportURLs: export URLs that expire before they are fetched
// are asked for again; URLs that always expire end in a retryable error
// naming the run.
func TestExpiredExportURLs(t *testing.T) {
	srv := server(t, wandbtest.ExportFixtures)
	ref := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/runferry-fixtures/fxa00001"}
	var wantPoints []schema.Metric
	for _, rd := range want(t, srv.Data().SyncedAt).Runs {
		if rd.Run.Origin == ref {
			wantPoints = rd.Metrics
		}
	}
	// The first two parquetHistory answers hand out URLs that have
	// already expired.
	var asked atomic.Int64
	srv.Before(func(rw http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/graphql" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			if bytes.Contains(b, []byte("parquetHistory")) {
				if asked.Add(1) <= 2 {
					srv.SetURLTTL(-time.Second)
				} else {
					srv.SetURLTTL(0)
				}
			}
		}
		return false
	})
	src := open(t, srv.URL, "")
	var got []schema.Metric
	for page, err := range src.Metrics(context.Background(), ref) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
	}
	if fmt.Sprint(sortedPoints(got)) != fmt.Sprint(sortedPoints(wantPoints)) || asked.Load() != 3 {
		t.Fatalf("read %d points (want %d), parquetHistory asked %d times (want 3)", len(got), len(wantPoints), asked.Load())
	}
	srv.Before(func(rw http.ResponseWriter, r *http.Request) bool {
		srv.SetURLTTL(-time.Second)
		return false
	})
	for _, err := range src.Metrics(context.Background(), ref) {
		if err == nil || fault.KindOf(err) != fault.KindRetryable || !strings.Contains(err.Error(), "fixture-entity/runferry-fixtures/fxa00001") ||
			!strings.Contains(err.Error(), "expired") || strings.Contains(err.Error(), "sig=") {
			t.Fatalf("always expired: %v", err)
		}
	}
}

// TestCheck: a wrong key and a project that does not exist are fatal
// errors naming them, before anything is listed.
func TestCheck(t *testing.T) {
	srv := server(t)
	ctx := context.Background()
	if err := open(t, srv.URL, "runferry-fixtures").(sources.Checker).Check(ctx); err != nil {
		t.Fatal(err)
	}
	bad, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "fixture-entity", APIKey: strings.Repeat("f", 40)})
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Check(ctx)
	if fault.KindOf(err) != fault.KindFatal || !strings.Contains(err.Error(), "refused the API key") || strings.Contains(err.Error(), strings.Repeat("f", 40)) {
		t.Fatalf("wrong key: %v", err)
	}
	err = open(t, srv.URL, "nope").(sources.Checker).Check(ctx)
	if fault.KindOf(err) != fault.KindFatal || !strings.Contains(err.Error(), "project fixture-entity/nope not found") {
		t.Fatalf("missing project: %v", err)
	}
	for _, err := range open(t, srv.URL, "nope").Experiments(ctx) {
		if fault.KindOf(err) != fault.KindFatal || !strings.Contains(err.Error(), "project fixture-entity/nope not found") {
			t.Fatalf("missing project: %v", err)
		}
	}
	nobody, err := wandbcloud.New(wandbcloud.Config{BaseURL: srv.URL, Entity: "nobody", APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	err = nobody.Check(ctx)
	if fault.KindOf(err) != fault.KindFatal || !strings.Contains(err.Error(), `entity "nobody" has no project`) {
		t.Fatalf("unknown entity: %v", err)
	}
	if srv.Requests.Load() == 0 {
		t.Fatal("no request answered")
	}
}

// TestParseConfig: the location names the host, entity and project; the
// key is refused in it and never echoed.
func TestParseConfig(t *testing.T) {
	parse := func(raw string) (wandbcloud.Config, error) {
		loc, err := location.Parse(raw, func(string) (location.Kind, bool) { return location.URLKind, true })
		if err != nil {
			return wandbcloud.Config{}, err
		}
		return wandbcloud.ParseConfig(loc)
	}
	for raw, want := range map[string]wandbcloud.Config{
		"wandb+https://api.wandb.ai/acme/vision":    {BaseURL: "https://api.wandb.ai", Entity: "acme", Project: "vision"},
		"wandb+https://api.wandb.ai/acme":           {BaseURL: "https://api.wandb.ai", Entity: "acme"},
		"wandb+http://127.0.0.1:8080/acme/":         {BaseURL: "http://127.0.0.1:8080", Entity: "acme"},
		"wandb+https://api.wandb.ai/acme?code=true": {BaseURL: "https://api.wandb.ai", Entity: "acme", Code: true},
	} {
		got, err := parse(raw)
		if err != nil || got != want {
			t.Errorf("%s: got %+v %v, want %+v", raw, got, err, want)
		}
	}
	for _, raw := range []string{"wandb+https://api.wandb.ai", "wandb+https://api.wandb.ai/a/b/c", "wandb+https://api.wandb.ai/a?x=1", "wandb+https://api.wandb.ai/a?code=yes"} {
		if _, err := parse(raw); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
	_, err := parse("wandb+https://api.wandb.ai/acme?api-key=SECRETKEY123")
	if err == nil || strings.Contains(err.Error(), "SECRETKEY123") || !strings.Contains(err.Error(), "WANDB_API_KEY") {
		t.Errorf("api-key in the location: %v", err)
	}
}

// TestHistorySurvivesRateLimit: 429s with Retry-After in the middle of a
// history scan are waited out, and the run reads whole; a run gone from
// the server is an error naming it.
func TestHistorySurvivesRateLimit(t *testing.T) {
	old := wandbcloud.HistoryWindow
	wandbcloud.HistoryWindow = 2
	t.Cleanup(func() { wandbcloud.HistoryWindow = old })
	srv := server(t)
	w := want(t, srv.Data().SyncedAt)
	var n atomic.Int64
	srv.Before(func(rw http.ResponseWriter, r *http.Request) bool {
		if n.Add(1)%4 == 0 {
			rw.Header().Set("Retry-After", "0")
			rw.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		return false
	})
	src := open(t, srv.URL, "")
	ref := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/runferry-fixtures/fxa00001"}
	var got []schema.Metric
	for page, err := range src.Metrics(context.Background(), ref) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
	}
	var wantPoints []schema.Metric
	for _, rd := range w.Runs {
		if rd.Run.Origin == ref {
			wantPoints = rd.Metrics
		}
	}
	if fmt.Sprint(sortedPoints(got)) != fmt.Sprint(sortedPoints(wantPoints)) || len(got) == 0 || n.Load() < 8 {
		t.Fatalf("read %d points (want %d) in %d requests", len(got), len(wantPoints), n.Load())
	}
	gone := schema.Ref{System: wandbcloud.System, ID: "fixture-entity/runferry-fixtures/gone0001"}
	for _, err := range src.Metrics(context.Background(), gone) {
		if err == nil || fault.KindOf(err) != fault.KindPermanent || !strings.Contains(err.Error(), "run fixture-entity/runferry-fixtures/gone0001 not found") {
			t.Fatalf("deleted run: %v", err)
		}
	}
}

// TestFiltersPushedDown: --run, --since and --until reach the server as
// the runs query's filters, so that it serves only the runs they select
// (and, for a --run id of another project, is not asked at all), and a
// filtered copy holds exactly the runs the engine's filter selects from
// the full listing.
func TestFiltersPushedDown(t *testing.T) {
	ctx := context.Background()
	srv := server(t)
	src := open(t, srv.URL, "")
	full, err := dataset.Read(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Runs) < 2 {
		t.Fatalf("fixtures: %d runs", len(full.Runs))
	}
	r0, rl := full.Runs[0].Run, full.Runs[len(full.Runs)-1].Run
	name := r0.Origin.ID[strings.LastIndexByte(r0.Origin.ID, '/')+1:]
	cases := []transfer.Filter{
		{RunIDs: []string{name}},
		{RunIDs: []string{r0.Origin.String()}},
		{RunIDs: []string{r0.Origin.ID, rl.Origin.ID}},
		{RunIDs: []string{"runferry-fixtures/" + name}},
		{RunIDs: []string{"other-project/" + name}},
		{RunIDs: []string{"no-such-run"}},
		{Since: rl.Start},
		{Until: rl.Start},
		{Since: r0.Start.Add(500 * time.Millisecond), Until: rl.Start.Add(time.Nanosecond)},
		{RunIDs: []string{name}, Since: rl.Start.Add(time.Second)},
	}
	for i, f := range cases {
		// The server is asked for whole seconds (the API's times are),
		// widened so that no selected run is left out.
		wide := f
		wide.Since = f.Since.Truncate(time.Second)
		if u := f.Until.Truncate(time.Second); !u.Equal(f.Until) {
			wide.Until = u.Add(time.Second)
		}
		var want []string
		var wantServed int64
		readsHistory := false
		for _, rd := range full.Runs {
			if f.Run(rd.Run) {
				want = append(want, rd.Run.Origin.ID)
				for _, m := range rd.Metrics {
					readsHistory = readsHistory || !strings.HasPrefix(m.Key, "system/")
				}
			}
			if wide.Run(rd.Run) {
				wantServed++
			}
		}
		dst := memory.New(sinks.Limits{})
		listed := srv.RunsListed.Load()
		rep, err := transfer.Copy(ctx, open(t, srv.URL, ""), dst, transfer.Options{Filter: f})
		if err != nil {
			t.Fatalf("case %d %+v: %v", i, f, err)
		}
		var got []string
		for _, rd := range dst.Dataset().Runs {
			got = append(got, rd.Run.Origin.ID)
		}
		slices.Sort(got)
		// A page of which a run's history is read is served again, in
		// export form.
		if readsHistory {
			wantServed *= 2
		}
		served := srv.RunsListed.Load() - listed
		if fmt.Sprint(got) != fmt.Sprint(want) || served != wantServed {
			t.Errorf("case %d %+v: copied %v, want %v; server listed %d runs, want %d (report %+v)", i, f, got, want, served, wantServed, rep.Totals)
		}
	}
	// A --run id of another project sends no runs query at all.
	before := srv.Requests.Load()
	for _, err := range src.(sources.RunFilterer).FilteredRuns(ctx, full.Runs[0].Run.Experiment, sources.RunFilter{RunIDs: []string{"fixture-entity/other/" + name}}) {
		t.Fatalf("unexpected run or error %v", err)
	}
	if n := srv.Requests.Load() - before; n != 0 {
		t.Errorf("%d requests for a --run id of another project", n)
	}
}

// sortedPoints is ps sorted by key, step and time (the cloud yields the
// history, then the system metrics; the folder source in log order).
func sortedPoints(ps []schema.Metric) []schema.Metric {
	ps = slices.Clone(ps)
	slices.SortStableFunc(ps, func(a, b schema.Metric) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), cmp.Compare(a.Step, b.Step), cmp.Compare(a.Time, b.Time))
	})
	return ps
}
