package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/mlflowapi"
	"github.com/runferry/runferry/internal/testenv"
)

// TestTensorBoardToParquetAndMLflow: TensorBoard logs made by real writers
// (tensorboardX, tensorboard's own writer; testenv.TensorBoardLogs) copy
// into a Parquet archive and a real MLflow server, and check finds both
// identical to the source. The damaged runs and the unmapped pr_curves
// summary are named, and the copy exits 3 for the damage.
func TestTensorBoardToParquetAndMLflow(t *testing.T) {
	logs := filepath.Join(testenv.TensorBoardLogs(t), "logs")
	src := "tensorboard:" + logs
	archive := filepath.Join(t.TempDir(), "archive")
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	code, out, errOut := runCLI(t, "copy", src, "parquet:"+archive, "--state", ledger)
	all := out + errOut
	if code != 3 || !strings.Contains(all, "copied 7 runs (212 points, 3 files,") ||
		!strings.Contains(all, "damaged/crc/events.out.tfevents.") || !strings.Contains(all, "record data checksum mismatch") ||
		!strings.Contains(all, "damaged/truncated/events.out.tfevents.") || !strings.Contains(all, "truncated record") ||
		!strings.Contains(all, "not as given: source: tensorboard pr_curves plugin summaries: 1\n") {
		t.Fatalf("copy to the archive: exit %d, want 3 naming the damage and the pr_curves summary\n%s", code, all)
	}
	// Again: nothing changed, so nothing is copied (the damaged runs'
	// damage is named again from the ledger: TestDamagedTensorBoardRunsUnchanged)
	// and no point arrives twice.
	if code, out, errOut = runCLI(t, "copy", src, "parquet:"+archive, "--state", ledger); code != 3 || !strings.Contains(out+errOut, "copied 0 runs (0 points, 0 files, 0 B); 7 unchanged") {
		t.Fatalf("second copy to the archive: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, "check", src, "parquet:"+archive); code != 0 || !strings.Contains(out, "7 runs, 212 points: 7 match, 0 differences") {
		t.Fatalf("check the archive: exit %d\n%s%s", code, out, errOut)
	}
	q := "select count(*), count(distinct (run, key, step, time)) from read_parquet('" + archive + "/metrics/**/*.parquet')"
	if got, err := exec.Command(testenv.Python(t), "-c", "import duckdb,sys; print(duckdb.sql(sys.argv[1]).fetchall())", q).CombinedOutput(); err != nil || strings.TrimSpace(string(got)) != "[(212, 212)]" {
		t.Fatalf("duckdb over the archive's metrics: %v %s, want 212 distinct points", err, got)
	}

	srv := testenv.SharedMLflow(t)
	prefix := fmt.Sprintf("tb-%d/", testenv.FreePort(t))
	dst := "mlflow+" + srv.URL + "?experiment-prefix=" + prefix
	if code, out, errOut = runCLI(t, "copy", src, dst, "--no-state"); code != 3 || !strings.Contains(out+errOut, "copied 7 runs (212 points, 3 files,") {
		t.Fatalf("copy to MLflow: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut = runCLI(t, "check", src, dst); code != 0 || !strings.Contains(out, "7 runs, 212 points: 7 match, 0 differences") {
		t.Fatalf("check MLflow: exit %d\n%s%s", code, out, errOut)
	}
	// The images show in MLflow's own image view.
	api := mustAPI(t, srv.URL)
	exp, err := api.GetExperimentByName(context.Background(), prefix+"logs")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for r, err := range api.SearchRuns(context.Background(), []string{exp.ExperimentID}, "tags.`mlflow.loggedImages` = 'True'", mlflowapi.ViewActive) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, r.Info.RunName)
	}
	if strings.Join(names, ",") != "tbx,tf2" && strings.Join(names, ",") != "tf2,tbx" {
		t.Errorf("runs with MLflow images: %v, want tbx and tf2", names)
	}
}

// TestUnreadableTensorBoardInputs: as a user to whom file modes apply, an
// event file that cannot be opened is named in its run's damage and a log
// folder that cannot be listed is named as a problem; the copy exits 3
// with everything readable copied.
func TestUnreadableTensorBoardInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	logs := filepath.Join(testenv.TensorBoardLogs(t), "logs")
	base := t.TempDir()
	testenv.OpenToAll(t, base)
	bin := testenv.BuildOnce(t, ".")
	data := filepath.Join(base, "logs")
	for _, run := range []string{"keras", "restarted"} {
		copyFolder(t, filepath.Join(logs, run), filepath.Join(data, run))
	}
	files, _ := filepath.Glob(filepath.Join(data, "restarted", "events.out.tfevents.*.a"))
	if len(files) != 1 {
		t.Fatalf("restarted/: %v", files)
	}
	validation := filepath.Join(data, "keras", "validation")
	for p, mode := range map[string]os.FileMode{files[0]: 0, validation: 0} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	defer os.Chmod(validation, 0o755)
	out := filepath.Join(base, "out")
	if err := os.Mkdir(out, 0o777); err != nil || os.Chmod(out, 0o777) != nil {
		t.Fatal(err)
	}
	cmd := asUnprivileged(t, bin, "copy", "tensorboard:"+data, "parquet:"+filepath.Join(out, "archive"), "--no-state")
	cmd.Env = append(os.Environ(), "HOME="+out, "XDG_STATE_HOME="+out)
	b, err := cmd.CombinedOutput()
	got := string(b)
	if exitCode(err) != 3 || !strings.Contains(got, "restarted/"+filepath.Base(files[0])+": open: permission denied") ||
		!strings.Contains(got, "PROBLEM source: keras/validation: open: permission denied") ||
		!strings.Contains(got, "copied 2 runs (15 points,") {
		t.Fatalf("exit %d, want 3 naming the unreadable file and folder, with 2 runs (15 points) copied\n%s", exitCode(err), got)
	}
}

// TestInspectEventFile: inspect prints a TensorBoard event file one event
// per line, names the corrupt record by offset, reads on, and exits 3.
func TestInspectEventFile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testenv.TensorBoardLogs(t), "logs", "damaged", "crc", "events.out.tfevents.*"))
	if len(files) != 1 {
		t.Fatalf("damaged/crc: %v", files)
	}
	code, out, errOut := runCLI(t, "inspect", files[0])
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var want []string
	for s := range 10 {
		switch {
		case s == 2: // step 0's record lacks the step field: 40 bytes, the others 42
			want = append(want, `{"offset":122,"damage":"record data checksum mismatch (record skipped)"}`)
		default:
			want = append(want, fmt.Sprintf(`{"offset":%d,"wall_time":%d,%s"values":[{"tag":"loss","kind":"simple_value","value":%d}]}`,
				max(40, 38+42*s), 1750000000+s, map[bool]string{true: "", false: fmt.Sprintf(`"step":%d,`, s)}[s == 0], s))
		}
	}
	if code != 3 || len(lines) != 11 || !strings.Contains(lines[0], `"file_version":"brain.Event:2"`) ||
		strings.Join(lines[1:], "\n") != strings.Join(want, "\n") || !strings.Contains(errOut, "1 damaged place (") {
		t.Fatalf("exit %d\n%s\nwant after the version line:\n%s\n%s", code, out, strings.Join(want, "\n"), errOut)
	}
}
