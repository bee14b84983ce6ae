package mlflow_test

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/check"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/location"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowconv"
	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/mlflow"
	"github.com/runferry/runferry/sources"
	mlsrc "github.com/runferry/runferry/sources/mlflow"
	"github.com/runferry/runferry/sources/wandbdir"
)

// openWandb opens the W&B source at path (crashed-after=1ns: states do
// not depend on file times).
func openWandb(t *testing.T, path string) sources.Source {
	t.Helper()
	loc, err := location.Parse("wandb:"+path+"?crashed-after=1ns", func(string) (location.Kind, bool) { return location.PathKind, true })
	if err != nil {
		t.Fatal(err)
	}
	src, err := wandbdir.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// copyAll copies src into dst, failing the test unless every run was
// committed (and at least one).
func copyAll(t *testing.T, src sources.Source, dst sinks.Sink) *transfer.Report {
	t.Helper()
	rep, err := transfer.Copy(context.Background(), src, dst, transfer.Options{})
	if err != nil || rep.Totals.Failed > 0 || rep.Totals.Committed == 0 {
		t.Fatalf("copy: %v %+v %+v", err, rep.Totals, rep.Runs)
	}
	return rep
}

// copyAndRead copies src into a fresh prefix on srv (with the given sink
// configuration), checks that the MLflow source gives back exactly the
// source, and returns what MLflow's REST API shows: the runs by W&B run
// id and the experiments.
func copyAndRead(t *testing.T, srv *testenv.MLflowServer, src sources.Source, perCore bool) (map[string]mlflowapi.Run, []mlflowapi.Experiment, *mlflowapi.Client) {
	t.Helper()
	ctx := context.Background()
	prefix := fmt.Sprintf("nv%d-%d/", prefixes.Add(1), testenv.FreePort(t))
	dst, err := mlflow.New(mlflow.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: prefix, MaxInFlight: 4, PerCoreCPU: perCore})
	if err != nil {
		t.Fatal(err)
	}
	copyAll(t, src, dst)
	read, err := mlsrc.New(mlsrc.Config{API: mlflowapi.Config{BaseURL: srv.URL}, ExperimentPrefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	res, err := check.Run(ctx, src, read, check.Options{})
	if err != nil || len(res.Differences) > 0 {
		t.Fatalf("check W&B vs MLflow: %v\n%v", err, res.Differences)
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	runs := map[string]mlflowapi.Run{}
	var exps []mlflowapi.Experiment
	for e, err := range api.SearchExperiments(ctx, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Name, prefix) {
			continue
		}
		exps = append(exps, e)
		for r, err := range api.SearchRuns(ctx, []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			o, _ := r.Tag(mlflowconv.TagOrigin)
			runs[o[strings.LastIndexByte(o, '/')+1:]] = r
		}
	}
	return runs, exps, api
}

func tagMap(tags []mlflowapi.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

// visible returns the tag keys MLflow's UI shows: those not under
// "mlflow." (getVisibleTagValues in its JS bundle).
func visible(tags map[string]string) []string {
	var out []string
	for k := range tags {
		if !strings.HasPrefix(k, "mlflow.") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// TestWandbFieldsAsMLflowTags: each W&B tag is a tag of its own (not
// repeated as a list), group and job type are wandb.group and wandb.job_type, and of
// runferry's own tags only runferry.origin is visible in MLflow's UI, on
// runs and on experiments.
func TestWandbFieldsAsMLflowTags(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	runs, exps, _ := copyAndRead(t, srv, openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures"), false)
	a, ok := runs["fxa00001"]
	if !ok {
		t.Fatalf("no run fxa00001 among %d runs", len(runs))
	}
	tags := tagMap(a.Data.Tags)
	for k, want := range map[string]string{
		"wandb.tag.baseline":      "true",
		"wandb.tag.ünï-tag":       "true",
		"wandb.group":             "group-1",
		"wandb.job_type":          "train",
		mlflowconv.TagOrigin:      "wandb:fixture-entity/runferry-fixtures/fxa00001",
		mlflowconv.TagComplete:    "true",
		mlflowconv.TagOriginKey:   mlflowconv.OriginKey("wandb:fixture-entity/runferry-fixtures/fxa00001"),
		"mlflow.runferry.sidecar": mlflowconv.SidecarPath,
	} {
		if got, ok := tags[k]; !ok || got != want {
			t.Errorf("tag %s = %q (%v), want %q", k, got, ok, want)
		}
	}
	if _, ok := tags[mlflowconv.TagLabels]; ok {
		t.Errorf("the W&B tags are written twice: %s = %s", mlflowconv.TagLabels, tags[mlflowconv.TagLabels])
	}
	for _, r := range runs {
		tags := tagMap(r.Data.Tags)
		for _, k := range visible(tags) {
			if strings.HasPrefix(k, "runferry.") && k != mlflowconv.TagOrigin {
				t.Errorf("run %s shows bookkeeping tag %s", r.Info.RunName, k)
			}
		}
		if e, ok := tags["wandb.job_type"]; r.Info.RunName == "run-e-failed" && (!ok || e != "eval") {
			t.Errorf("run-e-failed: wandb.job_type = %q", e)
		}
	}
	if len(exps) == 0 {
		t.Fatal("no experiment")
	}
	for _, e := range exps {
		tags := tagMap(e.Tags)
		for _, k := range visible(tags) {
			if strings.HasPrefix(k, "runferry.") && k != mlflowconv.TagOrigin {
				t.Errorf("experiment %s shows bookkeeping tag %s", e.Name, k)
			}
		}
		if _, ok := tags[mlflowconv.TagOrigin]; !ok {
			t.Errorf("experiment %s has no %s", e.Name, mlflowconv.TagOrigin)
		}
		if tags[mlflowconv.TagManaged] != "true" {
			t.Errorf("experiment %s: %s = %q", e.Name, mlflowconv.TagManaged, tags[mlflowconv.TagManaged])
		}
	}
	// Filtering by a W&B tag works as a W&B user expects.
	api, _ := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	var found []string
	for r, err := range api.SearchRuns(context.Background(), []string{exps[0].ExperimentID}, "tags.`wandb.tag.baseline` = 'true'", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, r.Info.RunName)
	}
	if !slices.Equal(found, []string{"run-a-everything"}) {
		t.Errorf("runs tagged baseline: %q", found)
	}
}

// metricKeys returns a run's metric keys as MLflow lists them.
func metricKeys(r mlflowapi.Run) []string {
	var out []string
	for _, m := range r.Data.Metrics {
		out = append(out, m.Key)
	}
	slices.Sort(out)
	return out
}

var perCoreKey = regexp.MustCompile(`cpu\.[0-9]+\.`)

// TestSystemMetricsNamedAsMLflow: W&B's system metrics arrive under the
// names MLflow's own logger gives them, the rest sanitised under system/,
// per-core CPU series folded into their mean (kept with per-core-cpu), and
// the MLflow source gives back the W&B keys exactly (check passes).
func TestSystemMetricsNamedAsMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	fixtures, _, fxApi := copyAndRead(t, srv, openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures"), false)
	fxa := fixtures["fxa00001"]
	keys := metricKeys(fxa)
	for _, want := range []string{"system/system_memory_usage_percentage", "system/disk_usage_percentage",
		"system/disk_usage_megabytes", "system/disk_vda_in", "system/proc_memory_rss_mb", "system/network_transmit_megabytes",
		"system/network_receive_megabytes"} {
		if !slices.Contains(keys, want) {
			t.Errorf("fxa00001: no %s among %q", want, keys)
		}
	}
	for _, k := range keys {
		if rest, sys := strings.CutPrefix(k, "system/"); sys && strings.Contains(rest, ".") || k == "system/memory_percent" || strings.Contains(k, "MB") {
			t.Errorf("fxa00001: W&B key %s not renamed", k)
		}
	}
	// Bytes and GiB arrive in MLflow's MB, point by point; W&B's own points
	// came back exactly (check above).
	fxSrc := openWandb(t, testenv.RepoRoot(t)+"/testdata/wandb/fixtures")
	wandbPoints := map[string]map[int64]float64{}
	for e, err := range fxSrc.Experiments(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range fxSrc.Runs(context.Background(), e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			if r.Origin.String()[strings.LastIndexByte(r.Origin.String(), '/')+1:] != "fxa00001" {
				continue
			}
			for page, err := range fxSrc.Metrics(context.Background(), r.Origin) {
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range page {
					if wandbPoints[m.Key] == nil {
						wandbPoints[m.Key] = map[int64]float64{}
					}
					wandbPoints[m.Key][m.Step] = m.Value
				}
			}
		}
	}
	for mk, conv := range map[string]struct {
		key   string
		scale float64
	}{
		"system/network_transmit_megabytes": {"system/network.sent", 1e-6},
		"system/network_receive_megabytes":  {"system/network.recv", 1e-6},
		"system/disk_usage_megabytes":       {"system/disk./.usageGB", 1073.741824},
	} {
		want := wandbPoints[conv.key]
		n := 0
		for page, err := range fxApi.MetricHistory(context.Background(), fxa.Info.RunID, mk) {
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				n++
				if w, ok := want[m.Step]; !ok || math.Abs(float64(m.Value)-w*conv.scale) > 1e-9*math.Abs(w*conv.scale) {
					t.Errorf("%s at step %d = %v; W&B's %s there is %v (× %v)", mk, m.Step, m.Value, conv.key, w, conv.scale)
				}
			}
		}
		if n == 0 || n != len(want) {
			t.Errorf("%s: %d points, W&B's %s has %d", mk, n, conv.key, len(want))
		}
	}

	boocamp := testenv.Samples(t, "wandb/BoocampMonster__korean-relation-extraction/wandb/run-20221125_150848-28b1fgqy")
	src := openWandb(t, boocamp)
	want := map[int64][]float64{} // per-core values by step
	var ref schema.Ref
	for e, err := range src.Experiments(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		for r, err := range src.Runs(context.Background(), e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			ref = r.Origin
		}
	}
	for page, err := range src.Metrics(context.Background(), ref) {
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if strings.HasPrefix(m.Key, "system/cpu.") && strings.HasSuffix(m.Key, ".cpu_percent") {
				want[m.Step] = append(want[m.Step], m.Value)
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("the sample has no per-core CPU series")
	}
	for _, perCore := range []bool{false, true} {
		runs, _, api := copyAndRead(t, srv, src, perCore)
		r := runs["28b1fgqy"]
		keys := metricKeys(r)
		var cores []string
		for _, k := range keys {
			if strings.Contains(k, "cpu_core_") {
				cores = append(cores, k)
			}
			if !strings.HasPrefix(k, "system/") && strings.HasPrefix(k, "system") || perCoreKey.MatchString(k) {
				t.Errorf("per-core=%v: key %s", perCore, k)
			}
		}
		for _, k := range []string{mlflowconv.CPUMeanKey, "system/gpu_0_utilization_percentage", "system/gpu_0_power_usage_watts",
			"system/gpu_0_power_usage_percentage", "system/gpu_0_memory_usage_percentage", "system/gpu_0_temp", "system/system_memory_usage_percentage"} {
			if !slices.Contains(keys, k) {
				t.Errorf("per-core=%v: no %s among %q", perCore, k, keys)
			}
		}
		if wantCores := 0; perCore {
			wantCores = 8
			if len(cores) != wantCores || cores[0] != "system/cpu_core_000_utilization_percentage" {
				t.Errorf("per-core series: %q", cores)
			}
		} else if len(cores) != 0 {
			t.Errorf("per-core series written by default: %q", cores)
		}
		n := 0
		for page, err := range api.MetricHistory(context.Background(), r.Info.RunID, mlflowconv.CPUMeanKey) {
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				n++
				vals := want[m.Step]
				sum := 0.0
				for _, v := range vals {
					sum += v
				}
				if len(vals) != 8 || math.Abs(float64(m.Value)-sum/8) > 1e-9 {
					t.Errorf("mean CPU at step %d = %v, want the mean of %v", m.Step, m.Value, vals)
				}
			}
		}
		if n != len(want) {
			t.Errorf("mean CPU: %d points, want one per sample (%d)", n, len(want))
		}
	}

	// An older SDK's Windows root disk keeps the system/ prefix.
	mozilla := testenv.Samples(t, "wandb/mozilla__search-term-data-validation/wandb/run-20240617_140006-sy502l8x")
	runs, _, _ := copyAndRead(t, srv, openWandb(t, mozilla), false)
	keys = metricKeys(runs["sy502l8x"])
	if !slices.Contains(keys, "system/disk_usage_megabytes") || !slices.Contains(keys, "system/disk_usage_percentage") {
		t.Errorf("mozilla sample: %q", keys)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "system_") || strings.Contains(k, `\`) {
			t.Errorf("mozilla sample: key %s", k)
		}
	}
}
