package wandbdir

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/internal/wandbfile"
)

// TestHeaderNamesLaterRunRecord: a run renamed in code after wandb.init
// (the SDK writes a later run record) has the later name in its light
// header (ls, the sync plan, the report) as in the full read, wherever the
// later record lies: in a log of at most tailBytes (read once at
// discovery), and in a larger log among its first records, in its middle
// (before the last tailBytes) and in its tail; the name also comes back
// from the log cache. Without a later record the first name stays.
func TestHeaderNamesLaterRunRecord(t *testing.T) {
	start := time.Now().Add(-2 * time.Hour)
	rec := func(r *wandbfile.Record) []byte {
		b, err := wandbfile.AppendRecord(nil, r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	run := func(id, name string) []byte {
		return rec(&wandbfile.Record{Kind: wandbfile.KindRun, Run: &wandbfile.Run{RunID: id, Project: "names",
			DisplayName: name, StartTime: start}})
	}
	// 200 KiB without a run record: more than the tail a header reads.
	big := rec(&wandbfile.Record{Kind: wandbfile.KindConfig, Config: &wandbfile.Config{
		Update: []wandbfile.Item{{Key: "big", ValueJSON: strconv.Quote(strings.Repeat("x", 200<<10))}}}})
	rows := func(from int) [][]byte {
		var out [][]byte
		for i := from; i < from+3; i++ {
			out = append(out, historyRecord(int64(i), float64(start.Add(time.Duration(i)*time.Second).UnixMilli())/1000,
				map[string]string{"loss": "1"}))
		}
		return out
	}
	exit := rec(&wandbfile.Record{Kind: wandbfile.KindExit, Exit: &wandbfile.Exit{ExitCode: 0, Runtime: 10}})
	join := func(parts ...[][]byte) [][]byte {
		var out [][]byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	one := func(b []byte) [][]byte { return [][]byte{b} }
	cases := []struct {
		id      string
		records [][]byte
		want    string
	}{
		{"small0", join(one(run("small0", "first")), rows(0), one(run("small0", "later")), rows(3), one(exit)), "later"},
		{"early00", join(one(run("early00", "first")), one(run("early00", "later")), rows(0), one(big), rows(3), one(exit)), "later"},
		{"middle0", join(one(run("middle0", "first")), rows(0), one(run("middle0", "later")), one(big), rows(3), one(exit)), "later"},
		{"tail000", join(one(run("tail000", "first")), rows(0), one(big), one(run("tail000", "later")), rows(3), one(exit)), "later"},
		{"twice00", join(one(run("twice00", "first")), one(run("twice00", "second")), one(big), one(run("twice00", "")),
			one(run("twice00", "third")), one(big), one(exit)), "third"},
		{"kept000", join(one(run("kept000", "first")), rows(0), one(big), rows(3), one(exit)), "first"},
	}
	root := t.TempDir()
	for _, c := range cases {
		writeRunFolder(t, filepath.Join(root, "wandb", "offline-run-20260101_000000-"+c.id), c.records...)
	}
	full := allRuns(t, sourceAt(t, root))
	if len(full) != len(cases) {
		t.Fatalf("%d runs, want %d", len(full), len(cases))
	}
	want := map[string]string{}
	for _, c := range cases {
		want[c.id] = c.want
	}
	for _, r := range full {
		if r.Name != want[idOf(r.Origin.ID)] {
			t.Errorf("%s: run named %q, want %q", r.Origin.ID, r.Name, want[idOf(r.Origin.ID)])
		}
	}
	// Without a cache, then with one twice: the second takes every log's
	// entry from the cache the first wrote, opening no log.
	shortRacyWindow(t)
	tick()
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	opens := countLogOpens(t)
	for _, how := range []string{"no cache", "first with cache", "second with cache"} {
		s := sourceAt(t, root)
		if how != "no cache" {
			s = cachedSourceAt(t, root, ledger, false)
		}
		light, _ := plan(t, s)
		if len(light) != len(cases) {
			t.Fatalf("%s: %d headers, want %d", how, len(light), len(cases))
		}
		for _, h := range light {
			if h.Name != want[idOf(h.Origin.ID)] {
				t.Errorf("%s: %s: header named %q, want %q", how, h.Origin.ID, h.Name, want[idOf(h.Origin.ID)])
			}
		}
		if n := opens.take(); how == "second with cache" && len(n) != 0 {
			t.Errorf("%s: opened %v, want no log", how, n)
		}
	}
}

// idOf is the run id at the end of a run's origin id.
func idOf(origin string) string { return origin[strings.LastIndex(origin, "/")+1:] }
