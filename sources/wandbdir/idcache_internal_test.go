package wandbdir

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/gob"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/runferry/runferry/schema"
	"github.com/runferry/runferry/sources"
)

// logOpens counts, by path, the `.wandb` logs discovery and the light
// headers open (openLog) until the test ends.
type logOpens struct {
	mu sync.Mutex
	n  map[string]int
}

func countLogOpens(t *testing.T) *logOpens {
	t.Helper()
	c := &logOpens{n: map[string]int{}}
	old := openLog
	openLog = func(path string) (*os.File, error) {
		c.mu.Lock()
		c.n[path]++
		c.mu.Unlock()
		return old(path)
	}
	t.Cleanup(func() { openLog = old })
	return c
}

// take returns the counts so far and starts again from none.
func (c *logOpens) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.n
	c.n = map[string]int{}
	return n
}

// shortRacyWindow makes a log written just now eligible for the cache
// (the tests wait out the file system's clock tick themselves).
func shortRacyWindow(t *testing.T) {
	old := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = old })
}

// tick waits longer than the file system's timestamp granularity (a
// kernel clock tick), so that a write after it has another change time.
func tick() { time.Sleep(30 * time.Millisecond) }

// cachedSourceAt is a source of root as a sync with the ledger at ledger
// opens it (sources.InputCache).
func cachedSourceAt(t *testing.T, root, ledger string, fresh bool) *Source {
	t.Helper()
	s := sourceAt(t, root)
	s.cache = newLogCache(sources.InputCache{Path: ledger, Fresh: fresh}, s.cfg.Root, s.now)
	return s
}

