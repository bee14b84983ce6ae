package wandbdir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/schema"
)

// TestSilenceFromRecordsAndFiles judges a run without an exit record by
// both the times its own records carry and its log's modification time: it
// is live (RUNNING) only when both are within crashed-after. A folder
// copied without its times (new mtime, old records) holds a crashed run; a
// log untouched for long is silent whatever its records say. The light
// header (ls, sync's plan) judges as the full read does.
func TestSilenceFromRecordsAndFiles(t *testing.T) {
	cases := []struct {
		name           string
		records, files time.Duration // ages of the last record and of the log's mtime
		after          time.Duration
		status         schema.RunStatus
		state          string
	}{
		{"both recent", time.Minute, time.Minute, 0, schema.StatusRunning, "running"},
		{"copied folder: old records, new mtime", time.Hour, time.Minute, 0, schema.StatusFailed, "crashed"},
		{"copied folder: records years old", 4 * 365 * 24 * time.Hour, 0, 0, schema.StatusFailed, "crashed"},
		{"records recent, log untouched an hour", time.Minute, time.Hour, 0, schema.StatusFailed, "crashed"},
		{"both an hour old, threshold 2h", time.Hour, time.Hour, 2 * time.Hour, schema.StatusRunning, "running"},
		{"both a minute old, threshold 30s", time.Minute, time.Minute, 30 * time.Second, schema.StatusFailed, "crashed"},
	}
	// The header reads the log's last blocks: a log ending in a large
	// record without a time (here a 200 KiB config update after the last
	// history row) is read whole for its latest time, so the header judges
	// as the full read does. The run started an hour ago.
	bigConfig, err := wandbfile.AppendRecord(nil, &wandbfile.Record{Kind: wandbfile.KindConfig, Config: &wandbfile.Config{
		Update: []wandbfile.Item{{Key: "big", ValueJSON: strconv.Quote(strings.Repeat("x", 200<<10))}}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("untimed tail, records recent", func(t *testing.T) {
		root := t.TempDir()
		dir := filepath.Join(root, "wandb", "offline-run-20260101_000000-bigtail1")
		last := time.Now().Add(-time.Minute)
		writeRunFolder(t, dir, runRecord("bigtail1", "silence", time.Now().Add(-time.Hour)),
			historyRecord(0, float64(last.UnixMilli())/1000, map[string]string{"loss": "1"}), bigConfig)
		src, err := New(Config{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		full, light := allRuns(t, src), headers(t, src)
		if len(full) != 1 || len(light) != 1 {
			t.Fatalf("%d runs, %d headers, want 1", len(full), len(light))
		}
		for what, r := range map[string]schema.Run{"run": full[0], "header": light[0]} {
			if r.Status != schema.StatusRunning || tagValue(r, "wandb.state") != "running" {
				t.Errorf("%s: status %s, wandb.state %q; want RUNNING, running", what, r.Status, tagValue(r, "wandb.state"))
			}
		}
	})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			id := fmt.Sprintf("silent%02d", i)
			dir := filepath.Join(root, "wandb", "offline-run-20260101_000000-"+id)
			last := time.Now().Add(-c.records)
			writeRunFolder(t, dir, runRecord(id, "silence", last.Add(-time.Minute)),
				historyRecord(0, float64(last.Add(-30*time.Second).UnixMilli())/1000, map[string]string{"loss": "1"}),
				historyRecord(1, float64(last.UnixMilli())/1000, map[string]string{"loss": "0.5"}))
			mtime := time.Now().Add(-c.files)
			if err := os.Chtimes(filepath.Join(dir, "run-"+id+".wandb"), mtime, mtime); err != nil {
				t.Fatal(err)
			}
			src, err := New(Config{Root: root, CrashedAfter: c.after})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			full := allRuns(t, src)
			light := headers(t, src)
			if len(full) != 1 || len(light) != 1 {
				t.Fatalf("%d runs, %d headers, want 1", len(full), len(light))
			}
			for what, r := range map[string]schema.Run{"run": full[0], "header": light[0]} {
				if r.Status != c.status || tagValue(r, "wandb.state") != c.state {
					t.Errorf("%s: status %s, wandb.state %q; want %s, %q", what, r.Status, tagValue(r, "wandb.state"), c.status, c.state)
				}
			}
		})
	}
}
