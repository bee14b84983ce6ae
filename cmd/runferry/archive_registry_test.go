package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/archive"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	parquetsink "github.com/runferry/runferry/sinks/parquetdir"
	parquetsrc "github.com/runferry/runferry/sources/parquetdir"
)

// regDump is what testdata/mlflow/dump_registry.py prints: a model
// registry as MLflow's own Python client reads it.
type regDump struct {
	Models []struct {
		Name        string            `json:"name"`
		Description string            `json:"description"`
		Tags        map[string]string `json:"tags"`
		Aliases     map[string]string `json:"aliases"`
		Created     int64             `json:"creation_timestamp"`
		Updated     int64             `json:"last_updated_timestamp"`
		Versions    []struct {
			Version     int64             `json:"version"`
			Description string            `json:"description"`
			Tags        map[string]string `json:"tags"`
			Stage       string            `json:"stage"`
			Status      string            `json:"status"`
			Source      string            `json:"source"`
			RunID       string            `json:"run_id"`
			Created     int64             `json:"creation_timestamp"`
			Updated     int64             `json:"last_updated_timestamp"`
		} `json:"versions"`
	} `json:"models"`
	Runs map[string]struct {
		Origin      string `json:"origin"`
		ArtifactURI string `json:"artifact_uri"`
	} `json:"runs"`
}

func runPy(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(testenv.Python(t), args...).Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("python %s: %v\n%s", args[0], err, stderr)
	}
	return out
}