// plan reads what a sync's plan reads of every run (its light header and
// fingerprint) and closes the source, which writes its cache.
func plan(t *testing.T, s *Source) (headers []schema.Run, fps []string) {
	t.Helper()
	ctx := context.Background()
	for e, err := range s.Experiments(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for h, err := range s.RunHeaders(ctx, e.Origin) {
			if err != nil {
				t.Fatal(err)
			}
			fp, err := s.Fingerprint(ctx, h)
			if err != nil {
				t.Fatal(err)
			}
			headers, fps = append(headers, h), append(fps, fp)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return headers, fps
}

// writeCacheRun writes a finished run folder under root whose log ends
// with the exit code code; logs of equal steps and codes of one digit have
// equal sizes.
func writeCacheRun(t *testing.T, root, id string, steps, code int) string {
	t.Helper()
	dir := filepath.Join(root, "run-20250101_000000-"+id)
	start := time.Unix(1735689600, 0)
	recs := [][]byte{runRecord(id, "p", start)}
	for i := range steps {
		recs = append(recs, historyRecord(int64(i), float64(start.Unix()+int64(i)), map[string]string{"loss": "0.5"}))
	}
	writeRunFolder(t, dir, append(recs, exitRecord(code, 7))...)
	return filepath.Join(dir, "run-"+id+".wandb")
}

// TestLogCacheOpensNoLog: a second plan of unchanged run folders, in a new
// source as the next sync's process, opens no log, and gives the headers
// and fingerprints of the first plan and of a source without cache. A
// third with Fresh (--force, --restart) reads every log again.
func TestLogCacheOpensNoLog(t *testing.T) {
	shortRacyWindow(t)
	root, ledger := t.TempDir(), filepath.Join(t.TempDir(), "ledger.db")
	var logs []string
	for i := range 6 {
		logs = append(logs, writeCacheRun(t, root, fmt.Sprintf("c%d", i), 3+i, i%2))
	}
	tick()
	opens := countLogOpens(t)
	h0, fp0 := plan(t, sourceAt(t, root))
	opens.take()
	h1, fp1 := plan(t, cachedSourceAt(t, root, ledger, false))
	if n := opens.take(); len(n) != len(logs) {
		t.Fatalf("first plan with a cache opened %v, want each of the %d logs", n, len(logs))
	}
	s := cachedSourceAt(t, root, ledger, false)
	h2, fp2 := plan(t, s)
	if n := opens.take(); len(n) != 0 {
		t.Errorf("second plan opened %v, want no log", n)
	}
	for _, ri := range s.runs {
		if !ri.segments[0].cached {
			t.Errorf("%s: not taken from the cache", ri.ref)
		}
	}
	if !reflect.DeepEqual(h1, h0) || !reflect.DeepEqual(h2, h0) || !slices2Equal(fp1, fp0) || !slices2Equal(fp2, fp0) {
		t.Errorf("headers/fingerprints differ:\nno cache %v %v\nfirst %v %v\nsecond %v %v", h0, fp0, h1, fp1, h2, fp2)
	}
	if len(h0) != len(logs) || h0[1].Status != schema.StatusFailed || h0[0].Status != schema.StatusFinished {
		t.Fatalf("headers %v: want %d runs, finished and failed alternately", h0, len(logs))
	}
	plan(t, cachedSourceAt(t, root, ledger, true))
	if n := opens.take(); len(n) != len(logs) {
		t.Errorf("fresh plan opened %v, want every log", n)
	}
}

func slices2Equal(a, b []string) bool { return reflect.DeepEqual(a, b) }

// TestLogCacheSeesEachChange: each change to a log makes the next plan
// read it again (and only it), with the header of a source without cache:
// a log grown, rewritten in place with its size kept and its modification
// time set back (only the change time tells), replaced by another file of
// the same size and time (another inode), and chmod'ed (the change time
// alone). Every field of the identity is compared.
func TestLogCacheSeesEachChange(t *testing.T) {
	shortRacyWindow(t)
	root, ledger := t.TempDir(), filepath.Join(t.TempDir(), "ledger.db")
	grow := writeCacheRun(t, root, "grow", 3, 0)
	rewrite := writeCacheRun(t, root, "rewr", 3, 0)
	replace := writeCacheRun(t, root, "repl", 3, 0)
	chmod := writeCacheRun(t, root, "chmd", 3, 0)
	keep := writeCacheRun(t, root, "keep", 3, 0)
	tick()
	opens := countLogOpens(t)
	plan(t, cachedSourceAt(t, root, ledger, false))
	opens.take()

	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	sameSize := func(path string, code int) []byte {
		dir := t.TempDir()
		id := filepath.Base(path)
		id = id[len("run-") : len(id)-len(".wandb")]
		other := writeCacheRun(t, dir, id, 3, code)
		b, err := os.ReadFile(other)
		must(err)
		old, err := os.ReadFile(path)
		must(err)
		if len(b) != len(old) || bytes.Equal(b, old) {
			t.Fatalf("rewritten log of %d bytes, was %d; want the same size, other bytes", len(b), len(old))
		}
		return b
	}
	statOf := func(path string) os.FileInfo {
		fi, err := os.Stat(path)
		must(err)
		return fi
	}
	// grown: a longer log with a failed exit.
	writeCacheRun(t, root, "grow", 5, 1)
	// rewritten in place, same size, modification time set back.
	rewriteFi := statOf(rewrite)
	b := sameSize(rewrite, 1)
	f, err := os.OpenFile(rewrite, os.O_WRONLY, 0)
	must(err)
	_, err = f.WriteAt(b, 0)
	must(err)
	must(f.Close())
	must(os.Chtimes(rewrite, rewriteFi.ModTime(), rewriteFi.ModTime()))
	// replaced through a rename, same size and modification time.
	fi := statOf(replace)
	must(os.WriteFile(replace+".new", sameSize(replace, 1), 0o644))
	must(os.Chtimes(replace+".new", fi.ModTime(), fi.ModTime()))
	must(os.Rename(replace+".new", replace))
	// chmod'ed (and back): only the change time moves.
	must(os.Chmod(chmod, 0o600))
	must(os.Chmod(chmod, 0o644))
	if got := statOf(rewrite); got.Size() != rewriteFi.Size() || !got.ModTime().Equal(rewriteFi.ModTime()) {
		t.Fatal("the rewrite did not keep the size and modification time")
	}

	h, fp := plan(t, cachedSourceAt(t, root, ledger, false))
	n := opens.take()
	for _, p := range []string{grow, rewrite, replace, chmod} {
		if n[p] == 0 {
			t.Errorf("%s changed, not read again (opens %v)", filepath.Base(p), n)
		}
	}
	if n[keep] != 0 {
		t.Errorf("the unchanged log was read again (opens %v)", n)
	}
	h0, fp0 := plan(t, sourceAt(t, root))
	opens.take()
	if !reflect.DeepEqual(h, h0) || !reflect.DeepEqual(fp, fp0) {
		t.Errorf("after the changes, with the cache %v %v\nwithout %v %v", h, fp, h0, fp0)
	}
	failed := 0
	for _, r := range h {
		if r.Status == schema.StatusFailed {
			failed++
		}
	}
	if failed != 3 {
		t.Errorf("%d failed runs after the changes, want 3 (grown, rewritten, replaced): %v", failed, h)
	}

	// Each field of the identity decides alone.
	c := &logCache{old: map[string]cachedLog{"/l": {ID: fileID{Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5}}}}
	base := fileID{Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5}
	if _, ok := c.lookup("/l", base, true); !ok {
		t.Fatal("the same identity is not found")
	}
	if _, ok := c.lookup("/l", base, false); ok {
		t.Error("an identity the system did not tell whole is trusted")
	}
	v := reflect.ValueOf(&base).Elem()
	for i := range v.NumField() {
		id := base
		f := reflect.ValueOf(&id).Elem().Field(i)
		if f.CanInt() {
			f.SetInt(f.Int() + 1)
		} else {
			f.SetUint(f.Uint() + 1)
		}
		if _, ok := c.lookup("/l", id, true); ok {
			t.Errorf("a change of %s alone is not seen", v.Type().Field(i).Name)
		}
	}
}

// TestLogCacheIgnoresBadFiles: a cache file that is damaged, cut short,
// empty, or written for another format, build, machine or root is ignored
// whole (every log read, the same headers and fingerprints) and written
// anew; the next plan then opens no log.
func TestLogCacheIgnoresBadFiles(t *testing.T) {
	shortRacyWindow(t)
	root, ledger := t.TempDir(), filepath.Join(t.TempDir(), "ledger.db")
	for i := range 3 {
		writeCacheRun(t, root, fmt.Sprintf("b%d", i), 4, 0)
	}
	tick()
	opens := countLogOpens(t)
	h0, fp0 := plan(t, cachedSourceAt(t, root, ledger, false))
	if len(opens.take()) != 3 {
		t.Fatal("the first plan did not read every log")
	}
	file := cachedSourceAt(t, root, ledger, false).cache.file
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f cacheFile
	if err := gob.NewDecoder(bytes.NewReader(good[len(cacheMagic) : len(good)-sha256.Size])).Decode(&f); err != nil {
		t.Fatal(err)
	}
	// A file as save writes it, with one header field changed.
	foreign := func(change func(*cacheFile)) []byte {
		g := f
		change(&g)
		var buf bytes.Buffer
		buf.WriteString(cacheMagic)
		if err := gob.NewEncoder(&buf).Encode(g); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(buf.Bytes())
		return append(buf.Bytes(), sum[:]...)
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for _, c := range []struct {
		what string
		data []byte
	}{
		{"a byte flipped", flipped},
		{"cut short", good[:len(good)-10]},
		{"empty", nil},
		{"another format", foreign(func(g *cacheFile) { g.Format++ })},
		{"another build", foreign(func(g *cacheFile) { g.Build += "x" })},
		{"another machine", foreign(func(g *cacheFile) { g.Machine = "machine-id:other" })},
		{"another root", foreign(func(g *cacheFile) { g.Root += "x" })},
	} {
		if err := os.WriteFile(file, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		h, fp := plan(t, cachedSourceAt(t, root, ledger, false))
		if n := opens.take(); len(n) != 3 {
			t.Errorf("%s: opened %v, want every log read", c.what, n)
		}
		if !reflect.DeepEqual(h, h0) || !reflect.DeepEqual(fp, fp0) {
			t.Errorf("%s: headers %v %v, want %v %v", c.what, h, fp, h0, fp0)
		}
		plan(t, cachedSourceAt(t, root, ledger, false))
		if n := opens.take(); len(n) != 0 {
			t.Errorf("%s: the plan after opened %v, want the cache written anew", c.what, n)
		}
	}
	// The one good file, a control: it is trusted.
	if err := os.WriteFile(file, foreign(func(*cacheFile) {}), 0o600); err != nil {
		t.Fatal(err)
	}
	plan(t, cachedSourceAt(t, root, ledger, false))
	if n := opens.take(); len(n) != 0 {
		t.Errorf("a good file rewritten: opened %v, want none", n)
	}
}

// TestLogCacheRacyAndForeignEntries: a log changed within racyWindow of
// the job's start is not kept (a write in the same clock tick could keep
// its change time), and entries of logs no longer found are dropped.
// Nothing of the run's config or tags is in the file.
func TestLogCacheRacyAndForeignEntries(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the log cache keeps identities on Linux only")
	}
	root, ledger := t.TempDir(), filepath.Join(t.TempDir(), "ledger.db")
	a := writeCacheRun(t, root, "r1", 3, 0)
	b := writeCacheRun(t, root, "r2", 3, 0)
	opens := countLogOpens(t)
	plan(t, cachedSourceAt(t, root, ledger, false)) // racyWindow as shipped: both logs are new
	opens.take()
	plan(t, cachedSourceAt(t, root, ledger, false))
	if n := opens.take(); n[a] == 0 || n[b] == 0 {
		t.Errorf("logs written within the racy window were kept: opens %v", n)
	}
	shortRacyWindow(t)
	tick()
	plan(t, cachedSourceAt(t, root, ledger, false))
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.RemoveAll(filepath.Dir(b)))
	opens.take()
	s := cachedSourceAt(t, root, ledger, false)
	plan(t, s)
	if n := opens.take(); len(n) != 0 {
		t.Errorf("opens %v, want none", n)
	}
	logs := readCacheFile(s.cache.file, s.cfg.Root)
	var keys []string
	for k := range logs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{a}) {
		t.Errorf("cache holds %v, want only %s", keys, a)
	}
	if fi, err := os.Stat(s.cache.file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file %v, %v: want mode 0600", fi, err)
	}
}
