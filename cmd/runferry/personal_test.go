package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestPersonalDataNotInMLflow: the mozilla sample's W&B runs were made by
// user chelseatroy under /Users/chelseatroy (the program, the user name,
// wandb-metadata.json, the SDK's staging paths of files it could not
// upload). Copied into MLflow with the default drop-personal, neither the
// user name nor a home folder is anywhere in MLflow: not in a run's
// fields, tags, params, nor in any byte of any file the run holds
// (runferry's own files included); and an archive made from that MLflow
// copy holds none either. `check` passes on the copy.
func TestPersonalDataNotInMLflow(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	srv := testenv.SharedMLflow(t)
	dir := t.TempDir()
	src := "wandb:" + testenv.Samples(t, "wandb/mozilla__search-term-data-validation/wandb") + "?crashed-after=1ns"
	prefix := filepath.Base(dir) + "-personal/"
	dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
	for _, args := range [][]string{{"copy", src, dst, "--no-state"}, {"check", src, dst}} {
		if code, out, errOut := runCLI(t, args...); code != 0 && !(args[0] == "copy" && code == 3) {
			t.Fatalf("%q: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
	personal := []string{"chelseatroy", "/Users/"}
	leak := func(where string, b []byte) {
		t.Helper()
		for _, p := range personal {
			if i := bytes.Index(b, []byte(p)); i >= 0 {
				t.Errorf("%s holds %q: …%s…", where, p, b[max(0, i-60):min(len(b), i+60)])
			}
		}
	}
	api, err := mlflowapi.New(mlflowapi.Config{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runs, files := 0, 0
	for e, err := range api.SearchExperiments(ctx, "", mlflowapi.ViewAll) {
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(e.Name, prefix) {
			continue
		}
		b, _ := json.Marshal(e)
		leak("experiment "+e.Name, b)
		for r, err := range api.SearchRuns(ctx, []string{e.ExperimentID}, "", mlflowapi.ViewAll) {
			if err != nil {
				t.Fatal(err)
			}
			runs++
			b, _ := json.Marshal(r)
			leak("run "+r.Info.RunName, b)
			for f, err := range api.ListArtifacts(ctx, r.Info.RunID, "") {
				if err != nil {
					t.Fatal(err)
				}
				files++
				leak("run "+r.Info.RunName+" file "+f.Path, getArtifact(t, srv.URL, r.Info.RunID, f.Path))
			}
		}
	}
	if runs != 2 || files < 10 {
		t.Fatalf("%d runs, %d files in MLflow", runs, files)
	}

	// Onwards into an archive: every string of every table, every other file.
	archive := filepath.Join(dir, "archive")
	if code, out, errOut := runCLI(t, "copy", dst, "parquet:"+archive, "--no-state"); code != 0 && code != 3 {
		t.Fatalf("copy into the archive: exit %d\n%s\n%s", code, out, errOut)
	}
	script := filepath.Join(dir, "dump.py")
	os.WriteFile(script, []byte(dumpArchiveScript), 0o644)
	dump := runPy(t, script, archive)
	if !bytes.Contains(dump, []byte("main_flow.py")) {
		t.Fatalf("the archive's dump does not hold the program: %.2000s", dump)
	}
	leak("the archive", dump)
}

// dumpArchiveScript prints every row of every Parquet file of an archive
// (as pyarrow reads it) and the bytes of every other file.
const dumpArchiveScript = `
import os, sys
import pyarrow.parquet as pq
out = sys.stdout.buffer
for root, _, names in os.walk(sys.argv[1]):
    for n in sorted(names):
        p = os.path.join(root, n)
        out.write(("== %s\n" % p).encode())
        if n.endswith(".parquet"):
            out.write(repr(pq.read_table(p).to_pylist()).encode())
        else:
            out.write(open(p, "rb").read())
        out.write(b"\n")
`
