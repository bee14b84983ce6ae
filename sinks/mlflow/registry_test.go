package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sources"
	mlsrc "github.com/runferry/runferry/sources/mlflow"
)

// registryDump is what testdata/mlflow/dump_registry.py prints: the model
// registry as MLflow's own Python client reads it.
type registryDump struct {
	Models []dumpModel        `json:"models"`
	Runs   map[string]dumpRun `json:"runs"`
}

type dumpModel struct {
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Aliases     map[string]string `json:"aliases"`
	Created     int64             `json:"creation_timestamp"`
	Versions    []dumpVersion     `json:"versions"`
}

type dumpVersion struct {
	Version     int               `json:"version"`
	Description string            `json:"description"`
	Tags        map[string]string `json:"tags"`
	Stage       string            `json:"stage"`
	Status      string            `json:"status"`
	Source      string            `json:"source"`
	RunID       string            `json:"run_id"`
	Created     int64             `json:"creation_timestamp"`
}

type dumpRun struct {
	Origin      string `json:"origin"`
	ArtifactURI string `json:"artifact_uri"`
}

// dumpRegistry is dump_registry.py's reading of the server's models whose
// names start with prefix (run in py).
func dumpRegistry(t *testing.T, py *testenv.PyScripts, url, prefix string) registryDump {
	t.Helper()
	var d registryDump
	if err := json.Unmarshal(py.Run(t, mlflowScript(t, "dump_registry.py"), url, prefix), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// expectedRegistry is what a copy of the registry src must look like in a
// destination whose runs are dstRuns (run id -> origin and artifact URI):
// every model, version, description, tag, alias and stage of src, each
// version's run_id the destination run whose origin is the source run's
// (mlflow:RUN_ID), its source under that run's artifacts, plus runferry's
// bookkeeping tags. Creation times are MLflow's own and left out.
func expectedRegistry(t *testing.T, srcURL string, src registryDump, dstRuns map[string]dumpRun) registryDump {
	t.Helper()
	inst, err := mlflowconv.Instance(srcURL) // native origins name the source server
	if err != nil {
		t.Fatal(err)
	}
	origin := func(id string) string { return "mlflow:" + inst + "/" + id }
	byOrigin := map[string]string{}
	for id, r := range dstRuns {
		byOrigin[r.Origin] = id
	}
	created := func(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
	want := registryDump{Runs: map[string]dumpRun{}}
	for _, m := range src.Models {
		w := m
		w.Tags = map[string]string{"runferry.origin": origin("model/" + m.Name), "runferry.created_at": created(m.Created)}
		for k, v := range m.Tags {
			w.Tags[k] = v
		}
		w.Created = 0
		w.Versions = []dumpVersion{}
		for _, v := range m.Versions {
			wv := v
			wv.Created = 0
			wv.Tags = map[string]string{"runferry.version": itoa(v.Version), "runferry.created_at": created(v.Created),
				"runferry.source_run": origin(v.RunID)}
			for k, val := range v.Tags {
				wv.Tags[k] = val
			}
			id, ok := byOrigin[origin(v.RunID)]
			if !ok {
				t.Fatalf("the destination has no run with origin %s", origin(v.RunID))
			}
			wv.RunID = id
			wv.Source = dstRuns[id].ArtifactURI + "/model"
			want.Runs[id] = dstRuns[id]
			w.Versions = append(w.Versions, wv)
		}
		want.Models = append(want.Models, w)
	}
	return want
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// withoutCreated clears MLflow's own creation times, which a copy cannot set.
func withoutCreated(d registryDump) registryDump {
	for i := range d.Models {
		d.Models[i].Created = 0
		for j := range d.Models[i].Versions {
			d.Models[i].Versions[j].Created = 0
		}
	}
	return d
}

func sameRegistry(t *testing.T, what string, want, got registryDump) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		w, _ := json.MarshalIndent(want, "", "  ")
		g, _ := json.MarshalIndent(got, "", "  ")
		t.Fatalf("%s: the destination's registry differs\nwant %s\ngot  %s", what, w, g)
	}
}

func copyJob(t *testing.T, src sources.Source, dst sinks.Sink) *transfer.Report {
	t.Helper()
	return copyJobWith(t, src, dst, transfer.Options{Concurrency: 2})
}

// copyJobWith is copyJob with other options.
func copyJobWith(t *testing.T, src sources.Source, dst sinks.Sink, opt transfer.Options) *transfer.Report {
	t.Helper()
	rep, err := transfer.Copy(context.Background(), src, dst, opt)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Totals.Failed > 0 || len(rep.Problems) > 0 {
		t.Fatalf("copy: %d failed runs, problems %v", rep.Totals.Failed, rep.Problems)
	}
	return rep
}

// TestRegistryCopied: a model registry made with MLflow's own client (two
// versions from two runs, descriptions, tags, aliases, stages, a model
// without versions) arrives in another MLflow server as MLflow's client
// reads it, each version pointing at the destination's copy of its run;
// a second copy changes nothing and creates no version. Both servers are
// the package's shared ones: the test's experiments and models carry a
// prefix of its own, which the source reads through ?experiment-prefix=
// and ?registry-prefix= (every other test's models left out).
func TestRegistryCopied(t *testing.T) {
	srcSrv := testenv.SharedMLflow(t)
	dstSrv := testenv.SharedMLflowOther(t)
	p := fmt.Sprintf("regcopy-%d-", time.Now().UnixNano())
	// make_registry.py --dump prints dumpRegistry(t, py, srcSrv.URL, p) last.
	py := testenv.StartPyScripts(t)
	made := strings.TrimSpace(string(py.Run(t, mlflowScript(t, "make_registry.py"), srcSrv.URL, "--prefix="+p, "--experiment="+p+"registry-src", "--dump")))
	var srcDump registryDump
	if err := json.Unmarshal([]byte(made[strings.LastIndexByte(made, '\n')+1:]), &srcDump); err != nil {
		t.Fatalf("make_registry.py --dump printed %q: %v", made, err)
	}
	if len(srcDump.Models) != 2 || len(srcDump.Models[1].Versions) != 2 {
		t.Fatalf("make_registry.py made %+v", srcDump)
	}
	open := func() (sources.Source, sinks.Sink) {
		src, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: srcSrv.URL}, ExperimentPrefix: p, RegistryPrefix: p})
		if err != nil {
			t.Fatal(err)
		}
		dst, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: dstSrv.URL}, ExperimentPrefix: p})
		if err != nil {
			t.Fatal(err)
		}
		return src, dst
	}
	src, dst := open()
	rep := copyJob(t, src, dst)
	if rep.Registry == nil || rep.Registry.Models != 2 || rep.Registry.Versions != 2 {
		t.Fatalf("report registry = %+v, want 2 models, 2 versions", rep.Registry)
	}
	if rep.Traces == nil || rep.Traces.Copied != 3 || len(rep.Coverage) != 1 {
		t.Errorf("report traces %+v, coverage %v: want the 3 traces copied, nothing counted but update times", rep.Traces, rep.Coverage)
	}
	if n := rep.Coverage[mlflow.CoverageRegistryUpdated]; n != 4 {
		t.Errorf("report coverage %v: want the update times of 2 models and 2 versions counted as not kept", rep.Coverage)
	}
	got := dumpRegistry(t, py, dstSrv.URL, p)
	want := expectedRegistry(t, srcSrv.URL, srcDump, got.Runs)
	sameRegistry(t, "first copy", want, withoutCreated(got))
	checkRegistry(t, srcSrv.URL, dstSrv.URL, p, nil)

	src, dst = open()
	copyJob(t, src, dst)
	sameRegistry(t, "second copy", want, withoutCreated(dumpRegistry(t, py, dstSrv.URL, p)))

	// What a user changes in the destination's registry, check sees.
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: dstSrv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := api.SetRegisteredModelAlias(ctx, p+"fraud-detector", "champion", "1"); err != nil {
		t.Fatal(err)
	}
	if err := api.TransitionModelVersionStage(ctx, p+"fraud-detector", "2", "Staging"); err != nil {
		t.Fatal(err)
	}
	checkRegistry(t, srcSrv.URL, dstSrv.URL, p, []string{
		`registered model ` + p + `fraud-detector: aliases: source [{"Alias":"champion","Version":2},{"Alias":"first","Version":1}], destination [{"Alias":"champion","Version":1},{"Alias":"first","Version":1}]`,
		`registered model ` + p + `fraud-detector: version 2 stage: source Production, destination Staging`,
	})
}

// checkRegistry runs check between the experiments and registered models
// under prefix on src and on dst (the copy's), and requires 2 models compared
// with the differences want.
func checkRegistry(t *testing.T, src, dst, prefix string, want []string) {
	t.Helper()
	s, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: src}, ExperimentPrefix: prefix, RegistryPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	d, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: dst}, ExperimentPrefix: prefix, RegistryPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(context.Background(), s, d, check.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range res.Differences {
		got = append(got, d.String())
	}
	if res.Models != 2 || !reflect.DeepEqual(got, want) {
		t.Fatalf("check: %d models compared, differences\n%s\nwant 2 models and\n%s", res.Models, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
