package mlflowfile_test

import (
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/fault"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
	"github.com/runferry/runferry/sources/mlflowfile"
	"github.com/runferry/runferry/sources/sourcetest"
)

// write creates the files of a store: path (slash-separated, below root)
// to content.
func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runMeta(id, exp, uri string, start int) string {
	return "artifact_uri: " + uri + "\nend_time: null\nexperiment_id: '" + exp + "'\nlifecycle_stage: active\nrun_id: " + id +
		"\nrun_uuid: " + id + "\nstart_time: " + strings.Repeat("1", start) + "\nstatus: 1\ntags: []\nuser_id: me\n"
}

// TestArtifactsAndDamage: a hand-made store of every artifact URI form
// (Windows, a bare 1.x path, %20 escapes, mlflow-artifacts: below the
// artifacts destination) and of damage. Files are found where their URI
// points, else next to the store; a run whose files are nowhere is counted
// by Omitted; a damaged metric line ends that key's history with an error
// naming the file and line after the points before it; a damaged run
// meta.yaml is an error naming the file and line after every other run.
func TestArtifactsAndDamage(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "mlruns")
	spaced := filepath.Join(base, "a dir", "arts")
	dest := filepath.Join(base, "served")
	write(t, root, map[string]string{
		"1/meta.yaml":                         "artifact_location: /home/someone/mlruns/1\nexperiment_id: 1\nlifecycle_stage: active\nname: legacy\n",
		"1/tags/mlflow.note.content":          "old notes",
		"1/aaa/meta.yaml":                     runMeta("aaa", "1", "file:///C:/Users/x/mlruns/1/aaa/artifacts", 1),
		"1/aaa/artifacts/model/m.pkl":         "pickle",
		"1/aaa/metrics/loss":                  "1 0.5 0\n2 0.4 1\n3 0.4 1\n3 bad 2\n4 0.3 3\n",
		"1/aaa/metrics/sub/acc":               "1 0.1\n",
		"1/aaa/params/lr":                     "0.1",
		"1/aaa/tags/mlflow.runName":           "windows run",
		"1/bbb/meta.yaml":                     runMeta("bbb", "1", "/nowhere/mlruns/1/bbb/artifacts", 2),
		"1/bbb/tags/mlflow.log-model.history": `[{"artifact_path": "model"}]`,
		"1/ccc/meta.yaml":                     runMeta("ccc", "1", "file://"+(&url.URL{Path: spaced}).EscapedPath(), 3),
		"1/ddd/meta.yaml":                     "run_id: ddd\nexperiment_id: '1'\nstart_time: [4\n",
		"1/eee/meta.yaml":                     runMeta("eee", "1", "mlflow-artifacts:/1/eee/artifacts", 5),
		"1/notarun/README":                    "a folder MLflow skips",
		".trash/2/meta.yaml":                  "artifact_location: file:///x\nexperiment_id: '2'\nlifecycle_stage: deleted\nname: gone\n",
		".trash/2/fff/meta.yaml":              runMeta("fff", "2", "file:///x/2/fff/artifacts", 6),
	})
	write(t, spaced, map[string]string{"notes.txt": "spaced"})
	write(t, dest, map[string]string{"1/eee/artifacts/served.txt": "proxied"})
	ctx := context.Background()
	src := mlflowfile.New(mlflowfile.Config{Root: root, Instance: "file" + root, ArtifactsDestination: dest, ArtifactFallback: true})

	var exps []schema.Experiment
	for e, err := range src.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		exps = append(exps, e)
	}
	if len(exps) != 1 || exps[0].Name != "legacy" || exps[0].Description != "old notes" {
		t.Fatalf("experiments %+v; want only the active one", exps)
	}
	var runs []schema.Run
	var runsErr error
	for r, err := range src.Runs(ctx, exps[0].Origin) {
		if err != nil {
			runsErr = err
			break
		}
		runs = append(runs, r)
	}
	if len(runs) == 4 && (len(runs[1].Damage) != 1 || !strings.Contains(runs[1].Damage[0], "/nowhere/mlruns/1/bbb/artifacts") || len(runs[0].Damage) != 0) {
		t.Errorf("damage of the run whose files are nowhere: %q; of the others: %q", runs[1].Damage, runs[0].Damage)
	}
	if len(runs) != 4 || runs[0].Name != "windows run" {
		t.Fatalf("%d runs before the damage (%+v), want aaa, bbb, ccc, eee", len(runs), runs)
	}
	if runsErr == nil || !strings.Contains(runsErr.Error(), filepath.Join("ddd", "meta.yaml")) || !strings.Contains(runsErr.Error(), "line 2") ||
		fault.KindOf(runsErr) != fault.KindPermanent {
		t.Errorf("damaged meta.yaml: %v; want a permanent error naming the file and the line", runsErr)
	}

	files := func(r schema.Run) map[string]string {
		out := map[string]string{}
		for a, err := range src.Artifacts(ctx, r.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			rc, err := a.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(rc)
			rc.Close()
			out[a.Path] = string(b)
		}
		return out
	}
	for i, want := range []map[string]string{
		{"model/m.pkl": "pickle"}, // Windows URI: found next to the store
		{},                        // nowhere
		{"notes.txt": "spaced"},   // %20 in the URI
		{"served.txt": "proxied"}, // mlflow-artifacts: below the destination
	} {
		if got := files(runs[i]); len(got) != len(want) || !mapsEqual(got, want) {
			t.Errorf("run %s files %v, want %v", runs[i].Name, got, want)
		}
	}
	om := src.Omitted(ctx)
	// bbb logged a model (its tag says so): its Damage names it; ccc's
	// files are found; none other is nowhere
	if om[mlflowfile.CoverageNoArtifacts] != 1 || om["folders without meta.yaml in experiments skipped (not runs)"] != 1 {
		t.Errorf("Omitted %v: want one run without files and one folder skipped", om)
	}

	var points []schema.Metric
	var mErr error
	for page, err := range src.Metrics(ctx, runs[0].Origin) {
		if err != nil {
			mErr = err
			break
		}
		points = append(points, page...)
	}
	keys := []string{}
	for _, p := range points {
		keys = append(keys, p.Key)
	}
	// keys in order: loss's three points before the damage (the
	// duplicated line kept), then the error; sub/acc is not reached
	if !slices.Equal(keys, []string{"loss", "loss", "loss"}) {
		t.Errorf("points %+v", points)
	}
	if mErr == nil || !strings.Contains(mErr.Error(), filepath.Join("aaa", "metrics", "loss")+":4") || !strings.Contains(mErr.Error(), `value "bad"`) {
		t.Errorf("damaged metric line: %v; want the file, line 4 and the value", mErr)
	}

	deleted := mlflowfile.New(mlflowfile.Config{Root: root, Instance: "x", Deleted: true})
	n := 0
	for e, err := range deleted.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Name == "gone" {
			n++
			for r, err := range deleted.Runs(ctx, e.Origin) {
				if err != nil || r.Origin.ID != "x/fff" {
					t.Errorf("run %+v, %v in the trashed experiment", r, err)
				}
				n++
			}
			if !e.Deleted {
				t.Errorf("trashed experiment not marked deleted")
			}
		}
	}
	if n != 2 {
		t.Errorf("with deleted=true: %d of the trashed experiment and its run", n)
	}
}

