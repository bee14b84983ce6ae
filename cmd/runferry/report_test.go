package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// TestReportsMatchTheSchema validates real --report files against
// docs/report.schema.json with an independent validator (Python's
// jsonschema): a plain copy, a dry run, a copy with a failed run, a
// warning and coverage, and a sync that appended to a grown run. The schema allows no undocumented field, so a new
// report field fails here until docs/REPORT.md and the schema say what it is.
func TestReportsMatchTheSchema(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	dir := t.TempDir()
	first := "parquet:" + filepath.Join(dir, "a")
	reports := map[string][]string{
		"copy":    {"copy", "--accept-gaps", fixtures, first, "--no-state"},
		"dry-run": {"copy", "--accept-gaps", fixtures, "parquet:" + filepath.Join(dir, "never"), "--no-state", "--dry-run", "--include", "runferry-fixtures"},
		"sharded": {"copy", "--accept-gaps", fixtures, "parquet:" + filepath.Join(dir, "never"), "--no-state", "--dry-run", "--shard", "1/2"},
	}
	for _, name := range []string{"copy", "dry-run", "sharded"} {
		path := filepath.Join(dir, name+".json")
		if code, out, errOut := runCLI(t, append(reports[name], "--report", path)...); code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", name, code, out, errOut)
		}
	}
	// A body lost from the first archive fails its run when copying out of it.
	blobs, _ := filepath.Glob(filepath.Join(dir, "a", "blobs", "sha256", "*", "*"))
	if len(blobs) == 0 {
		t.Fatal("the archive holds no file body")
	}
	if err := os.Remove(blobs[0]); err != nil {
		t.Fatal(err)
	}
	failed := filepath.Join(dir, "failed.json")
	code, out, _ := runCLI(t, "copy", "--accept-gaps", first, "parquet:"+filepath.Join(dir, "b"), "--no-state", "--retries", "0",
		"--drop-metrics", "system/*", "--exclude", "nothing-like-this", "--report", failed)
	if code != 3 {
		t.Fatalf("copy out of a damaged archive: exit %d, want 3\n%s", code, out)
	}
	var rep struct {
		Totals   struct{ Failed int }
		Warnings []string
		Coverage map[string]int64
	}
	if b, err := os.ReadFile(failed); err != nil || json.Unmarshal(b, &rep) != nil || rep.Totals.Failed == 0 || len(rep.Warnings) == 0 || len(rep.Coverage) == 0 {
		t.Fatalf("the failing job's report lacks what it should exercise: %+v (%v)", rep, err)
	}

	// A sync that appends to a run the real wandb SDK resumed after the
	// first sync: the report counts the appended run and its kept points.
	growing := filepath.Join(dir, "growing")
	os.MkdirAll(growing, 0o755)
	grow := func(from, to string) {
		t.Helper()
		script := filepath.Join(testenv.RepoRoot(t), "testdata", "wandb", "grow.py")
		if out, err := exec.Command(testenv.Python(t), script, growing, "grow0003", from, to).CombinedOutput(); err != nil {
			t.Fatalf("grow.py: %v\n%s", err, out)
		}
	}
	appended := filepath.Join(dir, "appended.json")
	syncArgs := []string{"sync", "--accept-gaps", "wandb:" + filepath.Join(growing, "wandb") + "?crashed-after=1ns", "parquet:" + filepath.Join(dir, "c"),
		"--state", filepath.Join(dir, "state.db")}
	grow("0", "10")
	if code, out, errOut := runCLI(t, syncArgs...); code != 0 {
		t.Fatalf("first sync: exit %d\n%s%s", code, out, errOut)
	}
	grow("10", "15")
	if code, out, errOut := runCLI(t, append(syncArgs, "--report", appended)...); code != 0 {
		t.Fatalf("second sync: exit %d\n%s%s", code, out, errOut)
	}
	var app struct {
		Runs []struct {
			Appended   bool  `json:"appended"`
			Points     int64 `json:"points"`
			KeptPoints int64 `json:"kept_points"`
		}
		Totals struct{ Appended int }
	}
	if b, err := os.ReadFile(appended); err != nil || json.Unmarshal(b, &app) != nil || app.Totals.Appended != 1 ||
		len(app.Runs) != 1 || !app.Runs[0].Appended || app.Runs[0].Points != 10 || app.Runs[0].KeptPoints != 20 {
		t.Fatalf("the appending sync's report: %+v (%v), want one run appended with 10 new points and 20 kept", app, err)
	}

	if b, err := matchReportSchema(t, filepath.Join(dir, "copy.json"), filepath.Join(dir, "dry-run.json"), failed, appended); err != nil {
		t.Fatalf("reports do not match docs/report.schema.json: %v\n%s", err, b)
	}
	// And a document the schema must refuse, so the check is not vacuous.
	bogus := filepath.Join(dir, "bogus.json")
	b, _ := os.ReadFile(filepath.Join(dir, "copy.json"))
	os.WriteFile(bogus, []byte(strings.Replace(string(b), `"format_version": 1`, `"format_version": 1, "undocumented": true`, 1)), 0o644)
	if out, err := matchReportSchema(t, bogus); err == nil {
		t.Fatalf("the schema accepted an undocumented field:\n%s", out)
	}
}

// reportSchemaScript validates the JSON files named after the schema
// (sys.argv[1]) with jsonschema's Draft 2020-12 validator, printing each
// error; it exits 1 when any file does not match.
const reportSchemaScript = `
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
bad = 0
for path in sys.argv[2:]:
    for e in v.iter_errors(json.load(open(path))):
        bad += 1
        print(path, "/".join(str(p) for p in e.absolute_path), e.message)
sys.exit(1 if bad else 0)
`

// matchReportSchema checks the job reports at paths against
// docs/report.schema.json (with the venv's jsonschema), returning the
// validator's output and an error when one does not match.
func matchReportSchema(t *testing.T, paths ...string) ([]byte, error) {
	t.Helper()
	schema := filepath.Join(testenv.RepoRoot(t), "docs", "report.schema.json")
	return exec.Command(testenv.Python(t), append([]string{"-c", reportSchemaScript, schema}, paths...)...).CombinedOutput()
}

// TestJSONSummaryOnStdout: with --log-format json, stdout holds exactly one
// JSON object with the job's totals, coverage and exit code.
func TestJSONSummaryOnStdout(t *testing.T) {
	archive := "parquet:" + filepath.Join(t.TempDir(), "a")
	code, out, _ := runCLI(t, "copy", "--accept-gaps", fixtures, archive, "--no-state", "--log-format", "json", "--drop-metrics", "system/*", "--run", "nope", "--run", "fxa00001")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, out)
	}
	var sum struct {
		Summary  bool
		Totals   struct{ Committed, Points int }
		Coverage map[string]int64
		Warnings []string
		ExitCode *int `json:"exit_code"`
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&sum); err != nil || dec.More() {
		t.Fatalf("stdout is not one JSON object (%v):\n%s", err, out)
	}
	if !sum.Summary || sum.Totals.Committed != 1 || sum.Totals.Points == 0 || len(sum.Coverage) != 1 ||
		len(sum.Warnings) != 1 || sum.ExitCode == nil || *sum.ExitCode != 0 {
		t.Fatalf("summary %+v\n%s", sum, out)
	}
}
