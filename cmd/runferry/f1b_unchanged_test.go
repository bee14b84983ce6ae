package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowtest"
)

// TestMovedFolderSyncWritesNoMLflowBookkeeping (f1b): the W&B fixtures
// synced into a real MLflow server, then copied to another path (new
// modification times, so new fingerprints; the same origins) and synced
// from there with a new ledger: every run is read again and appended to
// with nothing new, so nothing is written: the report says all 6 are
// unchanged, and MLflow's REST API shows each run exactly as before: every
// tag and its value (runferry's fingerprint, mark and complete tags
// included; no appending tag set), every artifact's path and size (nothing
// under runferry/append-base/), and the bodies of runferry/run.json and
// runferry/coverage.json. (Before: "copied 6 runs (0 points, 0 files, 0 B;
// 6 runs appended to: ...)", each run's run.json, coverage.json, tags and
// fingerprint rewritten and its copy kept under runferry/append-base/.)
// A real change is still written: a file added to one run is appended to
// that run alone, and `check` passes.
func TestMovedFolderSyncWritesNoMLflowBookkeeping(t *testing.T) {
	m, move := mlflowMovableFixtures(t, "f1b")
	held := f1bBookkeeping(t, m.URL, m.Prefix)
	if len(held) != 6 {
		t.Fatalf("after the first sync the server holds %d runs, want 6", len(held))
	}
	moved := move()
	src, dst, ledger2 := "wandb:"+moved+"?crashed-after=1ns", m.Dst, m.Ledger2
	code, out, errOut := runCLI(t, "sync", src, dst, "--state", ledger2, "--accept-gaps")
	t.Logf("sync from the moved folder:\n%s%s", out, errOut)
	if want := "copied 0 runs (0 points, 0 files, 0 B); 6 unchanged"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("sync from the moved folder with a new ledger: exit %d, want 0 and %q", code, want)
	}
	got := f1bBookkeeping(t, m.URL, m.Prefix)
	for id, was := range held {
		if got[id] != was {
			t.Errorf("run %s changed in MLflow by the sync from the moved folder:\n%s", id, f1Diff([]string{was}, []string{got[id]}))
		}
	}
	if len(got) != len(held) {
		t.Errorf("the server holds %d runs after the sync from the moved folder, want %d", len(got), len(held))
	}

	// A real change is still written: a file added to one run.
	runDir, err := filepath.Glob(filepath.Join(moved, "wandb", "offline-run-*-fxa00001", "files"))
	if err != nil || len(runDir) != 1 {
		t.Fatalf("run folder of fxa00001: %v %v", runDir, err)
	}
	if err := os.WriteFile(filepath.Join(runDir[0], "f1b-added.txt"), []byte("added after the move\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "sync", src, dst, "--state", ledger2, "--accept-gaps")
	if code != 0 || !strings.Contains(out, "copied 1 run (0 points, 1 file, 21 B") || !strings.Contains(out, "5 unchanged") {
		t.Errorf("sync after a file was added: exit %d, want the one run appended to\n%s%s", code, out, errOut)
	}
	got = f1bBookkeeping(t, m.URL, m.Prefix)
	var changed []string
	for id, was := range held {
		if got[id] != was {
			changed = append(changed, id)
			if !strings.Contains(got[id], "\n  file f1b-added.txt 21\n") || !strings.Contains(got[id], "\n  tag mlflow.runferry.complete=\"true\"\n") {
				t.Errorf("run %s after the file was added: want it to hold f1b-added.txt, complete:\n%s", id, got[id])
			}
		}
	}
	if len(changed) != 1 || len(got) != len(held) {
		t.Errorf("after the file was added %d runs changed (%v) of %d, want 1 of %d", len(changed), changed, len(got), len(held))
	}
	if code, out, errOut := runCLI(t, "check", src, dst); code != 0 || !strings.Contains(out, " 0 differences") {
		t.Errorf("check: exit %d\n%s%s", code, out, errOut)
	}
}

// f1bBookkeeping returns, by MLflow run id, for every run (active or
// deleted) in the experiments named with prefix: its name, status, times,
// every tag with its value, every artifact's path and size, and the bodies
// of runferry/run.json and runferry/coverage.json.
func f1bBookkeeping(t *testing.T, base, prefix string) map[string]string {
	t.Helper()
	api := mlflowtest.Client(t, base)
	ctx := context.Background()
	out := map[string]string{}
	for e, r := range mlflowtest.Runs(t, api, prefix, mlflowapi.ViewAll) {
		var b strings.Builder
		end := int64(-1)
		if r.Info.EndTime != nil {
			end = *r.Info.EndTime
		}
		fmt.Fprintf(&b, "%s run %q %s %s start %d end %d\n", e.Name, r.Info.RunName, r.Info.Status, r.Info.LifecycleStage, r.Info.StartTime, end)
		var lines []string
		for _, tag := range r.Data.Tags {
			lines = append(lines, fmt.Sprintf("  tag %s=%q", tag.Key, tag.Value))
		}
		var walk func(dir string)
		walk = func(dir string) {
			files, err := api.ListArtifactDir(ctx, r.Info.RunID, r.Info.ArtifactURI, dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if f.IsDir {
					walk(f.Path)
					continue
				}
				size := int64(-1)
				if f.FileSize != nil {
					size = *f.FileSize
				}
				lines = append(lines, fmt.Sprintf("  file %s %d", f.Path, size))
			}
		}
		walk("")
		slices.Sort(lines)
		b.WriteString(strings.Join(lines, "\n"))
		for _, rel := range []string{"runferry/run.json", "runferry/coverage.json"} {
			body, err := api.OpenArtifact(ctx, r.Info.RunID, r.Info.ArtifactURI, rel)
			if err != nil {
				t.Fatalf("run %s: %s: %v", r.Info.RunID, rel, err)
			}
			data, err := io.ReadAll(body)
			body.Close()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "\n  %s:\n%s", rel, data)
		}
		out[r.Info.RunID] = b.String()
	}
	return out
}