// registryOf reads the registered models of the server at url whose names
// start with prefix (dump_registry.py, run in py).
func registryOf(t *testing.T, py *testenv.PyScripts, url, prefix string) regDump {
	t.Helper()
	var d regDump
	script := filepath.Join(testenv.RepoRoot(t), "testdata", "mlflow", "dump_registry.py")
	if err := json.Unmarshal(py.Run(t, script, url, prefix), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// registryTablesScript prints the archive's registered_models and
// model_versions tables as pyarrow reads them: {"schema": {table: [name:type]},
// table: [rows as objects, timestamps as Unix ms]}, and the row counts
// DuckDB sees through the documented glob and through current.sql.
const registryTablesScript = `
import datetime, glob, json, os, sys
import pyarrow as pa, pyarrow.parquet as pq, duckdb
os.chdir(sys.argv[1])
epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
def norm(v):
    if isinstance(v, datetime.datetime):
        assert v.utcoffset() == datetime.timedelta(0), v
        return (v - epoch) // datetime.timedelta(milliseconds=1)
    return v
out = {"schema": {}, "duckdb": {}}
con = duckdb.connect()
con.execute(open("current.sql").read())
for table in ["registered_models", "model_versions"]:
    t = pa.concat_tables([pq.read_table(f) for f in sorted(glob.glob(table + "/*/*.parquet"))])
    out["schema"][table] = [f.name + ":" + str(f.type) for f in t.schema]
    out[table] = [{k: norm(v) for k, v in row.items()} for row in t.to_pylist()]
    out["duckdb"][table] = [con.execute("select count(*) from read_parquet('%s/*/*.parquet')" % table).fetchone()[0],
                            con.execute("select count(*) from %s" % table).fetchone()[0]]
print(json.dumps(out, sort_keys=True))
`

type registryTables struct {
	Schema   map[string][]string `json:"schema"`
	DuckDB   map[string][]int    `json:"duckdb"`
	Models   []map[string]any    `json:"registered_models"`
	Versions []map[string]any    `json:"model_versions"`
}

func readRegistryTables(t *testing.T, dir string) registryTables {
	t.Helper()
	script := filepath.Join(t.TempDir(), "tables.py")
	os.WriteFile(script, []byte(registryTablesScript), 0o644)
	var out registryTables
	if err := json.Unmarshal(runPy(t, script, dir), &out); err != nil {
		t.Fatal(err)
	}
	sortRows := func(rows []map[string]any, keys ...string) {
		slices.SortFunc(rows, func(a, b map[string]any) int {
			for _, k := range keys {
				if c := strings.Compare(fmt.Sprint(a[k]), fmt.Sprint(b[k])); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	sortRows(out.Models, "name")
	sortRows(out.Versions, "name", "version")
	return out
}

// expectedTables is what the archive's registry tables must hold after a
// copy of the registry src (read by MLflow's client) from the server
// whose instance (origin prefix) is inst.
func expectedTables(t *testing.T, inst string, src regDump) registryTables {
	t.Helper()
	jsonOf := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	type kv struct {
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	tags := func(m map[string]string) string {
		out := []kv{}
		for k, v := range m {
			out = append(out, kv{k, v})
		}
		slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.Key, b.Key) })
		return jsonOf(out)
	}
	ms := func(v int64) any { return float64(v) }
	want := registryTables{
		Schema: map[string][]string{
			"registered_models": {"model:string", "origin_system:string", "origin_id:string", "name:string", "description:string",
				"tags:string", "aliases:string", "created_at:timestamp[ms, tz=UTC]", "updated_at:timestamp[ms, tz=UTC]", "snapshot:int64"},
			"model_versions": {"model:string", "name:string", "version:int64", "description:string", "stage:string", "status:string",
				"tags:string", "source:string", "run:string", "run_path:string", "created_at:timestamp[ms, tz=UTC]", "updated_at:timestamp[ms, tz=UTC]"},
		},
		DuckDB: map[string][]int{"registered_models": {len(src.Models), len(src.Models)}},
	}
	nv := 0
	for _, m := range src.Models {
		origin := "mlflow:" + inst + "/model/" + m.Name
		type alias struct {
			Alias   string `json:"alias"`
			Version int64  `json:"version"`
		}
		aliases := []alias{}
		for a, v := range m.Aliases {
			var n int64
			fmt.Sscan(v, &n)
			aliases = append(aliases, alias{a, n})
		}
		slices.SortFunc(aliases, func(a, b alias) int { return strings.Compare(a.Alias, b.Alias) })
		want.Models = append(want.Models, map[string]any{"model": origin, "origin_system": "mlflow",
			"origin_id": strings.TrimPrefix(origin, "mlflow:"), "name": m.Name, "description": m.Description,
			"tags": tags(m.Tags), "aliases": jsonOf(aliases), "created_at": ms(m.Created), "updated_at": ms(m.Updated),
			"snapshot": float64(1)})
		for _, v := range m.Versions {
			nv++
			run, runPath := "", ""
			if v.RunID != "" {
				run = "mlflow:" + inst + "/" + v.RunID
				if strings.HasPrefix(v.Source, src.Runs[v.RunID].ArtifactURI+"/") || strings.HasPrefix(v.Source, "runs:/") {
					runPath = "model"
				}
			}
			want.Versions = append(want.Versions, map[string]any{"model": origin, "name": m.Name, "version": float64(v.Version),
				"description": v.Description, "stage": v.Stage, "status": v.Status, "tags": tags(v.Tags), "source": v.Source,
				"run": run, "run_path": runPath, "created_at": ms(v.Created), "updated_at": ms(v.Updated)})
		}
	}
	want.DuckDB["model_versions"] = []int{nv, nv}
	return want
}

// expectedRestore is the registry a restore of src (from the server
// whose instance is inst) must show in a server whose own dump is got:
// src's models, versions, descriptions, tags, aliases and stages, each
// version's run the destination's copy of its source run and its files
// under that run's artifacts (a version without run keeps its source),
// plus runferry's bookkeeping tags. MLflow's own times are left out: a
// copy cannot set them (runferry.created_at keeps the creation time).
func expectedRestore(t *testing.T, inst string, src, got regDump) (want, gotCmp regDump) {
	t.Helper()
	byOrigin := map[string]string{}
	for id, r := range got.Runs {
		byOrigin[r.Origin] = id
	}
	created := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
	raw, _ := json.Marshal(src)
	json.Unmarshal(raw, &want)
	raw, _ = json.Marshal(got)
	json.Unmarshal(raw, &gotCmp)
	want.Runs, gotCmp.Runs = nil, nil
	for i := range want.Models {
		m := &want.Models[i]
		m.Tags["runferry.origin"] = "mlflow:" + inst + "/model/" + m.Name
		m.Tags["runferry.created_at"] = created(m.Created)
		m.Created, m.Updated = 0, 0
		for j := range m.Versions {
			v := &m.Versions[j]
			v.Tags["runferry.version"] = fmt.Sprint(v.Version)
			v.Tags["runferry.created_at"] = created(v.Created)
			v.Created, v.Updated = 0, 0
			if v.RunID == "" {
				continue
			}
			origin := "mlflow:" + inst + "/" + v.RunID
			v.Tags["runferry.source_run"] = origin
			id, ok := byOrigin[origin]
			if !ok {
				t.Fatalf("the destination has no run from %s", origin)
			}
			v.RunID, v.Source = id, got.Runs[id].ArtifactURI+"/model"
		}
	}
	for i := range gotCmp.Models {
		m := &gotCmp.Models[i]
		m.Created, m.Updated = 0, 0
		for j := range m.Versions {
			m.Versions[j].Created, m.Versions[j].Updated = 0, 0
		}
	}
	return want, gotCmp
}

func same(t *testing.T, what string, want, got any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		w, _ := json.MarshalIndent(want, "", " ")
		g, _ := json.MarshalIndent(got, "", " ")
		t.Fatalf("%s differs\nwant %s\ngot  %s", what, w, g)
	}
}

func copyOK(t *testing.T, src, dst, reportFile string) transfer.Report {
	t.Helper()
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", src, dst, "--no-state", "--report", reportFile)
	if code != 0 {
		t.Fatalf("copy %s %s: exit %d\n%s%s", src, dst, code, out, errOut)
	}
	var rep transfer.Report
	raw, err := os.ReadFile(reportFile)
	if err == nil {
		err = json.Unmarshal(raw, &rep)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestRegistryThroughArchive: a model registry made with MLflow's own
// client (three models, one without versions, five versions from two runs
// and an external URI, descriptions, tags, aliases and stages) is copied
// into a Parquet archive, whose registered_models and model_versions
// tables pyarrow and DuckDB read as the source's registry, and restored
// from the archive into a second MLflow server, where MLflow's client
// reads it with every version pointing at that server's copy of its run.
// Both servers are the package's shared ones: the test's experiment and
// models carry a prefix of its own, which the source location reads
// through ?experiment-prefix= and ?registry-prefix= (every other test's
// runs and models left out) and the restore writes under. The models made
// on the source are deleted when the test ends (deleteModelsAtEnd), so the
// later tests that copy the shared server under an experiment prefix alone
// find no registry there, as they did when this test had a server of its
// own.
// check passes for both legs and end to end; re-running both copies
// changes nothing (no snapshot, no version created twice); and check finds
// a version the archive lost or holds changed, and a damaged table file.
func TestRegistryThroughArchive(t *testing.T) {
	a, b, p := testenv.SharedMLflow(t), testenv.SharedMLflowOther(t), uniquePrefix(t)
	deleteModelsAtEnd(t, a.URL, p)
	// make_registry.py --dump prints registryOf(t, py, a.URL, p) last; it
	// and registryOf run in one Python process (one import of MLflow).
	py := testenv.StartPyScripts(t)
	made := strings.TrimSpace(string(py.Run(t, filepath.Join(testenv.RepoRoot(t), "testdata", "mlflow", "make_registry.py"), a.URL, "--more", "--prefix="+p, "--experiment="+p+"registry-src", "--dump")))
	var srcDump regDump
	if err := json.Unmarshal([]byte(made[strings.LastIndexByte(made, '\n')+1:]), &srcDump); err != nil {
		t.Fatalf("make_registry.py --dump printed %q: %v", made, err)
	}
	if len(srcDump.Models) != 3 {
		t.Fatalf("make_registry.py made %+v", srcDump)
	}
	inst, err := mlflowconv.Instance(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	locA, locB, locArch := "mlflow+"+a.URL+"?experiment-prefix="+p+"&registry-prefix="+p, "mlflow+"+b.URL+"?experiment-prefix="+p, "parquet:"+arch
	report := filepath.Join(dir, "report.json")

	rep := copyOK(t, locA, locArch, report)
	if g := rep.Registry; g == nil || g.Models != 3 || g.Versions != 5 || g.Failed != 0 {
		t.Fatalf("copy into the archive: registry %+v, want 3 models and 5 versions", g)
	}
	wantTables := expectedTables(t, inst, srcDump)
	same(t, "the archive's registry tables (pyarrow)", wantTables, readRegistryTables(t, arch))
	if code, out, errOut := runCLI(t, "check", locA, locArch); code != 0 {
		t.Fatalf("check %s %s: exit %d\n%s%s", locA, locArch, code, out, errOut)
	}

	rep = copyOK(t, locArch, locB, report)
	if g := rep.Registry; g == nil || g.Models != 3 || g.Versions != 5 || g.Failed != 0 {
		t.Fatalf("restore: registry %+v, want 3 models and 5 versions", g)
	}
	restored := registryOf(t, py, b.URL, p)
	want, got := expectedRestore(t, inst, srcDump, restored)
	same(t, "the restored registry (MLflow's client)", want, got)
	for _, pair := range [][2]string{{locArch, locB}, {locA, locB}} {
		if code, out, errOut := runCLI(t, "check", pair[0], pair[1]); code != 0 || !strings.Contains(out, "0 differences") {
			t.Fatalf("check %s %s: exit %d\n%s%s", pair[0], pair[1], code, out, errOut)
		}
	}

	if code, out, errOut := runCLI(t, "archive", "check", arch); code != 0 || !strings.Contains(out, "is intact: snapshot 1 (1 kept), 2 runs, 3 registered models, ") {
		t.Fatalf("archive check: exit %d\n%s%s", code, out, errOut)
	}

	// Re-runs change nothing.
	st, err := archive.LoadState(arch)
	if err != nil {
		t.Fatal(err)
	}
	copyOK(t, locA, locArch, report)
	st2, err := archive.LoadState(arch)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Manifest.Snapshot != st.Manifest.Snapshot || st2.Pending != 0 {
		t.Fatalf("a re-run into the archive made snapshot %d (was %d)", st2.Manifest.Snapshot, st.Manifest.Snapshot)
	}
	same(t, "the archive's registry tables after a re-run", wantTables, readRegistryTables(t, arch))
	copyOK(t, locArch, locB, report)
	again := registryOf(t, py, b.URL, p)
	same(t, "the restored registry after a re-run", restored, again)

	// check sees a version the archive lost and a stage it holds changed.
	src, err := parquetsrc.New(arch, 0)
	if err != nil {
		t.Fatal(err)
	}
	var churn schema.RegisteredModel
	for m, err := range src.RegisteredModels(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		if m.Name == p+"churn-model" {
			churn = m
		}
	}
	src.Close()
	if len(churn.Versions) != 3 {
		t.Fatalf("the archive's churn-model: %+v", churn)
	}
	churn.Versions = churn.Versions[1:]
	churn.Versions[0].Stage = "Production"
	sink, err := parquetsink.New(arch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink.PutRegisteredModel(context.Background(), churn, nil); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "check", locA, locArch)
	for _, w := range []string{"registered model " + p + "churn-model: missing version 1", "registered model " + p + "churn-model: version 2 stage: source Staging, destination Production"} {
		if code != 4 || !strings.Contains(out, w) {
			t.Fatalf("check after changing the archive: exit %d, want 4 and %q\n%s%s", code, w, out, errOut)
		}
	}
	if strings.Count(out, "registered model ") != 2 {
		t.Fatalf("check reports other registry differences than the two made:\n%s", out)
	}

	// A damaged table file is named, never read as data.
	st, err = archive.LoadState(arch)
	if err != nil {
		t.Fatal(err)
	}
	var damaged string
	for _, m := range st.Manifest.Models {
		for _, f := range m.Files {
			if f.Table == archive.TableModelVersions && m.Name == p+"fraud-detector" {
				damaged = filepath.Join(arch, filepath.FromSlash(f.Path))
			}
		}
	}
	body, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}
	body[len(body)/2] ^= 0x20
	os.WriteFile(damaged, body, 0o644)
	code, out, errOut = runCLI(t, "check", locA, locArch)
	if code != 4 || !strings.Contains(out, "destination: model registry unreadable") || !strings.Contains(out, damaged) {
		t.Fatalf("check with a damaged %s: exit %d\n%s%s", damaged, code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "archive", "check", arch); code != 4 || !strings.Contains(out+errOut, damaged) {
		t.Fatalf("archive check with a damaged %s: exit %d\n%s%s", damaged, code, out, errOut)
	}
}

// deleteModelsAtEnd deletes, when the test ends (passed or not), every
// registered model on the MLflow server at url whose name starts with
// prefix, and fails the test if one is left: the package's shared server
// then holds no registry of the test's, which every later test copying it
// under an experiment prefix alone would read (and copy) as its own.
func deleteModelsAtEnd(t *testing.T, url, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		api, err := mlflowapi.New(mlflowapi.Config{BaseURL: url})
		if err != nil {
			t.Fatal(err)
		}
		models := func() []string {
			var names []string
			for m, err := range api.SearchRegisteredModels(ctx) {
				if err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(m.Name, prefix) {
					names = append(names, m.Name)
				}
			}
			return names
		}
		for _, name := range models() {
			body, _ := json.Marshal(map[string]string{"name": name})
			req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url+"/api/2.0/mlflow/registered-models/delete", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("deleting registered model %s: %s %s", name, resp.Status, msg)
			}
		}
		if left := models(); len(left) != 0 {
			t.Errorf("registered models left on the shared server %s: %v", url, left)
		}
	})
}
