package main

import (
	"database/sql"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/testenv"
)

// ux12TrainFolderPy has tensorboardX's SummaryWriter log one run whose own
// folder logs "train/loss" while its train/ subfolder (which runferry merges
// into the run, as Keras writes it) logs "loss", and its validation/
// subfolder "loss". Usage: DIR.
const ux12TrainFolderPy = `
import sys
from tensorboardX import SummaryWriter
root = sys.argv[1] + "/exp/run1"
for sub, tag, base in (("", "train/loss", 1.0), ("/train", "loss", 10.0), ("/validation", "loss", 20.0)):
    w = SummaryWriter(root + sub)
    for s in range(3):
        w.add_scalar(tag, base + s, s)
    w.close()
`

// TestTensorBoardTrainFolderKeyKeptApart: a run folder that logs
// "train/loss" itself and holds a train/ subfolder logging "loss" gave one
// key "train/loss" for both series: 2 of the 6 points were dropped as
// "step went below an earlier point", the rest interleaved, exit 0 and
// check clean (the source reads it so both times). Now the subfolder's
// series is "train folder/loss", named in a "not as given" line; every
// point arrives under its own key, as the destination (SQLite) shows.
func TestTensorBoardTrainFolderKeyKeptApart(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command(testenv.Python(t), "-c", ux12TrainFolderPy, dir).CombinedOutput(); err != nil {
		t.Fatalf("tensorboardX: %v\n%s", err, out)
	}
	src := "tensorboard:" + filepath.Join(dir, "exp")
	db := filepath.Join(dir, "runs.db")
	code, out, errOut := runCLI(t, "copy", src, "sqlite:"+db, "--no-state")
	if code != exitOK || !strings.Contains(out, "copied 1 run (9 points") ||
		!strings.Contains(out, `not as given: source: tensorboard tags of a train/ or validation/ folder renamed "train folder/TAG" (the run's own folder logs "train/TAG" too): 1`) {
		t.Errorf("copy: exit %d, want 0 with 9 points and the rename named\n%s\n%s", code, out, errOut)
	}
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rows, err := conn.Query("SELECT name, step, value FROM metrics ORDER BY name, step, seq")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var name string
		var step int64
		var value float64
		if err := rows.Scan(&name, &step, &value); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s@%d=%g", name, step, value))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"train folder/loss@0=10", "train folder/loss@1=11", "train folder/loss@2=12",
		"train/loss@0=1", "train/loss@1=2", "train/loss@2=3",
		"validation/loss@0=20", "validation/loss@1=21", "validation/loss@2=22",
	}
	if !slices.Equal(got, want) {
		t.Errorf("metrics in SQLite:\n got %q\nwant %q", got, want)
	}
	if code, out, errOut := runCLI(t, "check", src, "sqlite:"+db); code != exitOK {
		t.Errorf("check: exit %d\n%s\n%s", code, out, errOut)
	}
}
