package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// ux11FilesPy edits the files of a native MLflow run with MLflow's own
// client, as a user does: "make EXP" logs a FINISHED run with same.txt and
// gone.txt and prints its id; "delete RUN" deletes gone.txt through the
// server's artifact proxy (DELETE, as MLflow's artifact repository does);
// "overwrite RUN" logs same.txt again with other bytes of the same size;
// "rename RUN" renames the run (runs/update, as MLflow's UI does).
// Usage: URL make|delete|overwrite|rename EXP|RUN.
const ux11FilesPy = mlflowFilesPy + `
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
import mlflow
mlflow.set_tracking_uri(url)
if mode == "make":
    e = c.create_experiment(arg)
    r = c.create_run(e, run_name="files")
    c.log_metric(r.info.run_id, "loss", 0.5, step=0, timestamp=1700000000000)
    put(r.info.run_id, "same.txt", "aaaa\n")
    put(r.info.run_id, "gone.txt", "bye\n")
    c.set_terminated(r.info.run_id, "FINISHED")
    print(r.info.run_id, end="")
elif mode == "delete":
    get_artifact_repository(c.get_run(arg).info.artifact_uri).delete_artifacts("gone.txt")
    assert [f.path for f in c.list_artifacts(arg)] == ["same.txt"], c.list_artifacts(arg)
elif mode == "rename":
    c.update_run(arg, name="renamed")
else:
    put(arg, "same.txt", "bbbb\n")
`

// TestSyncMLflowSourceFileChanges (ux11): files of a FINISHED run of a real
// MLflow server edited after a sync into an archive and into MLflow.
//
// A file deleted at the source is deleted in the copy, and the closing
// line says so: it said "copied 1 run (0 points, 0 files, 0 B; 1 run
// appended to: 1 point held already, not sent again)", which reads as
// nothing done (only -v and the report's deleted_files told).
//
// A file overwritten with bytes of the same size is not seen by sync:
// MLflow's artifact listing gives paths and sizes only (no time, no
// digest), and MLflow records nothing on the run when a file is logged.
// The sync says the run is unchanged (documented in README.md and
// docs/SYNC.md), check names the file (exit 4), and sync --force copies it.
//
// A run renamed at the source is appended to in place: into MLflow it
// was written whole under a new run id, its former copy deleted
// ("cannot append: its name changed"), though MLflow renames a run
// (runs/update run_name).
func TestSyncMLflowSourceFileChanges(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv, p := testenv.SharedMLflow(t), uniquePrefix(t)
	py := mlflowFilesScripts(t, ux11FilesPy)
	run, src := mlflowFilesRun(t, srv.URL, p, py)
	dsts := []struct{ name, loc, ledger string }{
		{"archive", "parquet:" + filepath.Join(t.TempDir(), "archive"), filepath.Join(t.TempDir(), "a.db")},
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + p + "dst/", filepath.Join(t.TempDir(), "m.db")},
	}
	destID := map[string]string{}
	for _, d := range dsts {
		rep := syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger)
		wantCounts(t, d.name+": first sync", rep, 1, 0)
		if len(rep.Runs) == 1 {
			destID[d.name] = rep.Runs[0].DestID
		}
	}

	py(srv.URL, "delete", run)
	for _, d := range dsts {
		wantCheck(t, d.name+": after a file was deleted at the source", exitDifferences, src, d.loc)
		report := filepath.Join(t.TempDir(), "report.json")
		code, out, errOut := runCLI(t, "sync", src, d.loc, "--state", d.ledger, "--report", report)
		rep := readReport(t, report)
		if code != 0 || len(rep.Runs) != 1 || !rep.Runs[0].Appended || rep.Runs[0].DeletedFiles != 1 || rep.Runs[0].KeptFiles != 1 {
			t.Errorf("%s: sync after a file was deleted: exit %d, runs %+v\n%s", d.name, code, rep.Runs, errOut)
		}
		const want = "copied 1 run (0 points, 0 files, 0 B; 1 run appended to: 1 point held already, not sent again, 1 file deleted (gone from the source)); 0 unchanged, 0 failed"
		if !strings.Contains(out, want) {
			t.Errorf("%s: closing line lacks %q:\n%s", d.name, want, out)
		}
		wantCheck(t, d.name+": after the sync of the deletion", 0, src, d.loc)
	}

	py(srv.URL, "overwrite", run)
	for _, d := range dsts {
		code, out, _ := runCLI(t, "check", src, d.loc)
		if code != exitDifferences || !strings.Contains(out, "file same.txt: source 5 bytes") {
			t.Errorf("%s: check after same.txt was overwritten with the same size: exit %d, want %d naming same.txt\n%s", d.name, code, exitDifferences, out)
		}
		wantCounts(t, d.name+": sync does not see a same-size overwrite", syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger), 0, 1)
		rep := syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger, "--force")
		wantCounts(t, d.name+": sync --force", rep, 1, 0)
		if len(rep.Runs) != 1 || !strings.Contains(rep.Runs[0].Reason, "same.txt") {
			t.Errorf("%s: sync --force: want the reason to name same.txt, got %+v", d.name, rep.Runs)
		} else {
			destID[d.name] = rep.Runs[0].DestID
		}
		wantCheck(t, d.name+": after sync --force", 0, src, d.loc)
	}

	// A rename is appended in place: into MLflow the same run id (it was
	// written whole under a new id, the former copy deleted).
	_, deletedBefore := mlflowRunsUnder(t, srv.URL, p+"dst/")
	py(srv.URL, "rename", run)
	for _, d := range dsts {
		rep := syncReport(t, 0, "sync", src, d.loc, "--state", d.ledger)
		wantCounts(t, d.name+": sync after a rename", rep, 1, 0)
		if len(rep.Runs) != 1 || !rep.Runs[0].Appended || rep.Runs[0].DestID != destID[d.name] || rep.Runs[0].Name != "renamed" {
			t.Errorf("%s: sync after a rename: %+v, want the run appended to under its first destination id %s", d.name, rep.Runs, destID[d.name])
		}
		wantCheck(t, d.name+": after the sync of the rename", 0, src, d.loc)
	}
	if active, deleted := mlflowRunsUnder(t, srv.URL, p+"dst/"); active != 1 || deleted != deletedBefore {
		t.Errorf("MLflow holds %d active and %d deleted runs under %sdst/ after the rename, want 1 and %d", active, deleted, p, deletedBefore)
	}
}
