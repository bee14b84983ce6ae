package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestSyncReportsAndPropagatesDeletes removes a run folder after a sync of
// W&B folders into a real MLflow server: the next sync names the run as
// deleted at the source, once, and keeps its copy active (exit 0); sync
// --propagate-deletes then moves the copy to MLflow's deleted lifecycle
// stage and leaves the other runs active. Into a Parquet archive it writes
// a tombstone: DuckDB (through the table globs and current.sql) and the
// archive source no longer see the run, the snapshot before still lists
// it, its files are kept under history/ until archive prune --keep 1
// removes them with that snapshot, and archive check passes.
func TestSyncReportsAndPropagatesDeletes(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	prefix := fmt.Sprintf("deletes-%d/", testenv.FreePort(t))
	for _, c := range []struct{ name, dst string }{
		{"mlflow", "mlflow+" + srv.URL + "?experiment-prefix=" + prefix},
		{"parquet", "parquet:" + filepath.Join(dir, "archive")},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := filepath.Join(dir, c.name+"-fx")
			if out, err := exec.Command("cp", "-a", "../../testdata/wandb/fixtures", root).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			loc := "wandb:" + filepath.Join(root, "wandb") + "?crashed-after=1ns"
			ledger := filepath.Join(dir, c.name+".db")
			sync := func(wantCode int, extra ...string) (*transfer.Report, string) {
				t.Helper()
				rep := filepath.Join(dir, c.name+"-report.json")
				code, out, errOut := runCLI(t, append([]string{"sync", "--accept-gaps", loc, c.dst, "--state", ledger, "--report", rep, "--accept-gaps"}, extra...)...)
				if code != wantCode {
					t.Fatalf("sync %v: exit %d, want %d\n%s%s", extra, code, wantCode, out, errOut)
				}
				r := readReport(t, rep)
				return &r, out
			}
			first, _ := sync(0)
			var gone transfer.RunResult
			for _, r := range first.Runs {
				if strings.HasSuffix(r.Origin, "/fxa00001") {
					gone = r
				}
			}
			if gone.Origin == "" || gone.Name == "" || first.Totals.Committed < 5 {
				t.Fatalf("first sync: %+v", first.Totals)
			}
			if err := os.RemoveAll(filepath.Join(root, "wandb", "offline-run-20261125_230205-fxa00001")); err != nil {
				t.Fatal(err)
			}
			lifecycle := func() map[string]string {
				t.Helper()
				out := map[string]string{}
				if c.name != "mlflow" {
					return out
				}
				for _, r := range first.Runs {
					got, err := api.GetRun(ctx, r.DestID)
					if err != nil {
						t.Fatal(err)
					}
					out[r.Name] = got.Info.LifecycleStage
				}
				return out
			}
			active := lifecycle()

			rep, out := sync(0)
			want := fmt.Sprintf("[{%s %s %s false }]", gone.Origin, gone.Name, gone.DestID)
			if fmt.Sprint(rep.Deleted) != want || rep.Totals.Deleted != 1 || rep.Totals.DeletesPropagated != 0 || rep.Totals.Unchanged != first.Totals.Committed-1 {
				t.Errorf("sync after the folder was removed: deleted %v, totals %+v; want %s", rep.Deleted, rep.Totals, want)
			}
			if line := fmt.Sprintf("DELETED at the source %s (%s): kept in the destination\n", gone.Origin, gone.Name); !strings.Contains(out, line) {
				t.Errorf("output lacks %q:\n%s", line, out)
			}
			if got := lifecycle(); fmt.Sprint(got) != fmt.Sprint(active) {
				t.Errorf("lifecycle stages %v, want %v (nothing deleted without --propagate-deletes)", got, active)
			}
			if rep, _ := sync(0); len(rep.Deleted) != 0 {
				t.Errorf("the next sync reports %v again", rep.Deleted)
			}

			if c.name == "parquet" {
				arch := strings.TrimPrefix(c.dst, "parquet:")
				before := archiveRuns(t, arch)
				if !slices.Contains(before["runs"], gone.Origin) || !slices.Contains(before["metrics"], gone.Origin) {
					t.Fatalf("before the tombstone the archive lacks %s: %v", gone.Origin, before)
				}
				snapshot := manifestSnapshot(t, arch)
				rep, _ = sync(0, "--propagate-deletes")
				want = fmt.Sprintf("[{%s %s %s true }]", gone.Origin, gone.Name, gone.DestID)
				if fmt.Sprint(rep.Deleted) != want || rep.Totals.DeletesPropagated != 1 {
					t.Errorf("sync --propagate-deletes: deleted %v, totals %+v; want %s", rep.Deleted, rep.Totals, want)
				}
				// DuckDB and the archive source no longer see the run; the
				// snapshot before the tombstone still does.
				after := archiveRuns(t, arch)
				for table, origins := range before {
					want := slices.DeleteFunc(slices.Clone(origins), func(o string) bool { return o == gone.Origin })
					if fmt.Sprint(after[table]) != fmt.Sprint(want) {
						t.Errorf("table %s after the tombstone: %v, want %v", table, after[table], want)
					}
				}
				listed := func(loc string) string {
					code, out, errOut := runCLI(t, "ls", "--no-count", "--json", loc)
					if code != 0 {
						t.Fatalf("ls %s: exit %d %s", loc, code, errOut)
					}
					return out
				}
				if strings.Contains(listed(c.dst), gone.Origin) {
					t.Errorf("the archive source still lists %s", gone.Origin)
				}
				if old := listed(fmt.Sprintf("%s?snapshot=%d", c.dst, snapshot)); !strings.Contains(old, gone.Origin) {
					t.Errorf("snapshot %d no longer lists %s:\n%s", snapshot, gone.Origin, old)
				}
				if code, out, errOut := runCLI(t, "archive", "check", arch); code != 0 {
					t.Errorf("archive check: exit %d\n%s%s", code, out, errOut)
				}
				if rep, _ := sync(0, "--propagate-deletes"); len(rep.Deleted) != 0 || rep.Totals.Committed != 0 {
					t.Errorf("the next sync: deleted %v, totals %+v", rep.Deleted, rep.Totals)
				}
				// The retired run's data is kept (under history/, its key the
				// origin's digest, ARCHIVE.md "Layout") until archive prune
				// drops the snapshots that list it; then it is gone.
				sum := sha256.Sum256([]byte(gone.Origin))
				kept := func() []string {
					files, err := filepath.Glob(filepath.Join(arch, "history", "*", hex.EncodeToString(sum[:])[:20], "*.parquet"))
					if err != nil {
						t.Fatal(err)
					}
					return files
				}
				if len(kept()) == 0 {
					t.Errorf("after the tombstone history/ holds no file of %s: its data must be kept until prune", gone.Origin)
				}
				if code, out, errOut := runCLI(t, "archive", "prune", arch, "--keep", "1"); code != 0 {
					t.Fatalf("archive prune: exit %d\n%s%s", code, out, errOut)
				}
				if files := kept(); len(files) != 0 {
					t.Errorf("after archive prune --keep 1 the retired run's files remain: %v", files)
				}
				if code, _, _ := runCLI(t, "ls", "--no-count", fmt.Sprintf("%s?snapshot=%d", c.dst, snapshot)); code == 0 {
					t.Errorf("snapshot %d still reads after archive prune --keep 1", snapshot)
				}
				if code, out, errOut := runCLI(t, "archive", "check", arch); code != 0 {
					t.Errorf("archive check after prune: exit %d\n%s%s", code, out, errOut)
				}
				return
			}
			rep, out = sync(0, "--propagate-deletes")
			want = fmt.Sprintf("[{%s %s %s true }]", gone.Origin, gone.Name, gone.DestID)
			if fmt.Sprint(rep.Deleted) != want || rep.Totals.DeletesPropagated != 1 {
				t.Errorf("sync --propagate-deletes: deleted %v, totals %+v; want %s", rep.Deleted, rep.Totals, want)
			}
			if !strings.Contains(out, "deleted in the destination\n") {
				t.Errorf("output:\n%s", out)
			}
			active[gone.Name] = mlflowapi.StageDeleted
			if got := lifecycle(); fmt.Sprint(got) != fmt.Sprint(active) {
				t.Errorf("lifecycle stages %v, want %v", got, active)
			}
			if rep, _ := sync(0, "--propagate-deletes"); len(rep.Deleted) != 0 || rep.Totals.Committed != 0 {
				t.Errorf("the next sync: deleted %v, totals %+v", rep.Deleted, rep.Totals)
			}
		})
	}
	if code, _, errOut := runCLI(t, "sync", "--accept-gaps", fixtures, "parquet:"+filepath.Join(dir, "x"), "--no-state", "--propagate-deletes"); code != exitUsage || !strings.Contains(errOut, "--no-state") {
		t.Errorf("--propagate-deletes with --no-state: exit %d %q, want a usage error", code, errOut)
	}
}

