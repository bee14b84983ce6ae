package main

import (
	"path/filepath"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// f1bTagsPy has the real wandb SDK (offline) make a run tagged a and b
// ("make": 3 steps, config lr, summary best), or resume it ("resume": 2
// more steps) and set its tags to a alone (run.tags = ("a",)), as a user
// removes a tag in a resumed run. Usage: DIR RUN_ID make|resume.
var f1bTagsPy = wandbOfflinePy("f1b", `
out, rid, mode = sys.argv[1:4]
os.chdir(out)
st = wandb.Settings(x_disable_stats=True)
if mode == "make":
    run = wandb.init(id=rid, name="tagged", tags=["a", "b"], dir=".", config={"lr": 0.1}, settings=st)
    for s in range(3):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.summary["best"] = 0.5
    run.finish()
else:
    run = wandb.init(id=rid, resume="allow", dir=".", settings=st)
    for s in range(3, 5):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
    run.tags = ("a",)
    run.finish()
`)

// TestResumedRunRemovesATag (f1b): a W&B run tagged a and b, resumed with
// run.tags = ("a",), holds only a in an archive (DuckDB) and in MLflow
// (its REST API: the tag wandb.tag.b deleted by the append, under the same
// run id) after a sync, as W&B shows it after `wandb sync`: the SDK's run
// record carries the run's tags whole and W&B's server replaces the tags
// by it. check finds the difference before the sync and none after.
// (Before: labels were the union of the segments' tags, and b stayed.)
func TestResumedRunRemovesATag(t *testing.T) {
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	dir := t.TempDir()
	sdk := func(mode string) { t.Helper(); runWandbPy(t, f1bTagsPy, dir, "f1btags", mode) }
	sdk("make")
	src := "wandb:" + filepath.Join(dir, "wandb")
	const origin = "wandb:ent/f1b/f1btags"
	arch := filepath.Join(t.TempDir(), "archive")
	dsts := []struct{ name, loc, ledger string }{
		{"archive", "parquet:" + arch, filepath.Join(t.TempDir(), "a.db")},
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + p, filepath.Join(t.TempDir(), "m.db")},
	}
	seen := func(name string) ux11Seen {
		if name == "archive" {
			return ux11FromArchive(t, arch, origin)
		}
		return ux11FromMLflow(t, srv.URL, p+"ent/f1b")
	}
	want := ux11Seen{Name: "tagged", Labels: []string{"a", "b"}, LR: 0.1, Best: 0.5, Points: 3, Distinct: 3}
	ids := map[string]string{}
	for _, d := range dsts {
		rep := syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger)
		wantCounts(t, d.name+": first sync", rep, 1, 0)
		if len(rep.Runs) == 1 {
			ids[d.name] = rep.Runs[0].DestID
		}
		if got := seen(d.name); !equalSeen(got, want) {
			t.Errorf("%s after the first sync: %+v, want %+v", d.name, got, want)
		}
	}

	sdk("resume")
	want = ux11Seen{Name: "tagged", Labels: []string{"a"}, LR: 0.1, Best: 0.5, Points: 5, Distinct: 5}
	for _, d := range dsts {
		wantCheck(t, d.name+": after the run was resumed", exitDifferences, src, d.loc)
		rep := syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger)
		wantCounts(t, d.name+": sync after the resume", rep, 1, 0)
		if len(rep.Runs) != 1 || !rep.Runs[0].Appended || rep.Runs[0].DestID != ids[d.name] {
			t.Errorf("%s: sync after the resume: %+v; want the run appended to %s", d.name, rep.Runs, ids[d.name])
		}
		if got := seen(d.name); !equalSeen(got, want) {
			t.Errorf("%s after the sync of the resumed run: %+v, want %+v", d.name, got, want)
		}
		wantCheck(t, d.name+": after the sync", 0, src, d.loc)
	}
}
