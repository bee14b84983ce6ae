package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestMLflowRenameIsAChange: a run runferry copied into a real MLflow
// server, then renamed there (runs/update, as the UI does) and given a new
// note, arrives in the nightly archive as a change of the run: the next
// sync copies it with exit 0, names no damage, the archive holds the new
// name and no damage note, and check finds MLflow and the archive equal.
// Before, the MLflow source noted the rename in the run's Damage ("run
// name is ... in MLflow but ... in runferry/run.json"): the sync exited 3
// and the archive kept the note for every later restore.
func TestMLflowRenameIsAChange(t *testing.T) {
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	mlf := "mlflow+" + srv.URL + "?experiment-prefix=" + p
	first := syncReport(t, 0, "copy", "wandb:"+testenv.Samples(t, "wandb/BoocampMonster__korean-relation-extraction/wandb"), mlf, "--no-state")
	if len(first.Runs) == 0 || first.Runs[0].DestID == "" {
		t.Fatalf("copy into MLflow: %+v", first.Runs)
	}
	renamed := first.Runs[0]
	archive := "parquet:" + filepath.Join(t.TempDir(), "archive")
	state := "--state=" + filepath.Join(t.TempDir(), "ledger.db")
	night1 := syncReport(t, 0, "sync", mlf, archive, state)
	wantCounts(t, "first night", night1, len(first.Runs), 0)

	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: renamed.DestID, RunName: "renamed-night2"}); err != nil {
		t.Fatal(err)
	}
	if err := api.SetTag(ctx, renamed.DestID, mlflowapi.TagNote, "edited in the UI"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "sync", mlf, archive, state, "-v")
	if code != 0 || strings.Contains(out, "damaged source") || !strings.Contains(out, "copied 1 run ") {
		t.Errorf("sync after a rename: exit %d, want 0 with the run copied and no damage named\n%s%s", code, out, errOut)
	}
	// What the archive now holds of the run: the new name, no damage.
	code, out, errOut = runCLI(t, "check", mlf, archive)
	if code != 0 || strings.Contains(out, "damaged source") {
		t.Errorf("check MLflow vs archive after the rename: exit %d, want 0 and no damage\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "ls", archive, "--runs")
	if code != 0 || !strings.Contains(out, "renamed-night2") {
		t.Errorf("the archive lacks the new name (exit %d)\n%s%s", code, out, errOut)
	}
}

// TestInheritedDamageIsNotNewDamage: a W&B run read from a truncated
// .wandb file is damage of that source: its copy into MLflow exits 3 and
// names it. The legs after it (MLflow -> archive, a second night, archive
// -> SQLite, archive -> another MLflow experiment, SQLite -> archive) copy
// intact data that carries the note: each exits 0 and names the note as
// an inherited one, counted in the closing line and the report, never as
// "damaged source"; the note stays in every copy. check of the archive
// against the SQLite copy names it as inherited as well.
func TestInheritedDamageIsNotNewDamage(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	const origin = "wandb:adeeplearners/kwt-improvements/3ojed7lz"
	const note = "run-20220429_201936-3ojed7lz/run-3ojed7lz.wandb: offset 335628: "
	mlf := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "a/"
	code, out, errOut := runCLI(t, "copy", "wandb:"+testenv.Samples(t, "wandb/ARM-software__keyword-transformer/wandb"), mlf, "--no-state")
	if code != exitRunsFailed || !strings.Contains(out, "damaged source "+origin+": "+note) {
		t.Fatalf("copy of the damaged W&B run: exit %d, want %d naming the damage\n%s%s", code, exitRunsFailed, out, errOut)
	}

	dir := t.TempDir()
	archive := "parquet:" + filepath.Join(dir, "archive")
	state := "--state=" + filepath.Join(dir, "ledger.db")
	db := "sqlite:" + filepath.Join(dir, "restore.db")
	for _, leg := range []struct {
		name, src, dst string
		extra          []string
		copied         string
	}{
		{"MLflow -> archive", mlf, archive, []string{state}, "copied 2 runs "},
		{"MLflow -> archive, second night", mlf, archive, []string{state}, "copied 0 runs "},
		{"archive -> SQLite", archive, db, []string{"--no-state"}, "copied 2 runs "},
		{"archive -> MLflow", archive, "mlflow+" + srv.URL + "?experiment-prefix=" + p + "b/", []string{"--no-state"}, "copied 2 runs "},
		{"SQLite -> archive", db, "parquet:" + filepath.Join(dir, "archive2"), []string{"--no-state"}, "copied 2 runs "},
	} {
		path := filepath.Join(t.TempDir(), "report.json")
		code, out, errOut := runCLI(t, append([]string{"sync", leg.src, leg.dst, "-v", "--report", path}, leg.extra...)...)
		var rep transfer.Report
		if err := readJSON(path, &rep); err != nil {
			t.Fatalf("%s: exit %d: %v\n%s%s", leg.name, code, err, out, errOut)
		}
		last := lastLine(out)
		if code != 0 || strings.Contains(out, "damaged source") ||
			!strings.Contains(out, "inherited damage note "+origin+": "+note) ||
			!strings.Contains(last, ", 1 run with inherited damage notes") || !strings.Contains(last, leg.copied) {
			t.Errorf("%s: exit %d, want 0, the note named as inherited and counted, not as damage\n%s%s", leg.name, code, out, errOut)
		}
		if b, err := matchReportSchema(t, path); err != nil {
			t.Errorf("%s: the report does not match docs/report.schema.json: %v\n%s", leg.name, err, b)
		}
		if rep.Totals.Damaged != 0 || rep.Totals.InheritedDamage != 1 {
			t.Errorf("%s: report counts %d damaged, %d with inherited notes; want 0 and 1", leg.name, rep.Totals.Damaged, rep.Totals.InheritedDamage)
		}
		for _, r := range rep.Runs {
			if r.Origin == origin && (len(r.Damage) != 0 || len(r.InheritedDamage) == 0 || !strings.HasPrefix(r.InheritedDamage[0], note)) {
				t.Errorf("%s: run %s: damage %q, inherited %q", leg.name, r.Origin, r.Damage, r.InheritedDamage)
			}
		}
	}
	// check names the carried note as inherited too, not as damage of the
	// archive it read.
	code, out, errOut = runCLI(t, "check", archive, db)
	if code != 0 || strings.Contains(out, "damaged source") || !strings.Contains(out, "inherited damage note "+origin+": "+note) ||
		!strings.Contains(lastLine(out), ", 1 run with inherited damage notes") {
		t.Errorf("check archive vs SQLite: exit %d, want 0 naming the note as inherited\n%s%s", code, out, errOut)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
