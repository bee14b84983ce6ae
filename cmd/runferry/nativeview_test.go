package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
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
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
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
		run("copy", "--accept-gaps", src, first, "--report", report)
		run("check", src, first)
		run("copy", "--accept-gaps", first, archive)
		run("copy", "--accept-gaps", archive, second)
		run("check", src, second)

		raw, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		var rep transfer.Report
		if err := json.Unmarshal(raw, &rep); err != nil {
			t.Fatal(err)
		}
		const by = " left out by drop-personal=host,email,executable,root,args,login,home (not copied)"
		if rep.Options["keep_personal"] != "false" || rep.Options["transform"] != "drop-personal=host,email,executable,root,args,login,home" {
			t.Errorf("%s: report options %v", src, rep.Options)
		}
		left := map[string]int64{}
		for _, r := range rep.Runs {
			for k, n := range r.Coverage {
				left[k] += n
			}
		}
		// Each run of both sources has a host name and an executable; the
		// sample's run has W&B's metadata file too (offline runs have none).
		kinds := []string{"host name", "local path (tag wandb.executable)"}
		if src == boocamp {
			kinds = append(kinds, "field host of wandb-metadata.json", "field executable of wandb-metadata.json")
		}
		for _, kind := range kinds {
			if left[kind+by] == 0 {
				t.Errorf("%s: the report does not name %q: %v", src, kind+by, left)
			}
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
						switch {
						case tag.Key == "wandb.host" || tag.Key == "wandb.email" || strings.Contains(tag.Value, "@"),
							tag.Key == "wandb.executable" || tag.Key == "wandb.root" || tag.Key == "wandb.args":
							t.Errorf("%s run %s: personal tag %s", prefix, r.Info.RunName, tag.Key)
						}
					}
					details, _ := r.Tag("wandb.details")
					if !strings.Contains(details, `"os":`) {
						t.Errorf("%s run %s: no os in wandb.details (the platform is not personal): %s", prefix, r.Info.RunName, details)
					}
					for _, f := range []string{"email", "executable", "root", "args"} {
						if strings.Contains(details, `"`+f+`":`) {
							t.Errorf("%s run %s: wandb.details holds %s: %s", prefix, r.Info.RunName, f, details)
						}
					}
					if src != boocamp {
						continue
					}
					// W&B's metadata file is there, without its personal fields.
					md := getArtifact(t, srv.URL, r.Info.RunID, "wandb-metadata.json")
					var fields map[string]any
					if err := json.Unmarshal(md, &fields); err != nil {
						t.Fatalf("%s run %s: wandb-metadata.json: %v", prefix, r.Info.RunName, err)
					}
					for _, f := range []string{"host", "email", "executable", "root", "args"} {
						if _, ok := fields[f]; ok {
							t.Errorf("%s run %s: wandb-metadata.json holds %s", prefix, r.Info.RunName, f)
						}
					}
					if fields["os"] == nil || fields["python"] == nil {
						t.Errorf("%s run %s: wandb-metadata.json lost its other fields: %s", prefix, r.Info.RunName, md)
					}
				}
			}
		}
	}

	// Asked for, the host name arrives.
	kept := "mlflow+" + srv.URL + "?experiment-prefix=" + filepath.Base(dir) + "-kept/"
	run("copy", "--accept-gaps", fixtures, kept, "--keep-personal")
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
			if details, _ := r.Tag("wandb.details"); !strings.Contains(details, `"executable":`) {
				t.Errorf("--keep-personal: run %s has no executable in wandb.details: %s", r.Info.RunName, details)
			}
		}
	}
	if !found {
		t.Error("--keep-personal: no run has wandb.host")
	}
}

// getArtifact downloads a run's file through the server's REST API, as
// its UI does.
func getArtifact(t *testing.T, server, runID, p string) []byte {
	t.Helper()
	resp, err := http.Get(server + "/get-artifact?" + url.Values{"path": {p}, "run_uuid": {runID}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("get-artifact %s of run %s: %d %s %v", p, runID, resp.StatusCode, b, err)
	}
	return b
}
