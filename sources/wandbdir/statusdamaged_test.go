package wandbdir_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/schema"
)

// TestDamagedLogStatusUnknown: a FAILED run (fixture fxe00005) whose log
// lost its exit record in a damaged block, in a folder written a moment
// ago, is not judged live (RUNNING) from the folder's time: its status is
// unknown, recorded as FAILED with wandb.state=unknown and named in its
// damage. Before, the review's flipped copy of a FAILED sample read as
// RUNNING because the copied folder's mtime was new.
func TestDamagedLogStatusUnknown(t *testing.T) {
	folders, _ := filepath.Glob(filepath.Join(fixtures, "wandb", "offline-run-*-fxe00005"))
	if len(folders) != 1 {
		t.Fatalf("fixture run fxe00005: %d folders", len(folders))
	}
	root := t.TempDir()
	dir := filepath.Join(root, "wandb", filepath.Base(folders[0]))
	copyTree(t, folders[0], dir)
	logs, _ := filepath.Glob(filepath.Join(dir, "*.wandb"))
	if len(logs) != 1 {
		t.Fatalf("%d .wandb files", len(logs))
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) - 200; i < len(b)-140; i++ { // the block holding the exit record
		b[i] ^= 0xff
	}
	if err := os.WriteFile(logs[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	d := readAll(t, root) // crashed-after 5m: the folder is new
	if len(d.Runs) != 1 {
		t.Fatalf("%d runs, want 1", len(d.Runs))
	}
	r := d.Runs[0].Run
	if r.Status != schema.StatusFailed || tag(r, "wandb.state") != "unknown" || tag(r, "wandb.exit_code") != "" {
		t.Errorf("status %s, wandb.state %q, exit code %q; want FAILED, unknown and none", r.Status, tag(r, "wandb.state"), tag(r, "wandb.exit_code"))
	}
	if !slices.ContainsFunc(r.Damage, func(d string) bool {
		return strings.HasSuffix(filepath.ToSlash(d), "run-fxe00005.wandb: status unknown: the log is damaged and holds no exit record (it may have been lost in the damage); recorded with status failed and tag wandb.state=unknown, not judged from the folder's times")
	}) {
		t.Errorf("damage does not say the status is unknown: %q", r.Damage)
	}
	// The undamaged run is still FAILED by its exit record.
	d = readAll(t, filepath.Dir(folders[0])+"/..")
	for _, w := range d.Runs {
		if strings.HasSuffix(w.Run.Origin.String(), "fxe00005") && (w.Run.Status != schema.StatusFailed || tag(w.Run, "wandb.exit_code") == "") {
			t.Errorf("undamaged fxe00005: status %s, exit code %q", w.Run.Status, tag(w.Run, "wandb.exit_code"))
		}
	}
}