func mapsEqual(a, b map[string]string) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// TestConformanceOnSamples: the conformance suite's contract checks
// (order, early break, cancellation, concurrent reads, canonical form,
// origins naming the store) on each real-world store, read in place (the
// source never writes). What is read is compared with a server's reading
// in TestSamplesMatchServer.
func TestConformanceOnSamples(t *testing.T) {
	samples := testenv.Samples(t, "mlflow-file")
	for _, rel := range sampleStores {
		root := filepath.Join(samples, rel)
		t.Run(strings.SplitN(rel, "/", 2)[0], func(t *testing.T) {
			sourcetest.Run(t, sourcetest.Opt{
				Open: func(t *testing.T) sources.Source {
					return mlflowfile.New(mlflowfile.Config{Root: root, Instance: "file" + root, ArtifactFallback: true, Deleted: true})
				},
				OpenOther: func(t *testing.T) sources.Source {
					return mlflowfile.New(mlflowfile.Config{Root: root, Instance: "elsewhere", ArtifactFallback: true, Deleted: true})
				},
			})
		})
	}
}

// TestMissingStore: a path that is no folder is a fatal error naming it,
// not an empty store.
func TestMissingStore(t *testing.T) {
	root := filepath.Join(t.TempDir(), "nowhere", "mlruns")
	src := mlflowfile.New(mlflowfile.Config{Root: root, Instance: "x"})
	for _, err := range src.Experiments(context.Background()) {
		if err == nil || fault.KindOf(err) != fault.KindFatal || !strings.Contains(err.Error(), root) {
			t.Errorf("Experiments of a missing store: %v; want a fatal error naming %s", err, root)
		}
		return
	}
	t.Errorf("Experiments of a missing store yielded nothing")
}

