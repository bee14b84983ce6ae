package main

import (
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// ux11EditPy has the real wandb SDK (offline) make or resume a run and
// edit it the way a user does in code: "make" starts it named "orig-name"
// with notes and tags, logs 5 steps, then renames it, edits its notes and
// tags and finishes; "edit" resumes it, logs 3 more steps with a new key,
// changes a config value and a summary value, renames it again and sets
// its notes and tags again. Usage: DIR RUN_ID make|edit.
var ux11EditPy = wandbOfflinePy("ux11", `
out, rid, mode = sys.argv[1:4]
os.chdir(out)
st = wandb.Settings(x_disable_stats=True)
if mode == "make":
    run = wandb.init(id=rid, name="orig-name", notes="orig notes", tags=["keep", "drop"], dir=".",
                     config={"lr": 0.1}, settings=st)
    for s in range(5):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.summary["best"] = 0.5
    run.name = "renamed-live"
    run.notes = "notes set later"
    run.tags = ("keep", "later")
    run.finish()
else:
    run = wandb.init(id=rid, resume="allow", dir=".", settings=st)
    for s in range(5, 8):
        run.log({"loss": 1.0 / (s + 1), "newkey": float(s)}, step=s)
    run.config.update({"lr": 0.2}, allow_val_change=True)
    run.summary["best"] = 0.9
    run.name = "renamed-resumed"
    run.notes = "resumed notes"
    run.tags = ("keep", "later", "resumed")
    run.finish()
`)

func ux11Wandb(t *testing.T, dir, id, mode string) {
	t.Helper()
	runWandbPy(t, ux11EditPy, dir, id, mode)
}

// ux11ArchiveRun reads one run's name, notes, labels, config and summary
// from an archive with DuckDB through current.sql.
const ux11ArchiveRunPy = `
import json, os, sys, duckdb
os.chdir(sys.argv[1])
con = duckdb.connect()
con.execute(open("current.sql").read())
r = con.execute("select name, notes, labels, config, summary from runs where run = ?", [sys.argv[2]]).fetchone()
n = con.execute("select count(*), count(distinct (key, step)) from metrics where run = ?", [sys.argv[2]]).fetchone()
print(json.dumps({"name": r[0], "notes": r[1], "labels": json.loads(r[2]), "lr": json.loads(r[3])["lr"],
                  "best": json.loads(r[4])["best"], "points": n[0], "distinct": n[1]}))
`

type ux11Seen struct {
	Name     string   `json:"name"`
	Notes    string   `json:"notes"`
	Labels   []string `json:"labels"`
	LR       float64  `json:"lr"`
	Best     float64  `json:"best"`
	Points   int      `json:"points"`
	Distinct int      `json:"distinct"`
}

func ux11FromArchive(t *testing.T, dir, origin string) ux11Seen {
	t.Helper()
	var s ux11Seen
	if err := json.Unmarshal(runPy(t, "-c", ux11ArchiveRunPy, dir, origin), &s); err != nil {
		t.Fatal(err)
	}
	slices.Sort(s.Labels)
	return s
}

// ux11FromMLflow reads the run's name, notes (mlflow.note.content), W&B
// tags (wandb.tag.*), the param lr, the summary metric best and its points
// through MLflow's REST API; it requires one active run in the experiment.
func ux11FromMLflow(t *testing.T, base, exp string) ux11Seen {
	t.Helper()
	resp, err := http.Get(base + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=" + url.QueryEscape(exp))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	err = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if err != nil || e.Experiment.ID == "" {
		t.Fatalf("experiment %s: %v %s", exp, err, resp.Status)
	}
	var runs struct {
		Runs []struct {
			Info struct {
				ID   string `json:"run_id"`
				Name string `json:"run_name"`
			} `json:"info"`
			Data struct {
				Metrics []struct {
					Key   string  `json:"key"`
					Value float64 `json:"value"`
				} `json:"metrics"`
				Params []struct{ Key, Value string } `json:"params"`
				Tags   []struct{ Key, Value string } `json:"tags"`
			} `json:"data"`
		} `json:"runs"`
	}
	mlflowPost(t, base+"/api/2.0/mlflow/runs/search", map[string]any{"experiment_ids": []string{e.Experiment.ID}}, &runs)
	if len(runs.Runs) != 1 {
		t.Fatalf("experiment %s holds %d active runs, want 1", exp, len(runs.Runs))
	}
	r := runs.Runs[0]
	s := ux11Seen{Name: r.Info.Name, Labels: []string{}}
	for _, tag := range r.Data.Tags {
		switch {
		case tag.Key == "mlflow.note.content":
			s.Notes = tag.Value
		case strings.HasPrefix(tag.Key, "wandb.tag."):
			s.Labels = append(s.Labels, strings.TrimPrefix(tag.Key, "wandb.tag."))
		}
	}
	for _, p := range r.Data.Params {
		if p.Key == "lr" {
			if err := json.Unmarshal([]byte(p.Value), &s.LR); err != nil {
				t.Fatalf("param lr %q: %v", p.Value, err)
			}
		}
	}
	for _, m := range r.Data.Metrics {
		if m.Key == "best" {
			s.Best = m.Value
		}
	}
	for _, key := range []string{"loss", "newkey"} {
		var h struct {
			Metrics []struct {
				Step int64 `json:"step"`
			} `json:"metrics"`
		}
		resp, err := http.Get(base + "/api/2.0/mlflow/metrics/get-history?run_id=" + r.Info.ID + "&metric_key=" + key)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		steps := map[int64]bool{}
		for _, m := range h.Metrics {
			steps[m.Step] = true
		}
		s.Points += len(h.Metrics)
		s.Distinct += len(steps)
	}
	slices.Sort(s.Labels)
	return s
}

// TestSyncCarriesWandbRunEdits (ux11): a W&B run renamed, its notes and tags
// edited in code after wandb.init (run.name = ..., as users do once they
// know what the run is), arrives so in an archive and in MLflow; after the
// run is resumed with more steps, a new key, a config and a summary value
// changed and a new name, notes and tags, a sync carries every change, and
// check passes after each sync. The SDK writes those edits as later run
// records of the same log; the source took only each log's first run
// record, so every copy kept "orig-name" and the first notes and tags
// (and check, reading the folder alike, passed).
//
// A run record that sets tags replaces the earlier ones, within a segment
// and across resumed segments (sources/wandbdir doc), so "drop", set in the
// first segment's first record, is gone after its later record replaced it.
func TestSyncCarriesWandbRunEdits(t *testing.T) {
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	dir := t.TempDir()
	ux11Wandb(t, dir, "ux11edit", "make")
	src := "wandb:" + filepath.Join(dir, "wandb")
	const origin = "wandb:ent/ux11/ux11edit"
	arch := filepath.Join(t.TempDir(), "archive")
	dsts := []struct{ name, loc, ledger string }{
		{"archive", "parquet:" + arch, filepath.Join(t.TempDir(), "a.db")},
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + p, filepath.Join(t.TempDir(), "m.db")},
	}
	seen := func(name string) ux11Seen {
		if name == "archive" {
			return ux11FromArchive(t, arch, origin)
		}
		return ux11FromMLflow(t, srv.URL, p+"ent/ux11")
	}
	want := ux11Seen{Name: "renamed-live", Notes: "notes set later", Labels: []string{"keep", "later"}, LR: 0.1, Best: 0.5, Points: 5, Distinct: 5}
	for _, d := range dsts {
		wantCounts(t, d.name+": first sync", syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger), 1, 0)
		if got := seen(d.name); !equalSeen(got, want) {
			t.Errorf("%s after the first sync: %+v, want %+v", d.name, got, want)
		}
		wantCheck(t, d.name+": after the first sync", 0, src, d.loc)
	}

	ux11Wandb(t, dir, "ux11edit", "edit")
	want = ux11Seen{Name: "renamed-resumed", Notes: "resumed notes", Labels: []string{"keep", "later", "resumed"}, LR: 0.2, Best: 0.9, Points: 11, Distinct: 11}
	for _, d := range dsts {
		wantCheck(t, d.name+": after the run was resumed and edited", exitDifferences, src, d.loc)
		rep := syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger)
		wantCounts(t, d.name+": sync after the edits", rep, 1, 0)
		if got := seen(d.name); !equalSeen(got, want) {
			t.Errorf("%s after the sync of the edits: %+v, want %+v", d.name, got, want)
		}
		wantCheck(t, d.name+": after the sync of the edits", 0, src, d.loc)
		// The light header (f2): the unchanged run's report entry and ls
		// name it by its later name.
		rep = syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger)
		wantCounts(t, d.name+": sync without change", rep, 0, 1)
		if len(rep.Runs) != 1 || rep.Runs[0].Name != want.Name {
			t.Errorf("%s: sync without change reports %+v, want the run named %q", d.name, rep.Runs, want.Name)
		}
	}
	if code, out, _ := runCLI(t, "ls", src); code != 0 || !strings.Contains(out, want.Name) || strings.Contains(out, "orig-name") {
		t.Errorf("ls: exit %d, want the run named %q (not orig-name):\n%s", code, want.Name, out)
	}
}

func equalSeen(a, b ux11Seen) bool {
	return a.Name == b.Name && a.Notes == b.Notes && slices.Equal(a.Labels, b.Labels) && a.LR == b.LR &&
		a.Best == b.Best && a.Points == b.Points && a.Distinct == b.Distinct
}
