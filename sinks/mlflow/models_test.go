package mlflow_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	mlsrc "github.com/runferry/runferry/sources/mlflow"
)

// coverageOf sums the report's coverage counts whose kind contains part.
func coverageOf(rep *transfer.Report, part string) int64 {
	var n int64
	for kind, c := range rep.Coverage {
		if strings.Contains(kind, part) {
			n += c
		}
	}
	return n
}

// modelsWithoutIDs is read's logged models of a run keyed by name, with
// their ids left out (the destination's are its own).
func modelsWithoutIDs(c contentRun) (map[string]any, map[string]string) {
	out, ids := map[string]any{}, map[string]string{}
	for _, m := range c.Models {
		ids[m.Name] = m.ModelID
		m.ModelID = ""
		out[m.Name] = m
	}
	return out, ids
}

// TestLoggedModels logs an sklearn model (ready, with params, tags and two
// linked metrics) and a failed model with MLflow's Python client, copies
// them to a second real MLflow 3 server (the shared other side), and
// proves that the destination holds real logged models: MLflow's client
// reads the same name, type, state, params, tags, metrics and files from
// both; the REST API shows the copy linked to the destination run;
// mlflow.pyfunc loads models:/<new id> and predicts as the original does;
// check passes and then sees a changed tag. A re-run creates no second
// model, nor does a redo of a run found incomplete.
func TestLoggedModels(t *testing.T) {
	if testing.Short() {
		t.Skip("uses a second MLflow server and runs MLflow's Python client")
	}
	srv, other := testenv.SharedMLflow(t), testenv.SharedMLflowOther(t)
	ctx := context.Background()
	srcPrefix := fmt.Sprintf("lm-src-%d/", testenv.FreePort(t))
	registered := "lm-reg-" + strings.Trim(srcPrefix, "/")
	contentPy(t, "log", srv.URL, srcPrefix+"exp", registered)
	src := func() *mlsrc.Source {
		s, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: srcPrefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dst, read, dstPrefix := pair(t, other.URL)
	// A first copy stops after the models were created and their files
	// uploaded (the server refuses the run's outputs at commit), as a kill
	// would leave it; the next copy redoes the run and keeps one model each.
	broken := refusingProxy(t, other.URL, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/runs/outputs") },
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	stopped, _, _ := pairWithPrefix(t, broken, dstPrefix)
	if rep, err := transfer.Copy(ctx, src(), stopped, transfer.Options{Attempts: 1}); err != nil || rep.Totals.Failed != 1 {
		t.Fatalf("a copy refused at the model's output: %v %+v", err, rep.Totals)
	}
	rep, err := transfer.Copy(ctx, src(), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 1 || rep.Totals.Unchanged != 1 {
		t.Fatalf("MLflow to MLflow: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	if n := coverageOf(rep, "re-created with new ids"); n != 2 {
		t.Errorf("coverage %v: want 2 logged models counted as re-created with new ids", rep.Coverage)
	}
	if n := coverageOf(rep, "held as run files"); n != 0 {
		t.Errorf("coverage %v: no logged model should be held as run files on an MLflow 3 server", rep.Coverage)
	}

	want, got := readContents(t, srv.URL, srcPrefix+"exp", other.URL, dstPrefix+"exp")
	wantModels, srcIDs := modelsWithoutIDs(want["with-model"])
	gotModels, dstIDs := modelsWithoutIDs(got["with-model"])
	if len(wantModels) != 2 {
		t.Fatalf("content.py logged %+v", want["with-model"].Models)
	}
	if !reflect.DeepEqual(gotModels, wantModels) {
		t.Errorf("logged models MLflow's client reads from the destination:\n got %+v\nwant %+v", gotModels, wantModels)
	}
	if len(got["with-model"].RunFiles) != 0 {
		t.Errorf("the destination run holds model files of its own: %v", got["with-model"].RunFiles)
	}

	// The REST API: the copy is linked to the destination's run, and tagged
	// with what it stands for.
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: other.URL})
	if err != nil {
		t.Fatal(err)
	}
	countModels := func() []string {
		t.Helper()
		exp, err := api.GetExperimentByName(ctx, dstPrefix+"exp")
		if err != nil {
			t.Fatal(err)
		}
		ms, err := api.SearchLoggedModels(ctx, exp.ExperimentID, "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Info.Name)
		}
		slices.Sort(names)
		return names
	}
	if names := countModels(); !reflect.DeepEqual(names, []string{"broken", "regressor"}) {
		t.Errorf("after an interrupted copy and a full one the destination shows logged models %v, want one of each", names)
	}
	m, err := api.GetLoggedModel(ctx, dstIDs["regressor"], false)
	if err != nil {
		t.Fatal(err)
	}
	dstRun, err := api.GetRun(ctx, m.Info.SourceRunID)
	if err != nil || dstRun.Info.RunName != "with-model" || !strings.HasPrefix(m.Info.ArtifactURI, "mlflow-artifacts:") {
		t.Errorf("logged model %s: run %s (%v) named %q, artifacts at %s", m.Info.ModelID, m.Info.SourceRunID, err, dstRun.Info.RunName, m.Info.ArtifactURI)
	}
	var srcTag mlflowconv.ModelSource
	for _, tg := range m.Info.Tags {
		if tg.Key == mlflowconv.TagModelSource {
			_ = json.Unmarshal([]byte(tg.Value), &srcTag)
		}
	}
	if srcTag.ModelID != srcIDs["regressor"] {
		t.Errorf("tag %s of the copy names model %q, want %q", mlflowconv.TagModelSource, srcTag.ModelID, srcIDs["regressor"])
	}
	for _, x := range m.Data.Metrics {
		if x.RunID != dstRun.Info.RunID {
			t.Errorf("metric %s of the copy logged by run %s, want the destination's run %s", x.Key, x.RunID, dstRun.Info.RunID)
		}
	}

	// The source's model, its copy, and the registered version 1 of the copy (below), loaded
	// with mlflow.pyfunc in one content.py process.
	preds := predictions(t, srv.URL, "models:/"+srcIDs["regressor"], other.URL, "models:/"+dstIDs["regressor"],
		other.URL, "models:/"+registered+"/1")
	wantPred := preds[0]
	if gotPred := preds[1]; gotPred != wantPred || wantPred != "[9.0, 21.0]" {
		t.Errorf("models:/%s predicts %s, the source's model %s", dstIDs["regressor"], gotPred, wantPred)
	}
	// The registered version made by log_model points at the re-created
	// model, and loads through the registry.
	var v mlflowapi.ModelVersion
	for x, err := range api.SearchModelVersions(ctx, registered) {
		if err != nil {
			t.Fatal(err)
		}
		if x.Version == "1" {
			v = x
		}
	}
	if v.Source != "models:/"+dstIDs["regressor"] {
		t.Errorf("version 1 of %s: source %q; want the re-created model %s", registered, v.Source, dstIDs["regressor"])
	}
	if gotPred := preds[2]; gotPred != wantPred {
		t.Errorf("models:/%s/1 predicts %s, the source's model %s", registered, gotPred, wantPred)
	}

	if res, err := check.Run(ctx, src(), read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check: %v %v", err, res.Differences)
	}

	// A re-run skips the committed runs; a run found incomplete (as after
	// a kill) is redone, and its earlier models are retired with it.
	if rep, err := transfer.Copy(ctx, src(), dst, transfer.Options{}); err != nil || rep.Totals.Committed != 0 {
		t.Fatalf("re-run: %v %+v", err, rep.Totals)
	}
	if err := api.SetTag(ctx, dstRun.Info.RunID, mlflowconv.TagComplete, "deleted"); err != nil { // an active run: reads as incomplete
		t.Fatal(err)
	}
	if rep, err := transfer.Copy(ctx, src(), dst, transfer.Options{}); err != nil || rep.Totals.Committed != 1 {
		t.Fatalf("redo: %v %+v", err, rep.Totals)
	}
	if names := countModels(); !reflect.DeepEqual(names, []string{"broken", "regressor"}) {
		t.Errorf("after a re-run and a redo the destination shows logged models %v, want one of each", names)
	}
	if res, err := check.Run(ctx, src(), read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check after the redo: %v %v", err, res.Differences)
	}

	// check reads the models from the destination's API: a changed tag is
	// a difference.
	exp, err := api.GetExperimentByName(ctx, dstPrefix+"exp")
	if err != nil {
		t.Fatal(err)
	}
	active, err := api.SearchLoggedModels(ctx, exp.ExperimentID, "name = 'regressor'")
	if err != nil || len(active) != 1 {
		t.Fatalf("searching the regressor: %v %v", active, err)
	}
	if err := api.SetLoggedModelTags(ctx, active[0].Info.ModelID, []mlflowapi.Tag{{Key: "kind", Value: "changed"}}); err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(ctx, src(), read(), check.Options{})
	if err != nil || len(res.Differences) == 0 || !strings.Contains(fmt.Sprint(res.Differences), "logged model "+srcIDs["regressor"]+" tag kind: source linear, destination changed") {
		t.Fatalf("check after changing a model's tag: %v %v", err, res.Differences)
	}
}

// refusingProxy serves the MLflow server at target, answering the requests
// refuse picks with status and an MLflow error of code instead.
func refusingProxy(t *testing.T, target string, refuse func(*http.Request) bool, status int, code string) string {
	t.Helper()
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse(r) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error_code": %q, "message": "refused by the test"}`, code)
			return
		}
		r.Host = u.Host
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestLoggedModelsOlderServer copies a logged model to a server without
// logged models (an MLflow 3 server behind a proxy that answers their
// endpoints as MLflow 2 does): the files arrive as files of the run,
// counted as coverage, and check passes.
func TestLoggedModelsOlderServer(t *testing.T) {
	if testing.Short() {
		t.Skip("runs MLflow's Python client")
	}
	srv := testenv.SharedMLflow(t)
	ctx := context.Background()
	srcPrefix := loggedContent(t, srv)
	mlflow2 := refusingProxy(t, srv.URL, func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/logged-models") },
		http.StatusNotFound, "ENDPOINT_NOT_FOUND")
	src := func() *mlsrc.Source {
		s, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: srcPrefix})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dst, _, dstPrefix := pair(t, mlflow2)
	start := time.Now()
	rep, err := transfer.Copy(ctx, src(), dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed != 2 {
		t.Fatalf("copy: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	t.Logf("copied in %v", time.Since(start))
	if n := coverageOf(rep, "held as run files"); n != 2 {
		t.Errorf("coverage %v: want 2 logged models held as run files", rep.Coverage)
	}
	if n := coverageOf(rep, "re-created with new ids"); n != 0 {
		t.Errorf("coverage %v: nothing can be re-created without logged models", rep.Coverage)
	}
	// Read back directly (the real server shows the run's own files).
	_, read, _ := pairWithPrefix(t, srv.URL, dstPrefix)
	if res, err := check.Run(ctx, src(), read(), check.Options{}); err != nil || len(res.Differences) > 0 {
		t.Fatalf("check: %v %v", err, res.Differences)
	}
	wantAll, gotAll := readContents(t, srv.URL, srcPrefix+"exp", srv.URL, dstPrefix+"exp")
	want, got := wantAll["with-model"], gotAll["with-model"]
	if len(got.Models) != 0 || len(got.RunFiles) == 0 {
		t.Errorf("destination run: models %v, run files %v; want no models and the files as run files", got.Models, got.RunFiles)
	}
	for _, m := range want.Models {
		for f, sum := range m.Files {
			p := "mlflow-logged-models/" + m.ModelID + "/" + f
			if got.RunFiles[p] != sum {
				t.Errorf("file %s of model %s: run file has %q, want %s", f, m.Name, got.RunFiles[p], sum)
			}
		}
	}
}
