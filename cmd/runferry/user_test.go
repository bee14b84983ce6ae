package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/mlflowtest"
	"github.com/runferry/runferry/internal/testenv"
)

// mlflowUsers reads, through MLflow's REST API, each run of the
// experiments named with prefix: its name, its user_id ("Created by") and
// its mlflow.user tag, and the run's whole JSON. A run written again
// replaces its former copy, which is deleted (restorable): only active runs
// are read.
func mlflowUsers(t *testing.T, api *mlflowapi.Client, prefix string) (users map[string][2]string, raw map[string]string) {
	t.Helper()
	users, raw = map[string][2]string{}, map[string]string{}
	for _, r := range mlflowtest.Runs(t, api, prefix, mlflowapi.ViewActive) {
		tag, _ := r.Tag("mlflow.user")
		users[r.Info.RunName] = [2]string{r.Info.UserID, tag}
		b, _ := json.Marshal(r)
		raw[r.Info.RunName] = string(b)
	}
	return users, raw
}

// TestRunUserKeptInMLflow: the run's user is attribution. A W&B folder's
// runs copied into MLflow show the user their run records name
// (fixture-user, WANDB_USERNAME) as "Created by" (user_id and
// mlflow.user), not the machine's login name one run's
// wandb-metadata.json holds (os-login-7, which appears nowhere in MLflow);
// an MLflow -> MLflow copy keeps mlflow.user, of those runs and of a
// native MLflow run (user alice); `check` passes on both.
// With --drop-user the user is gone, and counted for every run in the
// report's coverage; --drop-user with --keep-personal, or into an archive,
// is a usage error.
func TestRunUserKeptInMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "wandb-tree")
	if err := os.CopyFS(tree, os.DirFS("../../testdata/wandb/fixtures")); err != nil {
		t.Fatal(err)
	}
	runDirs, _ := filepath.Glob(filepath.Join(tree, "wandb", "offline-run-*-fxa00001"))
	if len(runDirs) != 1 {
		t.Fatalf("run folders of fxa00001: %q", runDirs)
	}
	md := `{"os": "Linux", "username": "os-login-7", "host": "fixture-host"}`
	if err := os.WriteFile(filepath.Join(runDirs[0], "files", "wandb-metadata.json"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	src := "wandb:" + tree + "?crashed-after=1ns"
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Base(dir)
	first := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "-user1/"
	second := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "-user2/"
	dropped := "mlflow+" + srv.URL + "?experiment-prefix=" + p + "-user3/"
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, args...)
		if code != want {
			t.Fatalf("%q: exit %d, want %d\n%s\n%s", args, code, want, out, errOut)
		}
		return out + errOut
	}
	run(0, "copy", "--accept-gaps", "--no-state", src, first)
	run(0, "check", src, first)
	run(0, "copy", "--accept-gaps", "--no-state", first, second)
	run(0, "check", src, second)

	names := []string{"run-a-everything", "run-b-resumed", "run-c-crashed", "run-d-custom-x-axis", "run-e-failed", "run-f-empty"}
	for _, prefix := range []string{p + "-user1/", p + "-user2/"} {
		users, raw := mlflowUsers(t, api, prefix)
		var got []string
		for name, u := range users {
			got = append(got, name)
			if u != [2]string{"fixture-user", "fixture-user"} {
				t.Errorf("%s run %s: user_id %q, mlflow.user %q, want fixture-user", prefix, name, u[0], u[1])
			}
			if strings.Contains(raw[name], "os-login-7") {
				t.Errorf("%s run %s holds the login name: %s", prefix, name, raw[name])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, names) {
			t.Errorf("%s runs %q, want %q", prefix, got, names)
		}
	}

	// A native MLflow run (no runferry origin) keeps its user too.
	ctx := context.Background()
	native := p + "-native"
	expID, err := api.CreateExperiment(ctx, native, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: "native-run", StartTime: 1700000000000, UserID: "alice",
		Tags: []mlflowapi.Tag{{Key: "mlflow.user", Value: "alice"}}}); err != nil {
		t.Fatal(err)
	}
	run(0, "copy", "--no-state", "--include", native, "mlflow+"+srv.URL, "mlflow+"+srv.URL+"?experiment-prefix="+p+"-user4/")
	if users, _ := mlflowUsers(t, api, p+"-user4/"); len(users) != 1 || users["native-run"] != [2]string{"alice", "alice"} {
		t.Errorf("native MLflow run copied: users %v, want native-run by alice", users)
	}

	report := filepath.Join(dir, "drop.json")
	run(0, "copy", "--accept-gaps", "--no-state", "--drop-user", "--report", report, first, dropped)
	run(0, "check", src, dropped)
	users, _ := mlflowUsers(t, api, p+"-user3/")
	if len(users) != len(names) {
		t.Errorf("--drop-user: %d runs, want %d", len(users), len(names))
	}
	for name, u := range users {
		if u != [2]string{} {
			t.Errorf("--drop-user: run %s: user_id %q, mlflow.user %q, want none", name, u[0], u[1])
		}
	}
	rep := readReport(t, report)
	const kind = "user name left out by drop-personal=host,email,executable,root,args,username,home (not copied)"
	n := 0
	for _, r := range rep.Runs {
		if r.Coverage[kind] != 1 {
			t.Errorf("--drop-user: run %s: coverage %v", r.Name, r.Coverage)
		}
		n++
	}
	if n != len(names) || rep.Options["drop_user"] != "true" || rep.Options["transform"] != "drop-personal=host,email,executable,root,args,username,home" {
		t.Errorf("--drop-user: %d runs, options %v", n, rep.Options)
	}

	out := run(2, "copy", "--no-state", "--drop-user", "--keep-personal", first, dropped)
	if !strings.Contains(out, "--drop-user and --keep-personal contradict each other") {
		t.Errorf("--drop-user --keep-personal: %s", out)
	}
	out = run(2, "copy", "--no-state", "--drop-user", first, "parquet:"+filepath.Join(dir, "archive"))
	if !strings.Contains(out, "--drop-user leaves the run's user out") {
		t.Errorf("--drop-user into an archive: %s", out)
	}
}