// archiveTablesScript prints, per table (runs, metrics), the origins of the
// runs DuckDB sees in an archive through the documented glob and through
// current.sql, which must agree.
const archiveTablesScript = `
import json, os, sys, duckdb
os.chdir(sys.argv[1])
con = duckdb.connect()
con.execute(open("current.sql").read())
out = {}
for table, origin in [("runs", "run"), ("metrics", "run")]:
    a = [r[0] for r in con.execute("select distinct %s from read_parquet('%s/*/*.parquet') order by 1" % (origin, table)).fetchall()]
    b = [r[0] for r in con.execute("select distinct %s from %s order by 1" % (origin, table)).fetchall()]
    assert a == b, (table, a, b)
    out[table] = a
print(json.dumps(out))
`

func archiveRuns(t *testing.T, dir string) map[string][]string {
	t.Helper()
	var out map[string][]string
	if err := json.Unmarshal(runPy(t, "-c", archiveTablesScript, dir), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func manifestSnapshot(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Snapshot int `json:"snapshot"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m.Snapshot
}

// TestSyncSeesRunsDeletedInMLflow deletes a run of a real MLflow server
// source (MLflow's deleted lifecycle stage, as its UI does) after a sync
// into an archive: the next sync names it as deleted at the source, and
// sync --propagate-deletes writes its tombstone.
func TestSyncSeesRunsDeletedInMLflow(t *testing.T) {
	srv := testenv.SharedMLflow(t)
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prefix := fmt.Sprintf("srcdel-%d/", testenv.FreePort(t))
	expID, err := api.CreateExperiment(ctx, prefix+"exp", nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, name := range []string{"kept", "removed"} {
		r, err := api.CreateRun(ctx, mlflowapi.CreateRun{ExperimentID: expID, RunName: name, StartTime: 1_700_000_000_000})
		if err != nil {
			t.Fatal(err)
		}
		if err := api.LogBatch(ctx, mlflowapi.LogBatch{RunID: r.Info.RunID, Metrics: []mlflowapi.Metric{{Key: "loss", Value: 1, Step: 1, Timestamp: 1_700_000_000_001}}}); err != nil {
			t.Fatal(err)
		}
		end := int64(1_700_000_001_000)
		if err := api.UpdateRun(ctx, mlflowapi.UpdateRun{RunID: r.Info.RunID, Status: "FINISHED", EndTime: &end}); err != nil {
			t.Fatal(err)
		}
		ids[name] = r.Info.RunID
	}
	dir := t.TempDir()
	src := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
	dst := "parquet:" + filepath.Join(dir, "archive")
	sync := func(extra ...string) *transfer.Report {
		t.Helper()
		rep := filepath.Join(dir, "report.json")
		if code, out, errOut := runCLI(t, append([]string{"sync", "--accept-gaps", src, dst, "--state", filepath.Join(dir, "ledger.db"), "--report", rep}, extra...)...); code != 0 {
			t.Fatalf("sync %v: exit %d\n%s%s", extra, code, out, errOut)
		}
		r := readReport(t, rep)
		return &r
	}
	first := sync()
	var removed, destID string
	for _, r := range first.Runs {
		if r.Name == "removed" {
			removed, destID = r.Origin, r.DestID
		}
	}
	if first.Totals.Committed != 2 || removed == "" {
		t.Fatalf("first sync: %+v %v", first.Totals, first.Runs)
	}
	if err := api.DeleteRun(ctx, ids["removed"]); err != nil {
		t.Fatal(err)
	}
	rep := sync()
	if want := fmt.Sprintf("[{%s removed %s false }]", removed, destID); fmt.Sprint(rep.Deleted) != want || rep.Totals.Unchanged != 1 {
		t.Errorf("after the run was deleted in MLflow: deleted %v, totals %+v; want %s", rep.Deleted, rep.Totals, want)
	}
	rep = sync("--propagate-deletes")
	if len(rep.Deleted) != 1 || !rep.Deleted[0].Propagated || rep.Deleted[0].Name != "removed" {
		t.Errorf("--propagate-deletes: deleted %v", rep.Deleted)
	}
	if got := archiveRuns(t, filepath.Join(dir, "archive"))["runs"]; len(got) != 1 || got[0] == removed {
		t.Errorf("archive runs after the tombstone: %v, want only the kept run", got)
	}
}
