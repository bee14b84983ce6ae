package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runferry/runferry/internal/archive"
)

// TestCheckReadsArchivedBodiesAndCopyRepairs: a deleted or damaged
// artifact body under blobs/ makes `check` exit 4 naming the run and the
// file (check reads the bodies, not the recorded hash), and copying again
// into the archive, with the same ledger, repairs it so that check passes.
// A body damaged without a change of size is repaired by a copy with
// ?verify=sha256. Without a ledger, the archive's own fingerprint would
// skip the run: the repair must happen then too.
func TestCheckReadsArchivedBodiesAndCopyRepairs(t *testing.T) {
	t.Parallel() // no t.Setenv or package variable; its own names on shared servers (docs/TESTING.md, tt14)
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+arch, "--state", ledger); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	// A body that belongs to exactly one file of one run.
	r, err := archive.OpenReader(arch, 0)
	if err != nil {
		t.Fatal(err)
	}
	uses := map[string][]string{} // sha256 -> "run\x00path"
	for _, e := range r.Manifest().Runs {
		rows, err := r.Artifacts(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, row := range rows {
			if row.SHA256 != nil && *row.Size > 1 {
				uses[*row.SHA256] = append(uses[*row.SHA256], e.Origin+"\x00"+row.Path)
			}
		}
	}
	var sha, run, file string
	for _, s := range slices.Sorted(func(yield func(string) bool) {
		for k := range uses {
			if !yield(k) {
				return
			}
		}
	}) {
		if len(uses[s]) == 1 {
			sha = s
			run, file, _ = strings.Cut(uses[s][0], "\x00")
			break
		}
	}
	if sha == "" {
		t.Fatal("no artifact body used by exactly one file")
	}
	blob := filepath.Join(arch, "blobs", "sha256", sha[:2], sha)
	good, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	flipped := slices.Clone(good)
	flipped[len(flipped)/2] ^= 0x20

	for _, c := range []struct {
		name   string
		damage func()
		want   string // in check's line about the file
		dst    string // location of the repairing copy
		state  string // its ledger option
	}{
		{"body deleted", func() { os.Remove(blob) }, "the artifact body is missing", "parquet:" + arch, "--state=" + ledger},
		{"body deleted, copy without ledger", func() { os.Remove(blob) }, "the artifact body is missing", "parquet:" + arch, "--no-state"},
		{"body truncated", func() { os.WriteFile(blob, good[:len(good)-1], 0o644) }, "SHA-256", "parquet:" + arch, "--state=" + ledger},
		{"body with one flipped bit", func() { os.WriteFile(blob, flipped, 0o644) }, "SHA-256", "parquet:" + arch + "?verify=sha256", "--state=" + ledger},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.damage()
			code, out, errOut := runCLI(t, "check", fixtures, "parquet:"+arch)
			line := run + ": file " + file + " unreadable in the destination"
			if code != exitDifferences || !strings.Contains(out, line) || !strings.Contains(out, blob) ||
				!strings.Contains(out, c.want) || !strings.Contains(out, "5 match, 1 difference") {
				t.Fatalf("check after the damage: exit %d, want %d and a line %q naming %s and %q\n%s\n%s",
					code, exitDifferences, line, blob, c.want, out, errOut)
			}
			// A copy out of the damaged archive fails the runs that use the
			// body, naming it, instead of passing its bytes on.
			code, out, errOut = runCLI(t, "copy", "--accept-gaps", "parquet:"+arch, "parquet:"+filepath.Join(t.TempDir(), "out"), "--no-state")
			if code != 3 || !strings.Contains(out+errOut, "FAILED "+run) || !strings.Contains(out+errOut, blob+": archive file is damaged") {
				t.Fatalf("copy out of the damaged archive: exit %d, want 3 naming %s and %s\n%s\n%s", code, run, blob, out, errOut)
			}
			code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, c.dst, c.state)
			if code != 0 || !strings.Contains(out, "copied 1 run") {
				t.Fatalf("repairing copy: exit %d\n%s\n%s", code, out, errOut)
			}
			if got, err := os.ReadFile(blob); err != nil || string(got) != string(good) {
				t.Fatalf("body after the repairing copy: %v, %d bytes", err, len(got))
			}
			code, out, errOut = runCLI(t, "check", fixtures, "parquet:"+arch)
			if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
				t.Fatalf("check after the repair: exit %d\n%s\n%s", code, out, errOut)
			}
			if code, out, errOut := runCLI(t, "archive", "check", arch); code != 0 {
				t.Fatalf("archive check after the repair: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}

// TestCheckAndCopyRepairArchivedDataFiles: a deleted, truncated or
// bit-flipped Parquet file of a run makes `check` exit 4 naming the run and
// the file; copying again into the archive (the writer opens although a
// listed file is gone) writes the run again, after which check passes,
// and archive check too once the snapshots that held the damaged file are
// pruned. A same-size change needs ?verify=sha256.
func TestCheckAndCopyRepairArchivedDataFiles(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+arch, "--state", ledger); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	const run = "wandb:fixture-entity/runferry-fixtures/fxa00001"
	key := archive.EntityKey(run)
	file := func(table string) string {
		files, _ := filepath.Glob(filepath.Join(arch, table, key, "*.parquet"))
		if len(files) != 1 {
			t.Fatalf("%s files of run %s: %v", table, run, files)
		}
		return files[0]
	}
	for _, c := range []struct {
		name   string
		table  string
		damage func(p string)
		want   string // check's difference
		dst    string
		// earlier: archive check finds the damage in the earlier snapshots
		// after the repair (it checks their files' sizes, not hashes)
		earlier bool
	}{
		{"metrics deleted", "metrics", func(p string) { os.Remove(p) }, run + ": metrics unreadable in the destination", "parquet:" + arch, true},
		{"logs truncated", "logs", func(p string) {
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-10], 0o644)
		}, run + ": console output unreadable in the destination", "parquet:" + arch, true},
		{"runs row with a flipped bit", "runs", func(p string) {
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 1
			os.WriteFile(p, data, 0o644)
		}, "destination: runs of experiment", "parquet:" + arch + "?verify=sha256", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := file(c.table)
			c.damage(p)
			code, out, errOut := runCLI(t, "check", fixtures, "parquet:"+arch)
			if code != exitDifferences || !strings.Contains(out, c.want) || !strings.Contains(out, p) {
				t.Fatalf("check after the damage: exit %d, want %d and %q naming %s\n%s\n%s", code, exitDifferences, c.want, p, out, errOut)
			}
			code, out, errOut = runCLI(t, "copy", "--accept-gaps", fixtures, c.dst, "--state", ledger)
			if code != 0 || !strings.Contains(out, "copied 1 run") {
				t.Fatalf("repairing copy: exit %d\n%s\n%s", code, out, errOut)
			}
			code, out, errOut = runCLI(t, "check", fixtures, "parquet:"+arch)
			if code != 0 || !strings.Contains(out, "6 match, 0 differences") {
				t.Fatalf("check after the repair: exit %d\n%s\n%s", code, out, errOut)
			}
			// The earlier snapshots still list the damaged file: they are
			// damaged for good, and archive check says so until pruned.
			code, out, errOut = runCLI(t, "archive", "check", arch)
			if c.earlier && (code != exitDifferences || !strings.Contains(out, strings.TrimPrefix(p, arch))) {
				t.Fatalf("archive check after the repair: exit %d, want %d naming %s in an earlier snapshot\n%s\n%s", code, exitDifferences, p, out, errOut)
			}
			if code, out, errOut := runCLI(t, "archive", "prune", arch, "--keep", "1"); code != 0 {
				t.Fatalf("prune: exit %d\n%s\n%s", code, out, errOut)
			}
			if code, out, errOut := runCLI(t, "archive", "check", arch); code != 0 {
				t.Fatalf("archive check after the repair and a prune: exit %d\n%s\n%s", code, out, errOut)
			}
		})
	}
}

