package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbapi/wandbtest"
)

// TestWandbCloudSyncSeesEachEdit (ux11): a finished run of the W&B API test
// server edited one way at a time, as a user does in W&B's UI or API
// (renamed, notes edited, a tag added and one removed, a config value
// edited, a summary value edited, its state changed, a file added), is
// synced into an archive and into SQLite alone (the other runs unchanged)
// and check passes after each sync. A file's content replaced under the
// same name is the documented miss of the listing's digest
// (sources/wandbcloud fingerprint.go, docs/WANDB-CLOUD.md): sync finds the
// run unchanged, check names the file (exit 4), sync --force copies it.
func TestWandbCloudSyncSeesEachEdit(t *testing.T) {
	const key = "0123456789abcdef0123456789abcdef01234567"
	t.Setenv("WANDB_API_KEY", key)
	srv, loc := fixtureServer(t, key)
	old := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	var run *wandbtest.Run
	for _, r := range srv.Data().Projects[0].Runs {
		r.HeartbeatAt = old
		if r.ID == "fxa00001" {
			run = r
		}
	}
	if run == nil || len(run.Config) == 0 || len(run.Summary) == 0 || len(run.Tags) == 0 || len(run.Files) == 0 {
		t.Fatal("fixture run fxa00001 with config, summary, tags and files missing")
	}
	dir := t.TempDir()
	dsts := []struct{ loc, ledger string }{
		{"parquet:" + filepath.Join(dir, "archive"), filepath.Join(dir, "a.db")},
		{"sqlite:" + filepath.Join(dir, "runs.db"), filepath.Join(dir, "s.db")},
	}
	n := 0
	for _, d := range dsts {
		first := cloudSync(t, loc, d.loc, "--state", d.ledger)
		n = len(outcomes(first)["committed"])
		if n < 2 || len(outcomes(first)) != 1 {
			t.Fatalf("first sync into %s: %v", d.loc, outcomes(first))
		}
	}
	cfgKey := slices.Sorted(func(yield func(string) bool) {
		for k := range run.Config {
			if !strings.HasPrefix(k, "_") && !yield(k) {
				return
			}
		}
	})[0]
	sumKey := slices.Sorted(func(yield func(string) bool) {
		for k := range run.Summary {
			if !strings.HasPrefix(k, "_") && !yield(k) {
				return
			}
		}
	})[0]
	edits := []struct {
		name string
		do   func()
	}{
		{"renamed", func() { run.DisplayName = "ux11 renamed" }},
		{"notes edited", func() { run.Notes = "ux11 notes" }},
		{"a tag added, one removed", func() { run.Tags = append(slices.Clone(run.Tags[1:]), "ux11-tag") }},
		{"a config value edited", func() { run.Config[cfgKey] = "ux11 value" }},
		{"a summary value edited", func() { run.Summary[sumKey] = 12345.5 }},
		{"state changed", func() { run.State = "crashed" }},
		{"a file added", func() {
			run.Files = append(run.Files, wandbtest.File{Name: "ux11.txt", Content: []byte("added\n"), UpdatedAt: time.Now().UTC()})
		}},
	}
	for _, e := range edits {
		e.do()
		for _, d := range dsts {
			if code, out, _ := runCLI(t, "check", loc, d.loc); code != exitDifferences {
				t.Errorf("%s: check into %s before the sync: exit %d, want %d\n%s", e.name, d.loc, code, exitDifferences, out)
			}
			r := cloudSync(t, loc, d.loc, "--state", d.ledger)
			if got := outcomes(r); !slices.Equal(got["committed"], []string{run.DisplayName}) || len(got["unchanged"]) != n-1 {
				t.Errorf("%s: sync into %s: %v, want %q alone committed", e.name, d.loc, got, run.DisplayName)
			}
			if code, out, errOut := runCLI(t, "check", loc, d.loc); code != 0 {
				t.Errorf("%s: check after the sync into %s: exit %d\n%s%s", e.name, d.loc, code, out, errOut)
			}
		}
	}

	// The documented miss: the same file name, other content.
	f := &run.Files[len(run.Files)-1]
	f.Content, f.UpdatedAt = []byte("ADDED\n"), time.Now().UTC()
	for _, d := range dsts {
		if code, out, _ := runCLI(t, "check", loc, d.loc); code != exitDifferences || !strings.Contains(out, "ux11.txt") {
			t.Errorf("file replaced: check into %s: exit %d, want %d naming ux11.txt\n%s", d.loc, code, exitDifferences, out)
		}
		if got := outcomes(cloudSync(t, loc, d.loc, "--state", d.ledger)); len(got["unchanged"]) != n {
			t.Errorf("file replaced: sync into %s: %v, want every run unchanged (the documented miss)", d.loc, got)
		}
		if got := outcomes(cloudSync(t, loc, d.loc, "--state", d.ledger, "--force")); !slices.Equal(got["committed"], []string{run.DisplayName}) {
			t.Errorf("file replaced: sync --force into %s: %v, want %q committed", d.loc, got, run.DisplayName)
		}
		if code, out, errOut := runCLI(t, "check", loc, d.loc); code != 0 {
			t.Errorf("file replaced: check after sync --force into %s: exit %d\n%s%s", d.loc, code, out, errOut)
		}
	}
}
