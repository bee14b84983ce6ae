package state

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLedgerRoundTripAndScope(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out", Options: "include=a"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.Get("wandb:x"); ok || err != nil {
		t.Fatalf("empty ledger: ok=%v err=%v", ok, err)
	}
	l.Scrub = func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Put(Entry{Origin: "wandb:r" + string(rune('a'+i)), Status: "committed", Attempts: 1, Fingerprint: "fp"}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if err := l.Put(Entry{Origin: "wandb:bad", Status: "failed", Attempts: 3, LastError: "token hunter2 rejected"}); err != nil {
		t.Fatal(err)
	}
	l.Close()

	l, err = Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := l.Entries()
	if err != nil || len(entries) != 21 {
		t.Fatalf("reopened: %d entries, err %v", len(entries), err)
	}
	e, ok, _ := l.Get("wandb:bad")
	if !ok || e.Status != "failed" || e.Attempts != 3 || e.LastError != "token *** rejected" {
		t.Fatalf("entry = %+v", e)
	}
	l.Close()

	other, err := Open(path, Job{Source: "wandb:/data", Sink: "parquet:/out", Options: "include=b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if es, _ := other.Entries(); len(es) != 0 {
		t.Fatalf("a job with other options sees %d entries of another job", len(es))
	}
	other.Close()

	l, _ = Open(path, job, true)
	if es, _ := l.Entries(); len(es) != 0 {
		t.Fatalf("restart kept %d entries", len(es))
	}
	l.Close()
}

// TestCursorsKeptWithTheEntry: the cursors of a committed run come back
// with it after a reopen, are replaced by a later Put and dropped by one
// without a mark and by a restart.
func TestCursorsKeptWithTheEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "mlflow+http://h"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	keys := []KeyCursor{{Key: "loss", Count: 3, LastStep: 2, LastTime: 1700, Digest: "abc"}, {Key: "ünï", Count: 1, Digest: "d"}}
	if err := l.Put(Entry{Origin: "wandb:r", Status: "committed", Mark: "m1", Keys: keys}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(path, job, false); err != nil {
		t.Fatal(err)
	}
	e, ok, err := l.Get("wandb:r")
	if err != nil || !ok || e.Mark != "m1" || !reflect.DeepEqual(e.Keys, keys) {
		t.Fatalf("Get = %+v, %v, %v; want mark m1 and keys %+v", e, ok, err, keys)
	}
	if err := l.Put(Entry{Origin: "wandb:r", Status: "failed"}); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := l.Get("wandb:r"); e.Mark != "" || e.Keys != nil {
		t.Fatalf("a Put without a mark kept the cursors: %+v", e)
	}
	if err := l.Put(Entry{Origin: "wandb:r", Status: "committed", Mark: "m2", Keys: keys[:1]}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if l, err = Open(path, job, true); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var n int
	if err := l.db.QueryRow(`SELECT count(*) FROM cursors`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("restart kept %d cursor rows (%v)", n, err)
	}
}

// TestPreviousStart checks that each Open of a job tells when the one
// before it started, that a new job and a restarted one have none, and
// that another job's starts do not count.
func TestPreviousStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	open := func(j Job, restart bool) time.Time {
		t.Helper()
		l, err := Open(path, j, restart)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.PreviousStart()
	}
	before := time.Now()
	if p := open(job, false); !p.IsZero() {
		t.Fatalf("first open: previous start %v, want none", p)
	}
	first := time.Now()
	p := open(job, false)
	if p.Before(before.Add(-time.Millisecond)) || p.After(first) {
		t.Errorf("second open: previous start %v, want between %v and %v", p, before, first)
	}
	if p := open(Job{Source: "wandb:/other", Sink: "parquet:/out"}, false); !p.IsZero() {
		t.Errorf("another job: previous start %v, want none", p)
	}
	second := time.Now()
	if p := open(job, false); p.Before(first) || p.After(second) {
		t.Errorf("third open: previous start %v, want between %v and %v", p, first, second)
	}
	if p := open(job, true); !p.IsZero() {
		t.Errorf("restart: previous start %v, want none", p)
	}
}

// TestNameColumn checks that entries keep the run's name, and that a
// ledger made before the name column existed is opened, its entries read
// with no name, and written with one.
func TestNameColumn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	for _, q := range []string{
		`CREATE TABLE runs (job TEXT NOT NULL, origin TEXT NOT NULL, dest_id TEXT NOT NULL, status TEXT NOT NULL,
		  attempts INTEGER NOT NULL, last_error TEXT NOT NULL, fingerprint TEXT NOT NULL, updated TEXT NOT NULL,
		  PRIMARY KEY (job, origin))`,
		`INSERT INTO runs VALUES ('` + job.Key() + `', 'wandb:old', 'd1', 'committed', 1, '', 'fp', '2026-01-01T00:00:00Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if e, ok, err := l.Get("wandb:old"); !ok || err != nil || e.Name != "" || e.Fingerprint != "fp" {
		t.Fatalf("old entry: %+v %v %v", e, ok, err)
	}
	if err := l.Put(Entry{Origin: "wandb:new", Status: "committed", Name: "nightly run"}); err != nil {
		t.Fatal(err)
	}
	es, err := l.Entries()
	if err != nil || len(es) != 2 || es[0].Name != "nightly run" || es[1].Name != "" {
		t.Fatalf("entries %+v, %v", es, err)
	}
}

// TestGetSnapshot checks that Gets answered from the snapshot the first
// Get reads equal Gets that query the file (a Ledger opened afresh, with
// the snapshot turned off), before and after Puts through the snapshotted
// Ledger: new entries, replaced ones, cursors dropped, scrubbed errors.
// Head gives the same entries without their cursors, from the snapshot
// and from the file.
func TestGetSnapshot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Scrub = func(s string) string { return strings.ReplaceAll(s, "secret", "***") }
	keys := []KeyCursor{{Key: "loss", Count: 3, LastStep: 2, LastTime: 1700000000000, Digest: "d1"}}
	put := func(e Entry) {
		t.Helper()
		if err := l.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	put(Entry{Origin: "e/p/a", DestID: "a1", Status: "committed", Fingerprint: "f1", Name: "run a", Mark: "m1", Keys: keys})
	put(Entry{Origin: "e/p/b", Status: "failed", Attempts: 2, LastError: "no secret here"})
	origins := []string{"e/p/a", "e/p/b", "e/p/c", "e/p/d"}
	check := func(when string) {
		t.Helper()
		ref, err := Open(path, job, false)
		if err != nil {
			t.Fatal(err)
		}
		defer ref.Close()
		ref.snapDone = true // one query a Get, as before snapshots
		for _, o := range origins {
			got, gok, gerr := l.Get(o)
			want, wok, werr := ref.Get(o)
			if gerr != nil || werr != nil {
				t.Fatalf("%s: Get %s: %v, %v", when, o, gerr, werr)
			}
			if gok != wok || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: Get %s from the snapshot = %+v (%v), from the file %+v (%v)", when, o, got, gok, want, wok)
			}
			// Head is Get without the cursors, from the snapshot; from the
			// file it answers as Get.
			head, hok, herr := l.Head(o)
			noKeys := want
			noKeys.Keys = nil
			if herr != nil || hok != wok || !reflect.DeepEqual(head, noKeys) {
				t.Errorf("%s: Head %s from the snapshot = %+v (%v, %v), want %+v", when, o, head, hok, herr, noKeys)
			}
			if head, hok, herr := ref.Head(o); herr != nil || hok != wok || !reflect.DeepEqual(head, noKeys) {
				t.Errorf("%s: Head %s from the file = %+v (%v, %v), want %+v", when, o, head, hok, herr, noKeys)
			}
		}
		if l.snap == nil {
			t.Errorf("%s: no snapshot taken", when)
		}
	}
	check("before Puts")
	put(Entry{Origin: "e/p/c", DestID: "c1", Status: "committed", Fingerprint: "f3", Mark: "m3", Keys: keys})
	put(Entry{Origin: "e/p/a", DestID: "a2", Status: "committed", Fingerprint: "f2", Name: "run a"}) // cursors dropped
	put(Entry{Origin: "e/p/b", Status: "failed", Attempts: 3, LastError: "a secret error"})
	check("after Puts")
	if e, _, _ := l.Get("e/p/b"); e.LastError != "a *** error" {
		t.Errorf("error text %q, want it scrubbed", e.LastError)
	}
}

// TestGapsKeptWithTheEntry: the source's gaps a run was committed with
// (damage, files not copied) come back with it, from the snapshot, from a
// query and after a reopen, scrubbed; a later Put without gaps clears them.
// An old ledger (no gaps column, as in TestNameColumn) opens with none.
func TestGapsKeptWithTheEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	l.Scrub = func(s string) string { return strings.ReplaceAll(s, "hunter2", "***") }
	want := Entry{Origin: "wandb:r", Status: "committed", Fingerprint: "fp",
		Damage:       []string{"run-r.wandb: offset 335628: bad CRC"},
		FileProblems: []string{"wandb-artifacts/a/v0/preds.table.json: content not found (hunter2)"}}
	if err := l.Put(want); err != nil {
		t.Fatal(err)
	}
	want.FileProblems = []string{"wandb-artifacts/a/v0/preds.table.json: content not found (***)"}
	check := func(how string, l *Ledger) {
		t.Helper()
		for _, get := range []func(string) (Entry, bool, error){l.Get, l.Head} {
			e, ok, err := get("wandb:r")
			if !ok || err != nil || !reflect.DeepEqual(e.Damage, want.Damage) || !reflect.DeepEqual(e.FileProblems, want.FileProblems) {
				t.Errorf("%s: %+v %v %v", how, e, ok, err)
			}
		}
	}
	check("snapshot", l)
	l.Close()
	l, err = Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	check("reopened", l)
	l.snap, l.snapDone = nil, true // one query an entry
	check("queried", l)
	if err := l.Put(Entry{Origin: "wandb:r", Status: "committed", Fingerprint: "fp2"}); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := l.Get("wandb:r"); e.Damage != nil || e.FileProblems != nil {
		t.Errorf("gaps kept after a Put without them: %+v", e)
	}
	l.Close()
}

// TestGetReadsCursorsFromTheFile: the snapshot holds no cursors (kept for
// every run they were most of what a job of many runs held:
// docs/WANDB-CLOUD.md gap 6); Get reads an entry's cursors from the file
// with their mark, so the mark it returns is the one of the keys it
// returns, even when another Ledger of the same job rewrote them after the
// snapshot was taken.
func TestGetReadsCursorsFromTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	k1 := []KeyCursor{{Key: "loss", Count: 3, LastStep: 2, LastTime: 1700, Digest: "d1", Hash: "h1"}}
	k2 := []KeyCursor{{Key: "loss", Count: 5, LastStep: 4, LastTime: 1900, Digest: "d2"}, {Key: "acc", Count: 1, Digest: "d3"}}
	if err := l.Put(Entry{Origin: "e/p/a", Status: "committed", Fingerprint: "f1", Mark: "m1", Keys: k1}); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := l.Get("e/p/a"); err != nil || !ok || e.Mark != "m1" || !reflect.DeepEqual(e.Keys, k1) {
		t.Fatalf("Get = %+v, %v, %v; want m1 and %+v", e, ok, err, k1)
	}
	other, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Put(Entry{Origin: "e/p/a", Status: "committed", Fingerprint: "f2", Mark: "m2", Keys: k2}); err != nil {
		t.Fatal(err)
	}
	e, ok, err := l.Get("e/p/a")
	if err != nil || !ok || e.Mark != "m2" || !reflect.DeepEqual(e.Keys, k2) {
		t.Fatalf("Get after another Ledger's Put = %+v, %v, %v; want mark m2 with keys %+v", e, ok, err, k2)
	}
	if err := other.Put(Entry{Origin: "e/p/a", Status: "failed"}); err != nil {
		t.Fatal(err)
	}
	if e, ok, err := l.Get("e/p/a"); err != nil || !ok || e.Mark != "" || e.Keys != nil {
		t.Fatalf("Get after another Ledger dropped the cursors = %+v, %v, %v; want no mark and no keys", e, ok, err)
	}
}

// TestPutKeepsNoNewEntry: the entries a job adds (runs new to it) are
// written through, not held in the snapshot (held, they grew with the runs
// of a first copy: docs/WANDB-CLOUD.md gap 6), and Get and Head still
// answer for them exactly as a Ledger reading every entry from the file;
// an entry the snapshot held is kept current by Put.
func TestPutKeepsNoNewEntry(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Scrub = func(s string) string { return strings.ReplaceAll(s, "secret", "***") }
	if err := l.Put(Entry{Origin: "e/p/old", Status: "committed", Fingerprint: "f0", Name: "old"}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := l.Get("e/p/nothing"); ok || err != nil { // takes the snapshot: e/p/old
		t.Fatalf("Get of an origin never put = %v, %v", ok, err)
	}
	const n = 500
	var origins []string
	for i := range n {
		o := fmt.Sprintf("e/p/r%04d", i)
		origins = append(origins, o)
		e := Entry{Origin: o, DestID: "d" + o, Status: "committed", Fingerprint: "f" + o, Name: "run " + o, Attempts: 1 + i%3}
		switch i % 4 {
		case 1:
			e.Mark, e.Keys = "m", []KeyCursor{{Key: "loss", Count: int64(i), LastStep: int64(i), Digest: "d"}}
		case 2:
			e.Status, e.LastError = "failed", "a secret error"
		case 3:
			e.Damage, e.FileProblems = []string{"bad CRC"}, []string{"f.txt: secret gone"}
		}
		if err := l.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Put(Entry{Origin: "e/p/old", Status: "committed", Fingerprint: "f1", Name: "old, renamed"}); err != nil {
		t.Fatal(err)
	}
	if len(l.snap) != 1 {
		t.Errorf("the snapshot holds %d entries after %d Puts of new runs, want 1 (the entry it held)", len(l.snap), n)
	}
	ref, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ref.snapDone = true // one query a Get
	for _, o := range append(origins, "e/p/old", "e/p/nothing") {
		got, gok, gerr := l.Get(o)
		want, wok, werr := ref.Get(o)
		if gerr != nil || werr != nil || gok != wok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Get %s = %+v (%v, %v), from the file %+v (%v, %v)", o, got, gok, gerr, want, wok, werr)
		}
		want.Keys = nil
		if head, hok, herr := l.Head(o); herr != nil || hok != wok || !reflect.DeepEqual(head, want) {
			t.Fatalf("Head %s = %+v (%v, %v), want %+v", o, head, hok, herr, want)
		}
	}
	if e, _, _ := l.Head("e/p/old"); e.Name != "old, renamed" || e.Fingerprint != "f1" {
		t.Errorf("the held entry after its Put = %+v, want it current", e)
	}
}

// TestSnapshotBounded: a job of more than snapshotMax entries is not read
// whole (what a sync over a ledger of many runs held grew with them, about
// 0.4 KB an entry): Get and Head read each entry from the file, and answer
// as a Ledger holding the snapshot does, Head without the cursors' keys.
func TestSnapshotBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ledger.db")
	job := Job{Source: "wandb:/data", Sink: "parquet:/out"}
	l, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 300
	var origins []string
	for i := range n {
		o := fmt.Sprintf("e/p/r%04d", i)
		origins = append(origins, o)
		e := Entry{Origin: o, DestID: "d" + o, Status: "committed", Fingerprint: "f" + o, Name: "run " + o}
		if i%2 == 1 {
			e.Mark, e.Keys = "m", []KeyCursor{{Key: "loss", Count: int64(i), LastStep: int64(i), Digest: "d"}}
		}
		if i%3 == 2 {
			e.Damage = []string{"bad CRC"}
		}
		if err := l.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	origins = append(origins, "e/p/nothing")
	held, err := Open(path, job, false) // snapshotMax as it is: held whole
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, _, err := held.Get(origins[0]); err != nil { // takes the snapshot
		t.Fatal(err)
	}
	defer func(m int) { snapshotMax = m }(snapshotMax)
	snapshotMax = n - 1
	bounded, err := Open(path, job, false)
	if err != nil {
		t.Fatal(err)
	}
	defer bounded.Close()
	for _, o := range origins {
		got, gok, gerr := bounded.Get(o)
		want, wok, werr := held.Get(o)
		if gerr != nil || werr != nil || gok != wok || !reflect.DeepEqual(got, want) {
			t.Fatalf("Get %s = %+v (%v, %v), from the snapshot %+v (%v, %v)", o, got, gok, gerr, want, wok, werr)
		}
		head, hok, herr := bounded.Head(o)
		wantHead, _, _ := held.Head(o)
		if herr != nil || hok != wok || !reflect.DeepEqual(head, wantHead) || head.Keys != nil {
			t.Fatalf("Head %s = %+v (%v, %v), from the snapshot %+v", o, head, hok, herr, wantHead)
		}
	}
	if bounded.snap != nil || held.snap == nil {
		t.Errorf("snapshot held: %d entries over the bound, %d under it; want none over it", len(bounded.snap), len(held.snap))
	}
}