// TestSyncAfterFormerDefault: runs copied into MLflow by a version whose
// default dropped the run's user recorded
// drop-personal=host,email,executable,root,args,username,home, the value
// --drop-user records now. A sync with today's default writes again the
// runs that have a user (they gain it) and leaves the runs that have none
// unchanged (the legacy folder's run: its only name is
// wandb-metadata.json's login, left out either way); `check` passes.
func TestSyncAfterFormerDefault(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, src string
		outcome   transfer.Outcome
		user      string
	}{
		{"fixtures", fixtures, transfer.Committed, "fixture-user"},
		{"legacy", "wandb:../../sources/wandbdir/testdata/legacy", transfer.Unchanged, ""},
	} {
		prefix := filepath.Base(dir) + "-" + c.name + "/"
		dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
		state := filepath.Join(dir, c.name+".db")
		report := filepath.Join(dir, c.name+".json")
		for _, args := range [][]string{
			{"copy", "--accept-gaps", "--state", state, "--drop-user", c.src, dst},
			{"copy", "--accept-gaps", "--state", state, "--report", report, c.src, dst},
			{"check", c.src, dst},
		} {
			if code, out, errOut := runCLI(t, args...); code != 0 {
				t.Fatalf("%s: %q: exit %d\n%s\n%s", c.name, args, code, out, errOut)
			}
		}
		rep := readReport(t, report)
		if len(rep.Runs) == 0 {
			t.Fatalf("%s: no runs in the sync's report", c.name)
		}
		for _, r := range rep.Runs {
			if r.Outcome != c.outcome {
				t.Errorf("%s: run %s: %s (%s), want %s", c.name, r.Name, r.Outcome, r.Reason, c.outcome)
			}
		}
		users, _ := mlflowUsers(t, api, prefix)
		if len(users) != len(rep.Runs) {
			t.Errorf("%s: %d runs in MLflow, %d in the report", c.name, len(users), len(rep.Runs))
		}
		for name, u := range users {
			if u != [2]string{c.user, c.user} {
				t.Errorf("%s: run %s: user_id %q, mlflow.user %q, want %q", c.name, name, u[0], u[1], c.user)
			}
		}
	}
}