// TestRegistry: the file store's model registry (models/ at the store's
// root): tags, aliases, versions (a deleted one left out, as MLflow leaves
// it out), the version's run by its origin; a damaged model is an error
// naming its meta.yaml, after the readable ones.
func TestRegistry(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mlruns")
	write(t, root, map[string]string{
		"0/meta.yaml":                     "artifact_location: file:///x\nexperiment_id: '0'\nlifecycle_stage: active\nname: Default\n",
		"0/r1/meta.yaml":                  runMeta("r1", "0", "file:///x/0/r1/artifacts", 1),
		"models/reg/meta.yaml":            "creation_timestamp: 1700000000000\ndescription: a model\nlast_updated_timestamp: 1700000000500\nname: reg\n",
		"models/reg/tags/owner":           "ml",
		"models/reg/aliases/champion":     "1",
		"models/reg/version-1/meta.yaml":  "creation_timestamp: 1700000000100\ncurrent_stage: Production\ndescription: ''\nlast_updated_timestamp: 1700000000200\nname: reg\nrun_id: r1\nsource: file:///x/0/r1/artifacts/model\nstatus: READY\nversion: 1\n",
		"models/reg/version-1/tags/check": "ok",
		"models/reg/version-2/meta.yaml":  "creation_timestamp: 1700000000300\ncurrent_stage: Deleted_Internal\nname: reg\nsource: s3://b/m\nstatus: READY\nversion: 2\n",
		"models/zbad/meta.yaml":           "name: [zbad\n",
	})
	src := mlflowfile.New(mlflowfile.Config{Root: root, Instance: "here"})
	var got []schema.RegisteredModel
	var regErr error
	for m, err := range src.RegisteredModels(context.Background()) {
		if err != nil {
			regErr = err
			break
		}
		got = append(got, m)
	}
	if len(got) != 1 {
		t.Fatalf("models %+v, want reg", got)
	}
	m := got[0]
	if m.Name != "reg" || m.Description != "a model" || len(m.Tags) != 1 || len(m.Aliases) != 1 || m.Aliases[0].Version != 1 ||
		len(m.Versions) != 1 || m.Versions[0].Stage != "Production" || m.Versions[0].Run != (schema.Ref{System: "mlflow", ID: "here/r1"}) ||
		m.Versions[0].RunPath != "model" || len(m.Versions[0].Tags) != 1 {
		t.Errorf("model %+v", m)
	}
	if regErr == nil || !strings.Contains(regErr.Error(), filepath.Join("zbad", "meta.yaml")) {
		t.Errorf("damaged model: %v; want an error naming zbad/meta.yaml", regErr)
	}
}

// TestFormerOrigins: a store named by its path has no former origins (it
// was never read under others); named by its server, it has that server's
// (the bare id, as the MLflow source gives).
func TestFormerOrigins(t *testing.T) {
	byPath := mlflowfile.New(mlflowfile.Config{Root: "/m/mlruns", Instance: "file/m/mlruns"})
	if f := byPath.FormerOrigins(schema.Ref{System: "mlflow", ID: "file/m/mlruns/0"}); f != nil {
		t.Errorf("by path: %v", f)
	}
	byServer := mlflowfile.New(mlflowfile.Config{Root: "/m/mlruns", Instance: "mlflow.acme:5000"})
	if f := byServer.FormerOrigins(schema.Ref{System: "mlflow", ID: "mlflow.acme:5000/abc"}); len(f) != 1 || f[0].ID != "abc" {
		t.Errorf("by server: %v", f)
	}
}
