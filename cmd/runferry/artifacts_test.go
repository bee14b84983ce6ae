package main

import (
	"bytes"
	"cmp"
	"crypto/md5"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
	"github.com/runferry/runferry/schema"
)

// TestWandbArtifactsRoundTrip: the W&B Artifacts of a run made by the real
// SDK offline travel W&B folder → Parquet archive → real MLflow server.
// The missing entry is named as a file not copied at the first copy; duckdb finds every
// carried entry and manifest in the archive's artifacts table, MLflow's own
// client downloads the same files (content and manifests) from the server,
// and check passes against both.
func TestWandbArtifactsRoundTrip(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	dir := testenv.WandbArtifactRun(t)
	srv := testenv.SharedMLflow(t)
	py := testenv.Python(t)
	src := "wandb:" + filepath.Join(dir, "wandb") + "?artifact-cache=" + filepath.Join(dir, "cache", "artifacts")
	archive := filepath.Join(t.TempDir(), "archive")
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	// An offline run names no entity: its origin names the folder it lies in.
	root, err := filepath.EvalSymlinks(filepath.Join(dir, "wandb"))
	if err != nil {
		t.Fatal(err)
	}
	origin := "wandb:" + root + "#runferry-artifacts/artprod1"

	code, out, errOut := runCLI(t, "copy", src, "parquet:"+archive, "--state", ledger)
	if code != exitRunsFailed || !strings.Contains(errOut+out, "file not copied "+origin+": wandb-artifacts/lost-data/") || !strings.Contains(errOut+out, "lost.txt: content not found") {
		t.Fatalf("copy to the archive: exit %d, want 3 naming the missing entry\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "copied 1 run (") || !strings.Contains(out, " points, 12 files") {
		t.Errorf("copy to the archive: %s", out)
	}
	if code, out, errOut = runCLI(t, "check", src, "parquet:"+archive); code != 0 {
		t.Fatalf("check the archive: exit %d\n%s\n%s", code, out, errOut)
	}

	// An archive made without the SDK's cache lacks an entry the source
	// has: check names it.
	bare := filepath.Join(t.TempDir(), "bare")
	noCache := "wandb:" + filepath.Join(dir, "wandb") + "?artifact-cache=" + filepath.Join(dir, "no-cache")
	if code, out, errOut = runCLI(t, "copy", noCache, "parquet:"+bare, "--state", filepath.Join(t.TempDir(), "l.db")); code != exitRunsFailed {
		t.Fatalf("copy without the cache: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "check", src, "parquet:"+bare)
	if code != exitDifferences || !strings.Contains(out, "file wandb-artifacts/cached-data/") || !strings.Contains(out, "c.txt: source 15 bytes") {
		t.Fatalf("check against an archive lacking an artifact entry: exit %d\n%s", code, out)
	}

	// What W&B's folder holds, by run file path: manifests and entries.
	want := map[string]string{} // path → content (manifest: canonical JSON)
	var exp struct {
		Artifacts []struct {
			Name, Digest string
			Aliases      []string
			Entries      []struct {
				Path, Digest, Ref string
				Size              int64
			}
			Missing []string
		}
		Sources map[string][]byte
	}
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil || json.Unmarshal(b, &exp) != nil {
		t.Fatalf("expected.json: %v", err)
	}
	byMD5 := map[string]string{}
	for _, content := range exp.Sources {
		byMD5[b64md5(content)] = string(content)
	}
	for _, a := range exp.Artifacts {
		folder := "wandb-artifacts/" + a.Name + "/" + a.Digest + "/"
		want[folder+"manifest.json"] = "manifest"
		for _, e := range a.Entries {
			if e.Ref == "" && !contains(a.Missing, e.Path) {
				want[folder+e.Path] = byMD5[e.Digest]
			}
		}
	}

	// The archive, read by duckdb.
	q := `select path, coalesce(problem, '') = '' from read_parquet('` + archive + `/artifacts/**/*.parquet') where path like 'wandb-artifacts/%' order by path`
	rows := pyRun(t, py, "import duckdb,json,sys; print(json.dumps(duckdb.sql(sys.argv[1]).fetchall()))", q)
	var got [][]any
	if err := json.Unmarshal([]byte(rows), &got); err != nil {
		t.Fatalf("duckdb: %v: %s", err, rows)
	}
	have := map[string]bool{}
	for _, r := range got {
		have[r[0].(string)] = r[1].(bool)
	}
	for p := range want {
		if !have[p] {
			t.Errorf("archive: %s missing (%v)", p, have)
		}
	}
	lost := "wandb-artifacts/lost-data/" + exp.Artifacts[4].Digest + "/lost.txt"
	if ok, listed := have[lost]; !listed || ok {
		t.Errorf("archive: the missing entry %s is not listed with its problem: %v", lost, have)
	}
	if len(have) != len(want)+1 {
		t.Errorf("archive holds %d artifact files, want %d", len(have), len(want)+1)
	}

	// The archive's artifact tables, read by duckdb: every logged version
	// with its entries, which run logged it.
	q = `select v.run, v.role, v.name, v.digest, v.aliases, count(e.path), coalesce(sum(e.size), 0)
	     from read_parquet('` + archive + `/artifact_versions/*/*.parquet') v
	     left join read_parquet('` + archive + `/artifact_entries/*/*.parquet') e using (run, name, digest)
	     group by all order by v.name, v.digest`
	rows = pyRun(t, py, "import duckdb,json,sys; print(json.dumps(duckdb.sql(sys.argv[1]).fetchall()))", q)
	var versions [][]any
	if err := json.Unmarshal([]byte(rows), &versions); err != nil {
		t.Fatalf("duckdb: %v: %s", err, rows)
	}
	var wantVersions [][]any
	for _, a := range exp.Artifacts {
		size := 0.0
		for _, e := range a.Entries {
			size += float64(e.Size)
		}
		aliases, _ := json.Marshal(a.Aliases)
		wantVersions = append(wantVersions, []any{origin, "logged", a.Name, a.Digest,
			string(aliases), float64(len(a.Entries)), size})
	}
	sortRows(wantVersions)
	if !reflect.DeepEqual(versions, wantVersions) {
		t.Errorf("archive artifact tables\n got %v\nwant %v", versions, wantVersions)
	}

	// The archive into a real MLflow server, then MLflow's own client.
	dst := "mlflow+" + srv.URL + "?experiment-prefix=art-rt-"
	if code, out, errOut = runCLI(t, "copy", "--accept-gaps", "parquet:"+archive, dst, "--state", ledger); code != 0 {
		t.Fatalf("copy to MLflow: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, "check", src, dst); code != 0 {
		t.Fatalf("check W&B folder against MLflow: exit %d\n%s\n%s", code, out, errOut)
	}
	down := t.TempDir()
	script := `
import base64, json, os, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
exp = mlflow.get_experiment_by_name("art-rt-runferry-artifacts")
runs = mlflow.search_runs([exp.experiment_id], output_format="list")
assert len(runs) == 1, runs
mlflow.artifacts.download_artifacts(run_id=runs[0].info.run_id, artifact_path="wandb-artifacts", dst_path=sys.argv[2])
out = {}
for root, _, files in os.walk(sys.argv[2]):
    for f in files:
        p = os.path.join(root, f)
        out[os.path.relpath(p, sys.argv[2])] = base64.b64encode(open(p, "rb").read()).decode()
print(json.dumps(out))
`
	var files map[string][]byte
	if err := json.Unmarshal([]byte(pyRun(t, py, script, srv.URL, down)), &files); err != nil {
		t.Fatal(err)
	}
	for p, content := range want {
		gotContent, ok := files[p]
		switch {
		case !ok:
			t.Errorf("MLflow lacks %s", p)
		case content == "manifest":
			m, err := schema.ParseManifest(gotContent)
			if err != nil || m.Digest == "" || !strings.Contains(p, "/"+m.Name+"/"+m.Digest+"/") {
				t.Errorf("MLflow %s: %v %+v", p, err, m)
			}
		case string(gotContent) != content:
			t.Errorf("MLflow %s: content differs", p)
		}
	}
	if len(files) != len(want) {
		t.Errorf("MLflow holds %d files under wandb-artifacts, want %d: %v", len(files), len(want), keysOf(files))
	}
	// The manifests in MLflow are the ones W&B's folder gives.
	for _, a := range exp.Artifacts {
		p := "wandb-artifacts/" + a.Name + "/" + a.Digest + "/manifest.json"
		m, err := schema.ParseManifest(files[p])
		if err != nil {
			continue
		}
		var paths []string
		for _, e := range m.Entries {
			paths = append(paths, e.Path)
		}
		var wantPaths []string
		for _, e := range a.Entries {
			wantPaths = append(wantPaths, e.Path)
		}
		if !reflect.DeepEqual(paths, wantPaths) {
			t.Errorf("%s: entries %q, want %q", p, paths, wantPaths)
		}
	}
}

// pyRun runs a Python snippet with the venv's interpreter and returns its
// standard output.
func pyRun(t *testing.T, py, script string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return string(out)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func keysOf(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func b64md5(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// sortRows sorts rows by their third, then fourth column (name, digest).
func sortRows(rows [][]any) {
	slices.SortFunc(rows, func(a, b []any) int {
		return cmp.Or(cmp.Compare(a[2].(string), b[2].(string)), cmp.Compare(a[3].(string), b[3].(string)))
	})
}