// TestCopyRepairsLostExperimentFile: an experiment's Parquet file deleted
// from the archive is written again by the next copy, although every run
// is unchanged; only the earlier snapshot keeps the loss.
func TestCopyRepairsLostExperimentFile(t *testing.T) {
	dir := t.TempDir()
	arch := filepath.Join(dir, "archive")
	ledger := filepath.Join(dir, "ledger.db")
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+arch, "--state", ledger); code != 0 {
		t.Fatalf("copy: exit %d\n%s\n%s", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(arch, "experiments", "*", "*.parquet"))
	if len(files) != 1 {
		t.Fatalf("experiment files: %v", files)
	}
	os.Remove(files[0])
	code, out, errOut := runCLI(t, "archive", "check", arch)
	if code != exitDifferences || !strings.Contains(out, "PROBLEM "+files[0]) {
		t.Fatalf("archive check after the loss: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "copy", "--accept-gaps", fixtures, "parquet:"+arch, "--state", ledger); code != 0 || !strings.Contains(out, "6 unchanged") {
		t.Fatalf("repairing copy: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "archive", "check", arch)
	if code != exitDifferences || strings.Contains(out, "PROBLEM "+files[0]) || !strings.Contains(out, "PROBLEM snapshot 1: "+files[0]) {
		t.Fatalf("archive check after the repair: exit %d, want the loss only in snapshot 1\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", fixtures, "parquet:"+arch); code != 0 {
		t.Fatalf("check after the repair: exit %d\n%s\n%s", code, out, errOut)
	}
}
