package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIncludeDeleted: an MLflow file store holding a deleted run and a
// deleted experiment (under .trash/, with its run): a copy leaves them out
// and says so; with --include-deleted it copies them, and check against the
// store read with ?deleted=true is clean (their deleted marks included). A
// source without deleted runs, or a location saying deleted=false, is a
// usage error naming the flag.
func TestIncludeDeleted(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "mlruns")
	run := func(id, exp, stage string) string {
		return "artifact_uri: file://" + filepath.Join(root, exp, id, "artifacts") + "\nend_time: 1700000001000\nexperiment_id: '" + exp +
			"'\nlifecycle_stage: " + stage + "\nrun_id: " + id + "\nrun_name: run " + id[:1] + "\nrun_uuid: " + id +
			"\nstart_time: 1700000000000\nstatus: 3\ntags: []\nuser_id: me\n"
	}
	a, b, c := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)
	for p, body := range map[string]string{
		"1/meta.yaml":                     "artifact_location: file://" + filepath.Join(root, "1") + "\nexperiment_id: '1'\nlifecycle_stage: active\nname: kept\n",
		"1/" + a + "/meta.yaml":           run(a, "1", "active"),
		"1/" + a + "/metrics/loss":        "1700000000000 0.5 0\n1700000000001 0.25 1\n",
		"1/" + b + "/meta.yaml":           run(b, "1", "deleted"),
		"1/" + b + "/metrics/loss":        "1700000000000 0.75 0\n",
		".trash/2/meta.yaml":              "artifact_location: file://" + filepath.Join(root, "2") + "\nexperiment_id: '2'\nlifecycle_stage: deleted\nname: gone\n",
		".trash/2/" + c + "/meta.yaml":    run(c, "2", "deleted"),
		".trash/2/" + c + "/metrics/loss": "1700000000000 1.5 0\n",
	} {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	store := "mlflow+file:" + root

	without := "parquet:" + filepath.Join(dir, "without")
	code, out, errOut := runCLI(t, "copy", "--accept-gaps", store, without, "--no-state")
	if code != 0 || !strings.Contains(out, "copied 1 run") || !strings.Contains(out+errOut, "not as given: source: deleted runs left out (add ?deleted=true to copy them): 1\n") ||
		!strings.Contains(out+errOut, "not as given: source: deleted experiments left out (add ?deleted=true to copy them): 1\n") {
		t.Fatalf("copy without --include-deleted: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, "check", store, without); code != 0 || !strings.Contains(out, "1 match, 0 differences") {
		t.Fatalf("check without deleted: exit %d\n%s\n%s", code, out, errOut)
	}

	with := "parquet:" + filepath.Join(dir, "with")
	code, out, errOut = runCLI(t, "copy", "--accept-gaps", "--include-deleted", store, with, "--no-state")
	if code != 0 || !strings.Contains(out, "copied 3 runs") {
		t.Fatalf("copy --include-deleted: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, args := range [][]string{{"check", store + "?deleted=true", with}, {"check", with, store + "?deleted=true"}} {
		if code, out, errOut = runCLI(t, args...); code != 0 || !strings.Contains(out, "3 match, 0 differences") {
			t.Fatalf("%v: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	// The deleted runs are marked deleted in the copy: checked against the
	// store without them, the copy has two runs too many.
	if code, out, _ = runCLI(t, "check", store, with); code == 0 {
		t.Errorf("check of the store without deleted runs against the copy with them: exit 0\n%s", out)
	}

	for _, tt := range []struct{ src, want string }{
		{"wandb:../../testdata/wandb/fixtures", `--include-deleted: source wandb:`},
		{store + "?deleted=false", "--include-deleted: the source location says deleted=false"},
	} {
		code, out, errOut := runCLI(t, "copy", "--accept-gaps", "--include-deleted", tt.src, "parquet:"+filepath.Join(dir, "other"))
		if code != exitUsage || !strings.Contains(errOut, tt.want) {
			t.Errorf("copy --include-deleted %s: exit %d, stderr %q; want exit %d and %q\n%s", tt.src, code, errOut, exitUsage, tt.want, out)
		}
	}
}
