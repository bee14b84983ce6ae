package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestMLflowViewRoundTrip: W&B runs copied into MLflow (W&B's tags and
// fields as wandb.* tags, system metrics under MLflow's names, per-core
// CPU folded, personal data left out) then into a Parquet archive and
// into MLflow again still match the W&B source exactly, less the personal
// data the copy into MLflow left out and named; --keep-personal writes it.
func TestMLflowViewRoundTrip(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	boocamp := "wandb:" + testenv.Samples(t, "wandb/BoocampMonster__korean-relation-extraction/wandb/run-20221125_150848-28b1fgqy") + "?crashed-after=1ns"
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		if args[0] == "copy" {
			args = append(args, "--no-state")
		}
		code, out, errOut := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%q: exit %d\n%s\n%s", args, code, out, errOut)
		}
		return out
	}
	for i, src := range []string{fixtures, boocamp} {
		p := filepath.Base(dir) + "-" + string(rune('a'+i))
		first := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "-1/"
		second := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "-2/"
		archive := "parquet:" + filepath.Join(dir, p)
		report := filepath.Join(dir, p+".json")
		run("copy", src, first, "--report", report)
		run("check", src, first)
		run("copy", first, archive)
		run("copy", archive, second)
		run("check", src, second)

		raw, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var rep transfer.Report
		if err := json.Unmarshal(raw, &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Options["keep_personal"] != "false" || rep.Options["transform"] != "drop-personal=host,email" {
			t.Errorf("%s: report options %v", src, rep.Options)
		}
		hosts := int64(0)
		for _, r := range rep.Runs {
			hosts += r.Coverage["host name left out by drop-personal=host,email (not copied)"]
		}
		if hosts == 0 {
			t.Errorf("%s: the report names no host name left out: %+v", src, rep.Runs)
		}
		// No personal tag reached MLflow.
		for _, prefix := range []string{p + "-1/", p + "-2/"} {
			for e, err := range api.SearchExperiments(context.Background(), "", mlflowapi.ViewAll) {
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(e.Name, prefix) {
					continue
				}
				for r, err := range api.SearchRuns(context.Background(), []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
					if err != nil {
						t.Fatal(err)
					}
					for _, tag := range r.Data.Tags {
						if tag.Key == "wandb.host" || tag.Key == "wandb.email" || strings.Contains(tag.Value, "@") {
							t.Errorf("%s run %s: personal tag %s", prefix, r.Info.RunName, tag.Key)
						}
					}
				}
			}
		}
	}

	// Asked for, the host name arrives.
	kept := "mlflow+" + srv.URL + "?experiment-prefix=" + filepath.Base(dir) + "-kept/"
	run("copy", fixtures, kept, "--keep-personal")
	run("check", fixtures, kept)
	found := false
	for e, err := range api.SearchExperiments(context.Background(), "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Name, filepath.Base(dir)+"-kept/") {
			continue
		}
		for r, err := range api.SearchRuns(context.Background(), []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := r.Tag("wandb.host"); ok && v != "" {
				found = true
			}
		}
	}
	if !found {
		t.Error("--keep-personal: no run has wandb.host")
	}
}
