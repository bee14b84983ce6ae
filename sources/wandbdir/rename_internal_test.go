package wandbdir

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runferry/runferry/engine/state"
	"github.com/runferry/runferry/engine/transfer"
	"github.com/runferry/runferry/internal/wandbfile"
	"github.com/runferry/runferry/sinks"
	"github.com/runferry/runferry/sinks/memory"
	"github.com/runferry/runferry/sources"
)

// renameRecords builds the records of the synthetic logs of the rename
// tests: run records with a display name, history rows, filler and exit.
type renameRecords struct {
	t     *testing.T
	start time.Time
}

func (b renameRecords) rec(r *wandbfile.Record) []byte {
	out, err := wandbfile.AppendRecord(nil, r)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// run is a run record naming the run name ("" sets no name).
func (b renameRecords) run(id, name string) []byte {
	return b.rec(&wandbfile.Record{Kind: wandbfile.KindRun, Run: &wandbfile.Run{RunID: id, Project: "names",
		DisplayName: name, StartTime: b.start}})
}

// big is a 200 KiB config record: more than the first blocks discovery
// reads and more than the tail a header reads.
func (b renameRecords) big() []byte {
	return b.rec(&wandbfile.Record{Kind: wandbfile.KindConfig, Config: &wandbfile.Config{
		Update: []wandbfile.Item{{Key: "big", ValueJSON: strconv.Quote(strings.Repeat("x", 200<<10))}}}})
}

// rows are three history rows from step from.
func (b renameRecords) rows(from int) []byte {
	return historyRecord(int64(from), float64(b.start.Add(time.Duration(from)*time.Second).UnixMilli())/1000,
		map[string]string{"loss": "1"})
}

func (b renameRecords) exit() []byte {
	return b.rec(&wandbfile.Record{Kind: wandbfile.KindExit, Exit: &wandbfile.Exit{ExitCode: 0, Runtime: 10}})
}

// syncMemory is one `runferry sync` of root into sink with the ledger at
// ledger, the source opened with the log cache beside it as the CLI opens
// it (cached), or without one; it returns the report and the bytes this
// process read meanwhile (readBytes).
func syncMemory(t *testing.T, root, ledger string, sink *memory.Sink, cached bool) (*transfer.Report, int64) {
	t.Helper()
	src, err := New(Config{Root: root, CrashedAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if cached {
		src.cache = newLogCache(sources.InputCache{Path: ledger}, src.cfg.Root, src.now)
	}
	l, err := state.Open(ledger, state.Job{Source: "wandb:" + root, Sink: "memory"}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := readBytes(t)
	rep, err := transfer.Copy(context.Background(), src, sink, transfer.Options{Ledger: l, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil { // writes the log cache
		t.Fatal(err)
	}
	return rep, readBytes(t) - before
}

// TestHeaderNamesRenamedRun: a run renamed in code after wandb.init (the
// SDK writes a later run record) is named, wherever the later record lies:
//   - by the full read and the copy (the report's rows, the ledger's
//     entries, the run the destination holds): always by the later name;
//   - by the light header (ls, the plan, the report's rows of unchanged
//     runs) read without a log cache: by the later name when the record
//     lies in a log of at most tailBytes, among the first blocks discovery
//     reads or in the tail the header reads; by the name among the first
//     records when it lies in the middle of a large log (not read);
//   - by the light header from the log cache after the copy read the log:
//     by the later name, opening no log;
//   - in a no-change sync without a cache: by the later name (the ledger's).
func TestHeaderNamesRenamedRun(t *testing.T) {
	shortRacyWindow(t)
	b := renameRecords{t: t, start: time.Now().Add(-2 * time.Hour)}
	join := func(parts ...[]byte) [][]byte { return parts }
	cases := []struct {
		id      string
		records [][]byte
		full    string // the name the whole log gives
		header  string // the light header's without a cache
	}{
		{"small0", join(b.run("small0", "first"), b.rows(0), b.run("small0", "later"), b.rows(3), b.exit()), "later", "later"},
		{"early00", join(b.run("early00", "first"), b.rows(0), b.run("early00", "later"), b.big(), b.rows(3), b.exit()), "later", "later"},
		{"middle0", join(b.run("middle0", "first"), b.rows(0), b.big(), b.run("middle0", "later"), b.big(), b.rows(3), b.exit()), "later", "first"},
		{"tail000", join(b.run("tail000", "first"), b.rows(0), b.big(), b.run("tail000", "later"), b.rows(3), b.exit()), "later", "later"},
		{"twice00", join(b.run("twice00", "first"), b.run("twice00", "second"), b.big(), b.run("twice00", ""),
			b.run("twice00", "third"), b.big(), b.exit()), "third", "second"},
		{"kept000", join(b.run("kept000", "first"), b.rows(0), b.big(), b.rows(3), b.exit()), "first", "first"},
	}
	root := t.TempDir()
	full, header := map[string]string{}, map[string]string{}
	for _, c := range cases {
		writeRunFolder(t, filepath.Join(root, "wandb", "offline-run-20260101_000000-"+c.id), c.records...)
		full[c.id], header[c.id] = c.full, c.header
	}
	tick() // the logs' change times before the sources' start
	check := func(how string, got map[string]string, want map[string]string) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %d runs %v, want %d", how, len(got), got, len(want))
		}
		for id, name := range got {
			if name != want[id] {
				t.Errorf("%s: %s named %q, want %q", how, id, name, want[id])
			}
		}
	}
	names := func(how string, s *Source) map[string]string {
		light, _ := plan(t, s)
		got := map[string]string{}
		for _, h := range light {
			got[idOf(h.Origin.ID)] = h.Name
		}
		return got
	}
	got := map[string]string{}
	for _, r := range allRuns(t, sourceAt(t, root)) {
		got[idOf(r.Origin.ID)] = r.Name
	}
	check("full read", got, full)
	check("headers without cache", names("no cache", sourceAt(t, root)), header)

	ledger := filepath.Join(t.TempDir(), "ledger.db")
	sink := memory.New(sinks.Limits{})
	rows := func(rep *transfer.Report) map[string]string {
		got := map[string]string{}
		for _, r := range rep.Runs {
			got[idOf(r.Origin)] = r.Name
		}
		return got
	}
	rep, _ := syncMemory(t, root, ledger, sink, true)
	if rep.Totals.Committed != len(cases) {
		t.Fatalf("first sync: %+v, want %d committed", rep.Totals, len(cases))
	}
	check("first sync's report", rows(rep), full)
	got = map[string]string{}
	for _, rd := range sink.Dataset().Runs {
		got[idOf(rd.Run.Origin.ID)] = rd.Run.Name
	}
	check("the copy", got, full)
	l, err := state.Open(ledger, state.Job{Source: "wandb:" + root, Sink: "memory"}, false)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := l.Entries()
	l.Close()
	if err != nil {
		t.Fatal(err)
	}
	got = map[string]string{}
	for _, e := range entries {
		got[idOf(e.Origin)] = e.Name
	}
	check("the ledger", got, full)

	// The next job's headers come from the cache the copy wrote.
	opens := countLogOpens(t)
	check("headers from the cache", names("cache", cachedSourceAt(t, root, ledger, false)), full)
	if n := opens.take(); len(n) != 0 {
		t.Errorf("headers from the cache opened %v, want no log", n)
	}
	for _, cached := range []bool{true, false} {
		rep, _ := syncMemory(t, root, ledger, sink, cached)
		if rep.Totals.Committed != 0 || rep.Totals.Unchanged != len(cases) {
			t.Fatalf("sync with nothing changed (cache %v): %+v, want all unchanged", cached, rep.Totals)
		}
		check(fmt.Sprintf("no-change sync's report (cache %v)", cached), rows(rep), full)
	}
}

// TestFirstSyncReadsLargeLogOnce: the first sync of a large log (about 10
// MB) renamed in its middle, as runferry sync opens it (the log cache
// beside the ledger), reads the log once, counted by the kernel as
// TestNoChangeSyncReadsHeadersOnly counts: the light header reads its first
// blocks and its tail, the copy reads it whole, and the later name the
// copy learns is in the report and, through the log cache, in the next
// sync's headers; that sync reads a small part of the log. A sync without
// the cache names it by the ledger's name and reads no more either.
func TestFirstSyncReadsLargeLogOnce(t *testing.T) {
	shortRacyWindow(t)
	b := renameRecords{t: t, start: time.Unix(1735689600, 0)}
	root := t.TempDir()
	dir := filepath.Join(root, "run-20250101_000000-big1")
	values := map[string]string{}
	for k := range 20 {
		values[fmt.Sprintf("layer_%02d/grad_norm", k)] = "0.123456789012345"
	}
	records := [][]byte{b.run("big1", "first")}
	for step := range int64(12000) {
		if step == 6000 {
			records = append(records, b.run("big1", "later"))
		}
		records = append(records, historyRecord(step, float64(b.start.Unix())+float64(step)/10, values))
	}
	records = append(records, exitRecord(0, 1200))
	writeRunFolder(t, dir, records...)
	fi, err := os.Stat(filepath.Join(dir, "run-big1.wandb"))
	if err != nil {
		t.Fatal(err)
	}
	logSize := fi.Size()
	if logSize < 8<<20 {
		t.Fatalf("log of %d bytes: want a large one", logSize)
	}
	tick()
	ledger := filepath.Join(t.TempDir(), "ledger.db")
	sink := memory.New(sinks.Limits{})
	named := func(how string, rep *transfer.Report) {
		t.Helper()
		if len(rep.Runs) != 1 || rep.Runs[0].Name != "later" {
			t.Errorf("%s: report rows %+v, want one run named later", how, rep.Runs)
		}
	}
	rep, read := syncMemory(t, root, ledger, sink, true)
	if rep.Totals.Committed != 1 {
		t.Fatalf("first sync: %+v", rep.Totals)
	}
	named("first sync", rep)
	t.Logf("first sync read %d bytes of a %d-byte log", read, logSize)
	if read < logSize || read > logSize+logSize/8 {
		t.Errorf("first sync read %d bytes; the log has %d: want it read once", read, logSize)
	}
	for _, cached := range []bool{true, false} {
		rep, read = syncMemory(t, root, ledger, sink, cached)
		if rep.Totals.Committed != 0 || rep.Totals.Unchanged != 1 {
			t.Fatalf("sync with nothing changed (cache %v): %+v", cached, rep.Totals)
		}
		named(fmt.Sprintf("sync with nothing changed (cache %v)", cached), rep)
		t.Logf("sync with nothing changed (cache %v) read %d bytes", cached, read)
		if read > logSize/8 {
			t.Errorf("sync with nothing changed (cache %v) read %d bytes; the log has %d", cached, read, logSize)
		}
	}
	// The cache the syncs kept names it by the copy's name; the header
	// without a cache by the name among the log's first records.
	for _, cached := range []bool{true, false} {
		s := sourceAt(t, root)
		if cached {
			s = cachedSourceAt(t, root, ledger, false)
		}
		light, _ := plan(t, s)
		want := map[bool]string{true: "later", false: "first"}[cached]
		if len(light) != 1 || light[0].Name != want {
			t.Errorf("headers (cache %v): %+v, want the run named %q", cached, light, want)
		}
	}
}

// idOf is the run id at the end of a run's origin id (or origin string).
func idOf(origin string) string { return origin[strings.LastIndex(origin, "/")+1:] }
